"""Drive the lab from tests: bring it up, run playbooks, run commands in hosts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = dict(
    os.environ,
    CONTAINERS_CONF=str(ROOT / "lab" / "containers.conf"),
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    ANSIBLE_FORCE_COLOR="0",
    PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
)
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass
class PlaybookRun:
    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP.finditer(self.output)
        }

    @property
    def changed(self) -> int:
        return sum(h["changed"] for h in self.recap.values())


def lab(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "lab" / "lab.py"), *args], env=ENV, cwd=ROOT, text=True, capture_output=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"lab.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def playbook(path: str, *args: str, log: Path | None = None) -> PlaybookRun:
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), path, *args],
        env=ENV,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout)
    return PlaybookRun(result.returncode, result.stdout)


def podman_exec(
    container: str, *cmd: str, check: bool = True, user: str | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run a command in a lab container (as `user` when given); check=True raises on a non-zero exit."""
    options = ["--user", user] if user else []
    result = subprocess.run(
        ["podman", "exec", *options, container, *cmd], env=ENV, text=True, capture_output=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{container}: {' '.join(cmd)} failed ({result.returncode}): {result.stderr}")
    return result


def inventory_hosts(group: str) -> list[str]:
    data = json.loads(
        subprocess.run(
            [str(BIN / "ansible-inventory"), "--list"], env=ENV, cwd=ROOT, text=True, capture_output=True, check=True
        ).stdout
    )
    found: list[str] = []

    def walk(name: str) -> None:
        body = data.get(name, {})
        found.extend(h for h in body.get("hosts", []) if h not in found)
        for child in body.get("children", []):
            walk(child)

    walk(group)
    return found


def lab_setting(name: str) -> object:
    """A lab-wide setting of inventories/lab/group_vars/all/lab.yml (the network name, the subnet...)."""
    return yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "lab.yml").read_text())[name]


def container_address(container: str, network: str) -> str:
    """The address a running container has on a podman network."""
    inspected = json.loads(podman("container", "inspect", container).stdout)[0]
    return inspected["NetworkSettings"]["Networks"][network]["IPAddress"]


def podman(*args: str, timeout: float | None = 300) -> subprocess.CompletedProcess:
    """Run a podman command with the lab's settings; raises with podman's message when it fails."""
    result = subprocess.run(["podman", *args], env=ENV, text=True, capture_output=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result
