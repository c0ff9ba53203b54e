"""testinfra in the molecule scenarios: talk to the containers with podman exec, not one ansible run per check.

testinfra handles an inventory host whose connection is containers.podman.podman through Ansible, which costs
seconds per command; the scenario's instance names are the container names, so podman:// reaches them directly.
"""

from __future__ import annotations

import pytest
import testinfra


@pytest.fixture(scope="module")
def host(_testinfra_host):
    return testinfra.get_host(f"podman://{_testinfra_host.backend.host}")
