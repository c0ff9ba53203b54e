"""The lab itself: the Pis reached as a real one would be, geth release archives run on each arch.

That Ansible reaches every lab host is test_site's first check (every host in site.yml's recap, none unreachable):
an ad-hoc ping of them all before it took 36 to 47 s of the system tier for the same proof.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from lab import lab
from lab.geth_defaults import geth_release

GETH_VERSION, GETH_COMMIT = geth_release()
CACHE = Path(os.environ.get("HELIOGRID_CACHE", Path.home() / ".cache" / "heliogrid"))


def ansible(pattern: str, module: str, args: str = "", *extra: str) -> dict[str, dict]:
    """Run an ad-hoc module and return each host's result (through the json callback)."""
    cmd = [str(lab.BIN / "ansible"), pattern, "-m", module, *extra] + (["-a", args] if args else [])
    env = dict(lab.ENV, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    out = subprocess.run(cmd, env=env, cwd=lab.ROOT, text=True, capture_output=True).stdout
    plays = json.loads(out)["plays"]
    return {host: result for play in plays for task in play["tasks"] for host, result in task["hosts"].items()}


def test_pis_are_reached_over_ssh_as_the_admin_user(fresh_lab):
    results = ansible("pis", "ansible.builtin.command", "printenv SSH_CONNECTION", "-e", "ansible_become=false")
    assert set(results) == set(lab.inventory_hosts("pis"))
    for host, result in results.items():
        assert result.get("rc") == 0, (host, result)
        _client, _, _server, port = result["stdout"].split()
        assert port == "22", (host, result["stdout"])


@pytest.mark.parametrize(("host", "arch"), [("miner1", "amd64"), ("pi1", "arm64")])
def test_geth_release_archive_runs_on_its_architecture(fresh_lab, host, arch):
    name = f"geth-linux-{arch}-{GETH_VERSION}-{GETH_COMMIT[:8]}"
    expected_sha = (CACHE / "geth" / GETH_VERSION / f"{name}.tar.gz.sha256").read_text().split()[0]
    assert hashlib.sha256((CACHE / "geth" / GETH_VERSION / f"{name}.tar.gz").read_bytes()).hexdigest() == expected_sha
    # Fetch from the lab mirror inside the host, check the digest there, unpack, run.
    url = f"http://hg-mirror:8080/geth/{GETH_VERSION}/{name}.tar.gz"
    script = f"""set -e
cd "$(mktemp -d)"
python3 -c "import urllib.request; urllib.request.urlretrieve('{url}', 'g.tgz')"
echo "{expected_sha}  g.tgz" | sha256sum -c --quiet
tar xzf g.tgz
uname -m
./{name}/geth version
"""
    out = lab.podman_exec(f"hg-{host}", "sh", "-c", script).stdout
    assert out.splitlines()[0] == {"amd64": "x86_64", "arm64": "aarch64"}[arch]
    assert f"Version: {GETH_VERSION}-stable" in out
    assert f"Git Commit: {GETH_COMMIT}" in out
    assert f"Architecture: {arch}" in out
