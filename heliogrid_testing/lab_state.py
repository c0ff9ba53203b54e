"""The lab as the lab benchmarks see it: is it up with site.yml applied, and commands inside its hosts.

Everything runs through the lab driver (lab/lab.py: the repository's ansible.cfg, the venv's ansible-playbook,
CONTAINERS_CONF=lab/containers.conf). This machine talks to lab hosts only through `podman exec` and through
ansible-playbook itself; it never opens a connection to a lab address.
"""

from __future__ import annotations

import subprocess

from lab import lab

AGENT_SERVICE = "heliogrid-agent.service"
GETH_SERVICE = "geth.service"


def run_in(host: str, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command inside the lab host's container; never raises (a timeout is exit status 124)."""
    try:
        return lab.podman_exec(f"hg-{host}", *cmd, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout:.0f} s")


def unit_state(host: str, unit: str) -> str:
    return run_in(host, "systemctl", "is-active", unit, timeout=60).stdout.strip() or "absent"


def lab_problem() -> str | None:
    """None when every lab host runs and site.yml has been applied (geth everywhere, agents on the Pis)."""
    try:
        groups = {g: lab.inventory_hosts(g) for g in ("miners", "stats", "pis")}
    except (OSError, subprocess.CalledProcessError, lab.LabError) as exc:
        return f"cannot read the lab inventory: {exc}"
    down = [h for hosts in groups.values() for h in hosts if not lab.running(f"hg-{h}")]
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
