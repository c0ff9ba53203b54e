"""System tier: the whole lab, from nothing."""

from __future__ import annotations

import os

import pytest

from tests.support import lab


@pytest.fixture(scope="session")
def fresh_lab() -> None:
    """A lab brought up from nothing: no container of a previous run survives into this one."""
    if os.environ.get("HELIOGRID_KEEP_LAB") != "1":
        lab.lab("down")
    lab.lab("up")
