"""Fixtures of the bad-input table: a throwaway host, the agent, a deployed scene, the report (heliogrid_testing)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

from heliogrid_testing.bad_inputs import BOOTED, HOST, IMAGE, AgentRunner, Report, Scene, ThrowawayHost
from heliogrid_testing.evm import deploy
from lab import lab


@pytest.fixture(scope="module")
def throwaway_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayHost]:
    if shutil.which("podman") is None or lab.podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"needs podman and the lab image {IMAGE} (make images)")
    container = f"hg-badinput-{os.getpid()}"
    lab.podman(
        "run", "-d", "--name", container, "--hostname", HOST, "--network", "none",
        "--label", "io.heliogrid.test=bad_inputs", "--systemd", "always", "--cap-add", "SYS_ADMIN",
        IMAGE, "/sbin/init",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while lab.podman("exec", container, "systemctl", "is-system-running", check=False).stdout.strip() not in BOOTED:
            if time.monotonic() > deadline:
                pytest.fail(f"{container} did not boot within 120 s")
            time.sleep(1)
        # A quiet machine: no timer (apt-daily, tmpfiles...) may change a file while a case runs.
        timers = lab.podman(
            "exec", container, "systemctl", "list-units", "--type=timer", "--plain", "--no-legend"
        ).stdout
        lab.podman(
            "exec", container, "systemctl", "stop", *[line.split()[0] for line in timers.splitlines()], check=False
        )
        host = ThrowawayHost(container, tmp_path_factory.mktemp("inventory"))
        host.warm_up()
        yield host
    finally:
        lab.podman("rm", "-f", "-t", "5", container, check=False)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> AgentRunner:
    return AgentRunner(tmp_path_factory.mktemp("agent"))


@pytest.fixture(scope="module")
def scene_deployed() -> Scene:
    return Scene(deploy())


@pytest.fixture
def scene(scene_deployed: Scene) -> Iterator[Scene]:
    snapshot = scene_deployed.chain.tester.take_snapshot()
    yield scene_deployed
    scene_deployed.chain.tester.revert_to_snapshot(snapshot)


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[Report]:
    report = Report()
    yield report
    report.write(request.module.CASES)
