"""Where the unit tier finds promtool and amtool: unpacked from Debian bookworm's packages by lab/fetch-promtool.sh
(run by `make setup`) into ${HELIOGRID_CACHE}/promtool-<version>/, the version read from that script."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FETCH = ROOT / "lab" / "fetch-promtool.sh"


def tool(name: str = "promtool") -> Path:
    """The path of `name` (promtool or amtool); skips the calling test, saying why, when setup has not fetched it."""
    version = re.search(r"^PROMETHEUS_VERSION=(\S+)$", FETCH.read_text(), re.MULTILINE).group(1)
    cache = os.environ.get("HELIOGRID_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heliogrid"
    )
    found = Path(cache) / f"promtool-{version}" / name
    if not os.access(found, os.X_OK):
        pytest.skip(f"{name} {version} is not at {found}: run `make setup` (or lab/fetch-promtool.sh) first")
    return found
