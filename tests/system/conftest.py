"""System tier: the whole lab, from nothing, then site.yml, then checks across hosts."""

from __future__ import annotations

import os

import pytest

from tests.support import lab

RESULTS = lab.ROOT / "test-results"


@pytest.fixture(scope="session")
def fresh_lab() -> None:
    """A lab brought up from nothing: no container of a previous run survives into this one.

    HELIOGRID_KEEP_LAB=1 keeps the running lab (for re-running checks while developing).
    """
    if os.environ.get("HELIOGRID_KEEP_LAB") != "1":
        lab.lab("down")
        (lab.ROOT / "inventories" / "lab" / "state").mkdir(exist_ok=True)
        for stale in (lab.ROOT / "inventories" / "lab" / "state").iterdir():
            stale.unlink()
    lab.lab("up")


@pytest.fixture(scope="session")
def site(fresh_lab) -> lab.PlaybookRun:
    """site.yml applied once to the fresh lab; its output is kept in test-results/site-first-run.log."""
    run = lab.playbook("site.yml", log=RESULTS / "site-first-run.log")
    if run.returncode != 0:
        pytest.fail(f"site.yml failed (rc={run.returncode}); last lines:\n{run.output[-6000:]}")
    return run
