"""Running Ansible against a moto server from the AWS provisioning tests.

Every test talks to a moto server in a child process (its own port on 127.0.0.1) through the real
amazon.aws modules and the aws_ec2 inventory plugin. Credentials are dummies in the environment; the
developer's own ~/.aws files are hidden from the runs.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REGION = "eu-central-1"
NETWORK = "hgtest"
OPERATOR_CIDR = "203.0.113.7/32"
ANSIBLE_TIMEOUT_S = 900
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def free_port() -> int:
    """A TCP port nothing listens on right now (the socket is closed before returning)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_tool(name: str) -> str:
    """The Ansible command of the Python running the tests (its venv), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is neither beside {sys.executable} nor on PATH: install ansible==12.3.0")
    return found


@dataclass
class AnsibleRun:
    """The outcome of one ansible-playbook or ansible-inventory run."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def changed(self) -> int:
        match = RECAP.search(self.stdout)
        assert match, f"no PLAY RECAP for localhost in:\n{self.output[-3000:]}"
        return int(match.group(2))

    def explain(self) -> str:
        return f"{' '.join(self.args)} exited {self.returncode} after {self.duration_s:.0f} s:\n{self.output[-6000:]}"


@dataclass
class Ansible:
    """Runs Ansible from the repository root with a controlled environment."""

    env: dict[str, str]
    runs: list[AnsibleRun] = field(default_factory=list)

    def run(self, tool: str, *args: str, env: dict[str, str] | None = None) -> AnsibleRun:
        command = [venv_tool(tool), *args]
        started = time.monotonic()
        proc = subprocess.run(
            command,
            cwd=REPO,
            env=env if env is not None else self.env,
            capture_output=True,
            text=True,
            timeout=ANSIBLE_TIMEOUT_S,
            check=False,
        )
        result = AnsibleRun(command, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        self.runs.append(result)
        print(f"[{result.duration_s:6.1f} s] {' '.join(args)} -> rc={result.returncode}")
        return result

    def playbook(self, playbook: str, *extra: str, env: dict[str, str] | None = None) -> AnsibleRun:
        return self.run("ansible-playbook", "-i", "inventories/aws", f"playbooks/{playbook}", *extra, env=env)
