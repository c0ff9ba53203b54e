"""Run the Pi's agent with a synthetic import meter, for the tests of automatic buying in a real process.

    python -m heliogrid_testing.import_agent CONFIG STATE_DIR RATE_UWH_PER_SECOND [MAX_UWH]

The home's cumulative import (micro-Wh) grows with the wall clock since STATE_DIR/t0, which the first run writes,
at RATE, up to MAX_UWH when given; once STATE_DIR/frozen exists, its integer is the import from then on. Like a
meter's own register, it never goes down across kills and restarts. The agent itself is ``heliogrid_agent.cli.run``,
unchanged.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def import_source(state: Path, rate: float, most: int | None = None):
    t0_file = state / "t0"
    if not t0_file.exists():
        tmp = state / "t0.tmp"
        tmp.write_text(repr(time.time()))
        os.replace(tmp, t0_file)
    t0 = float(t0_file.read_text())

    def imported_uwh() -> int:
        frozen = state / "frozen"
        if frozen.exists():
            return int(frozen.read_text())
        grown = int((time.time() - t0) * rate)
        return grown if most is None else min(grown, most)

    return imported_uwh


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    from heliogrid_agent.cli import run
    from heliogrid_agent.config import load_config

    config, state, rate = Path(argv[0]), Path(argv[1]), float(argv[2])
    most = int(argv[3]) if len(argv) == 4 else None
    state.mkdir(parents=True, exist_ok=True)
    return run(load_config(config), imported_uwh=import_source(state, rate, most))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
