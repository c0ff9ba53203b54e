"""The lab's arm64 Pi (pi1, trixie arm64 under qemu-user emulation) after site.yml: the metering agent runs there
on aarch64 wheels, from the same hardened unit as on the amd64 Pis, with the emulation drop-in as the only change.

These are the arm64-only checks the pi_agent molecule scenario made while it ran on the emulated image; the scenario
runs on amd64 now, and pi1 is where the arm64 agent meets a real chain. Read-only: nothing here changes the lab.
Each check runs in the Pi's container (`podman exec hg-pi1`, as root).
"""

from __future__ import annotations

import pytest

from heliogrid_testing.agent_unit import HARDENING, SERVICE, UNIT, VENV, unit_settings
from lab import lab

PI = "pi1"  # inventories/lab/hosts.yml: lab_image trixie-arm64
CONTAINER = f"hg-{PI}"
# The arm64 lab image's drop-in for every service: qemu-user cannot build mount namespaces (lab/build-image.sh).
EMULATION_DROP_IN = "/etc/systemd/system/service.d/10-emulated-no-mount-namespace.conf"


def run(*cmd: str) -> str:
    """A command in the Pi's container; its stdout, stripped (raises when it fails)."""
    return lab.podman_exec(CONTAINER, *cmd, timeout=120).stdout.strip()


@pytest.fixture(scope="module")
def arm64_pi(site) -> str:
    """pi1 with site.yml applied (the `site` fixture) and its agent running."""
    state = lab.podman_exec(CONTAINER, "systemctl", "is-active", SERVICE, check=False).stdout.strip()
    if state != "active":
        pytest.fail(f"{SERVICE} is {state or 'absent'} on {PI}: apply site.yml to the lab first (make demo)")
    return CONTAINER


def test_pi1_is_arm64_and_its_agent_runs_on_aarch64_wheels(arm64_pi):
    assert run("uname", "-m") == "aarch64"
    platform = run(f"{VENV}/bin/python", "-c", "import sysconfig; print(sysconfig.get_platform())")
    assert platform == "linux-aarch64"
    tags = run("sh", "-c", f"sed -n 's/^Tag: //p' {VENV}/lib/python3*/site-packages/*.dist-info/WHEEL").split()
    binary = [tag for tag in tags if not tag.endswith("-any")]
    assert binary, f"no binary wheel in {PI}'s venv"
    assert all(tag.endswith("_aarch64") for tag in binary), binary


def test_pi1_runs_the_hardened_unit_with_only_the_emulation_drop_in(arm64_pi):
    # The unit as installed, which a real Pi runs: the emulated image switches its mount namespace off.
    unit = unit_settings(run("cat", UNIT))
    assert {key: unit.get(key) for key in HARDENING} == HARDENING
    props = dict(
        line.split("=", 1)
        for line in run(
            "systemctl", "show", SERVICE, "-p", "NoNewPrivileges", "-p", "Restart", "-p", "StandardOutput",
            "-p", "After", "-p", "Wants", "-p", "DropInPaths", "-p", "MainPID",
        ).splitlines()
    )  # fmt: skip
    assert "geth.service" in props.pop("After").split()
    assert "geth.service" in props.pop("Wants").split()
    pid = props.pop("MainPID")
    # Nothing but the lab image's emulation drop-in overrides the role's unit.
    assert props == {
        "NoNewPrivileges": "yes",
        "Restart": "on-failure",
        "StandardOutput": "journal",
        "DropInPaths": EMULATION_DROP_IN,
    }
    # What works under emulation as on a Pi: no new privileges and no capabilities in the running agent.
    status = dict(line.split(":", 1) for line in run("cat", f"/proc/{pid}/status").splitlines())
    assert {key: status[key].strip() for key in ("NoNewPrivs", "CapEff", "CapBnd")} == {
        "NoNewPrivs": "1",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
    }
