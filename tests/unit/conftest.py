"""Make the project's filter plugins importable as plain modules in unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILTERS = ROOT / "plugins" / "filter"
if str(FILTERS) not in sys.path:
    sys.path.insert(0, str(FILTERS))
