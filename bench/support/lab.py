"""The lab, as the lab benchmarks see it: is it up with site.yml applied, and commands inside its hosts.

Everything runs through tests/support/lab.py (the system tests' driver: the repository's ansible.cfg, the
venv's ansible-playbook, CONTAINERS_CONF=lab/containers.conf). This machine talks to lab hosts only through
`podman exec` and through ansible-playbook itself; it never opens a connection to a lab address.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab.geth_defaults import geth_defaults  # noqa: E402
from tests.support import lab  # noqa: E402

GETH_IPC = geth_defaults()["geth_datadir"] + "/geth.ipc"
AGENT_SERVICE = "heliogrid-agent.service"
GETH_SERVICE = "geth.service"

__all__ = ["attach", "container_running", "hostvars", "lab", "lab_problem", "podman_exec"]


def podman_exec(host: str, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command inside the lab host's container (never raises on a non-zero exit)."""
    try:
        return subprocess.run(
            ["podman", "exec", f"hg-{host}", *cmd], env=lab.ENV, text=True, capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout:.0f} s")


def attach(host: str, expression: str, timeout: float = 60) -> Any:
    """Evaluate a JavaScript expression in the host's geth console over its IPC socket; None if it fails."""
    result = podman_exec(host, "geth", "attach", "--exec", f"JSON.stringify({expression})", GETH_IPC, timeout=timeout)
    if result.returncode != 0:
        return None
    try:
        return json.loads(json.loads(result.stdout))
    except ValueError:
        return None


def container_running(host: str) -> bool:
    result = subprocess.run(
        ["podman", "container", "inspect", "--format", "{{.State.Running}}", f"hg-{host}"],
        env=lab.ENV,
        text=True,
        capture_output=True,
    )
    return result.stdout.strip() == "true"


def hostvars() -> dict[str, dict[str, Any]]:
    """The lab inventory's host variables (ansible-inventory --list)."""
    out = subprocess.run(
        [str(lab.BIN / "ansible-inventory"), "--list"],
        env=lab.ENV,
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    return json.loads(out)["_meta"]["hostvars"]


def unit_state(host: str, unit: str) -> str:
    return podman_exec(host, "systemctl", "is-active", unit, timeout=60).stdout.strip() or "absent"


def lab_problem() -> str | None:
    """None when every lab host runs and site.yml has been applied (geth everywhere, agents on the Pis)."""
    try:
        groups = {g: lab.inventory_hosts(g) for g in ("miners", "stats", "pis")}
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot read the lab inventory: {exc}"
    down = [h for hosts in groups.values() for h in hosts if not container_running(h)]
    if down:
        return f"lab containers not running: {', '.join('hg-' + h for h in down)} (make lab-up, then site.yml)"
    for host in [h for hosts in groups.values() for h in hosts]:
        state = unit_state(host, GETH_SERVICE)
        if state != "active":
            return f"geth is {state} on {host}: apply site.yml to the lab first (make demo)"
    for pi in groups["pis"]:
        state = unit_state(pi, AGENT_SERVICE)
        if state != "active":
            return f"the metering agent is {state} on {pi}: apply site.yml to the lab first (make demo)"
    return None


def lab_module() -> Any:
    """lab/lab.py as a module (to start a host that hosts.yml does not list, as tests/system does)."""
    spec = importlib.util.spec_from_file_location("heliogrid_lab", ROOT / "lab" / "lab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
