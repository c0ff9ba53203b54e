"""System tier: the whole lab, from nothing, then site.yml, then checks across hosts."""

from __future__ import annotations

import json
import os

import pytest

from lab import lab

RESULTS = lab.ROOT / "test-results"


@pytest.fixture(scope="session")
def fresh_lab() -> None:
    """A lab brought up from nothing: no container of a previous run survives into this one.

    HELIOGRID_KEEP_LAB=1 keeps the running lab (for re-running checks while developing);
    HELIOGRID_SITE_APPLIED=1 says the lab is up with site.yml applied, and touches nothing.
    """
    if os.environ.get("HELIOGRID_SITE_APPLIED") == "1":
        return
    if os.environ.get("HELIOGRID_KEEP_LAB") != "1":
        lab.cli("down")  # removes what the controller recorded for the lab too
    lab.cli("up")


@pytest.fixture(scope="session")
def site(fresh_lab) -> lab.PlaybookRun:
    """site.yml applied once to the fresh lab; its output is kept in test-results/site-first-run.log.

    HELIOGRID_SITE_APPLIED=1: site.yml was already applied to the running lab (by a previous session, or by
    whoever brought the lab up); its run is read back from that log instead of running it again.
    """
    log = RESULTS / "site-first-run.log"
    if os.environ.get("HELIOGRID_SITE_APPLIED") == "1":
        if not log.exists():
            pytest.fail(f"HELIOGRID_SITE_APPLIED=1 but {log} does not exist: keep the log of the site.yml run there")
        output = log.read_text()
        run = lab.PlaybookRun(0, output)
        failed = {h: r for h, r in run.recap.items() if r["failed"] or r["unreachable"]}
        if not run.recap or failed:
            pytest.fail(f"{log} does not record a successful site.yml run: recap {run.recap or 'missing'}")
        return run
    run = lab.playbook("site.yml", log=log)
    if run.returncode != 0:
        pytest.fail(f"site.yml failed (rc={run.returncode}); last lines:\n{run.output[-6000:]}")
    return run


@pytest.fixture(scope="module")
def network(site) -> None:
    """The lab with site.yml applied (the `site` fixture), every node's geth running."""
    for host in lab.inventory_hosts("miners") + lab.inventory_hosts("stats") + lab.inventory_hosts("pis"):
        state = lab.podman_exec(f"hg-{host}", "systemctl", "is-active", "geth", check=False).stdout.strip()
        if state != "active":
            pytest.fail(f"geth is {state or 'absent'} on {host}: apply site.yml to the lab first (make demo)")


# --- Where the system tier's time goes: one row per module in make test's closing table (lab/stages.py). ---------
_module_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    _module_seconds[module] = _module_seconds.get(module, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _module_seconds:
        RESULTS.mkdir(exist_ok=True)
        rows = [{"module": m, "seconds": round(s, 1)} for m, s in _module_seconds.items()]
        (RESULTS / "system-modules.json").write_text(json.dumps(rows, indent=1))
