"""A pytest plugin for make's test tiers: several folders in one pytest process, one wall-time line per folder.

    pytest -p heliogrid_testing.timing --tier unit tests/unit tests/contracts ...

prints `== unit: <folder> took N s` for every folder given, in the order given: the time of its tests' setup, call
and teardown (session fixtures count where they are first set up).
"""

from __future__ import annotations

import time

import pytest

_seconds: dict[str, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tier", default=None, help="name the tier in the per-folder timing lines (make unit)")


def _folder(config: pytest.Config, nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    for arg in config.args:
        folder = arg.rstrip("/")
        if path == folder or path.startswith(folder + "/"):
            return folder
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    start = time.monotonic()
    yield
    folder = _folder(item.config, item.nodeid)
    if folder is not None:
        _seconds[folder] = _seconds.get(folder, 0.0) + time.monotonic() - start


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    tier = config.getoption("--tier")
    if tier is None:
        return
    for arg in config.args:
        folder = arg.rstrip("/")
        terminalreporter.write_line(f"== {tier}: {folder} took {_seconds.get(folder, 0.0):.0f} s")
