"""Run `make test`'s stages and close with a table of where the time went.

Two lanes run side by side, each stage after the one before it in its lane:
  host  lint, unit, integration, then each molecule scenario (containers on podman's default network)
  lab   the system tier, one row per test module (the lab's containers on its own network)
They share nothing but the machine: the lab lane mostly waits on the chain (block periods, kWh being sold),
which is when the host lane's work fits in. A lane stops at its first failure; the other one goes on.

Each stage's output goes to test-results/stages/<stage>.log; a failed stage's last lines are printed.
The last line is "stages: N passed, N failed".
    lab/stages.py [--lanes host,lab] [--serial]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "test-results"
LOGS = RESULTS / "stages"
SYSTEM_MODULES_JSON = RESULTS / "system-modules.json"


@dataclass
class Stage:
    name: str
    argv: list[str]
    rows: list[tuple[str, float]] = field(default_factory=list)  # sub-rows (system modules) read after the run
    started: float = 0.0
    seconds: float = 0.0
    verdict: str = "not run"


def molecule_scenarios() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def lanes() -> dict[str, list[Stage]]:
    make = ["make", "--no-print-directory"]
    host = [Stage(tier, [*make, tier]) for tier in ("lint", "unit", "integration")]
    host += [Stage(f"molecule {s}", ["lab/run-molecule.sh", s]) for s in molecule_scenarios()]
    return {"host": host, "lab": [Stage("system", [*make, "system"])]}


def run_stage(stage: Stage, t0: float, lock: threading.Lock) -> bool:
    log = LOGS / f"{stage.name.replace(' ', '-')}.log"
    stage.started = time.monotonic() - t0
    with lock:
        print(f"stages: {stage.name} started at {stage.started / 60:.1f} min ({log.relative_to(ROOT)})", flush=True)
    with log.open("w") as out:
        code = subprocess.run(stage.argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    stage.seconds = time.monotonic() - t0 - stage.started
    stage.verdict = "passed" if code == 0 else "FAILED"
    if stage.name == "system" and SYSTEM_MODULES_JSON.exists():
        stage.rows = [(row["module"], row["seconds"]) for row in json.loads(SYSTEM_MODULES_JSON.read_text())]
    with lock:
        print(f"stages: {stage.name} {stage.verdict} in {stage.seconds:.0f} s", flush=True)
        if code != 0:
            print("".join(log.read_text().splitlines(keepends=True)[-60:]), flush=True)
    return code == 0


def run_lane(stages: list[Stage], t0: float, lock: threading.Lock) -> None:
    for stage in stages:
        if not run_stage(stage, t0, lock):
            break


def table(all_lanes: dict[str, list[Stage]], total: float) -> str:
    lines = [f"{'lane':<5} {'stage':<34} {'start':>7} {'wall':>7}  verdict", "-" * 66]
    for lane, stages in all_lanes.items():
        for s in stages:
            start = f"{s.started / 60:.1f}m" if s.verdict != "not run" else ""
            wall = f"{s.seconds:.0f}s" if s.verdict != "not run" else ""
            lines.append(f"{lane:<5} {s.name:<34} {start:>7} {wall:>7}  {s.verdict}")
            lines += [f"{'':<5}   {module:<32} {'':>7} {sec:>6.0f}s" for module, sec in s.rows]
    total_row = f"{'':<5} {'total (wall, lanes side by side)':<34} {'':>7} {total:>6.0f}s  ({total / 60:.1f} min)"
    lines += ["-" * 66, total_row]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lanes", default="host,lab", help="which lanes to run (default: host,lab)")
    parser.add_argument("--serial", action="store_true", help="run the lanes one after the other")
    args = parser.parse_args()
    chosen = {k: v for k, v in lanes().items() if k in args.lanes.split(",")}
    LOGS.mkdir(parents=True, exist_ok=True)
    SYSTEM_MODULES_JSON.unlink(missing_ok=True)
    lock = threading.Lock()
    t0 = time.monotonic()
    if args.serial:
        for stages in chosen.values():
            run_lane(stages, t0, lock)
    else:
        threads = [threading.Thread(target=run_lane, args=(s, t0, lock)) for s in chosen.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    total = time.monotonic() - t0
    stages = [s for lane in chosen.values() for s in lane]
    passed = sum(s.verdict == "passed" for s in stages)
    failed = len(stages) - passed
    print(f"\nmake test on {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(table(chosen, total))
    print(f"stages: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
