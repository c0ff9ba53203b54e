"""Run `make test`'s stages and close with a table of where the time went.

Two workers share one queue of stages, longest first where it pays:
  lab   starts the system tier (the lab's containers on its own network), the longest stage by far
  host  takes integration, lint, unit, then the molecule scenarios (containers on podman's default network)
Whichever worker is free takes the next stage in the queue, so the molecule scenarios left when the system tier
ends are shared out rather than run one after another behind it. Stages share nothing but the machine: the system
tier mostly waits on the chain (block periods, kWh being sold), which is when the other stages' work fits in.
Every stage runs even after one fails, so one run reports every failure; the exit code is 1 if any failed.

Each stage's output goes to test-results/stages/<stage>.log; a failed stage's last lines are printed.
The last line is "stages: N passed, N failed". When the system tier ran and every stage passed, the lab is removed
afterwards (idle, it keeps sealing, syncing and selling: about a tenth of this machine's CPU); after a failure it is
left up to look into (`make lab-down` removes it). HELIOGRID_KEEP_LAB=1 keeps it in either case.
    lab/stages.py [--only lint,unit,...] [--workers N]
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
# What `make test` exports, for a run of this script on its own: the project's venv (molecule, ansible) first.
ENV = {
    **os.environ,
    "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf")),
    "ANSIBLE_CONFIG": os.environ.get("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg")),
}


@dataclass
class Stage:
    name: str
    argv: list[str]
    rows: list[tuple[str, float]] = field(default_factory=list)  # sub-rows (system modules) read after the run
    started: float = 0.0
    seconds: float = 0.0
    cpu: float = 0.0  # CPU seconds of the stage's processes (containers excluded)
    verdict: str = "not run"


# The scenarios known to take longest go first (test-results/molecule/*.log of the last runs), so that the last
# stage left for a free worker is a short one. A new scenario goes after these.
MOLECULE_LONGEST_FIRST = ("geth_network", "monitoring", "stats_app", "pi_agent")


def molecule_scenarios() -> list[str]:
    found = {p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml")}
    known = [s for s in MOLECULE_LONGEST_FIRST if s in found]
    return known + sorted(found - set(known))


# The host's stages in the order they are taken. The system tier's first part, a fresh lab's site.yml, wants 1.5
# cores (678 CPU-s in 439 s alone, 2026-12-04), and every core it does not get lengthens the tier: the integration
# tier, which waits on dev chains, moto and playbooks part of the time (532 CPU-s in 691 s alone, 0.77 of a core; its
# agent folder 0.37), goes beside it, and lint and unit (0.85 to 1 core throughout) come after.
HOST_TIERS = ("integration", "lint", "unit")


def queue() -> list[Stage]:
    """The stages in the order they are taken: the system tier first (the lab worker), then the host's stages."""
    make = ["make", "--no-print-directory"]
    stages = [Stage("system", [*make, "system"])]
    stages += [Stage(tier, [*make, tier]) for tier in HOST_TIERS]
    stages += [Stage(f"molecule {s}", ["lab/run-molecule.sh", s]) for s in molecule_scenarios()]
    return stages


def run_stage(stage: Stage, t0: float, lock: threading.Lock) -> bool:
    log = LOGS / f"{stage.name.replace(' ', '-')}.log"
    stage.started = time.monotonic() - t0
    with lock:
        print(f"stages: {stage.name} started at {stage.started / 60:.1f} min ({log.relative_to(ROOT)})", flush=True)
    with log.open("w") as out:
        proc = subprocess.Popen(stage.argv, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT)
        # wait4: this stage's own CPU time (its processes, not the containers podman runs for it), which the other
        # worker's stages do not share.
        _, status, usage = os.wait4(proc.pid, 0)
        code = proc.returncode = os.waitstatus_to_exitcode(status)
    stage.cpu = usage.ru_utime + usage.ru_stime
    stage.seconds = time.monotonic() - t0 - stage.started
    stage.verdict = "passed" if code == 0 else "FAILED"
    if stage.name == "system" and SYSTEM_MODULES_JSON.exists():
        stage.rows = [(row["module"], row["seconds"]) for row in json.loads(SYSTEM_MODULES_JSON.read_text())]
    with lock:
        print(f"stages: {stage.name} {stage.verdict} in {stage.seconds:.0f} s", flush=True)
        if code != 0:
            print("".join(log.read_text().splitlines(keepends=True)[-60:]), flush=True)
    return code == 0


def work(name: str, pending: list[Stage], done: list[tuple[str, Stage]], t0: float, lock: threading.Lock) -> None:
    while True:
        with lock:
            if not pending:
                return
            stage = pending.pop(0)
            done.append((name, stage))
        run_stage(stage, t0, lock)


def machine_busy() -> float:
    """CPU seconds this machine has spent busy since boot (every process and container), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def table(done: list[tuple[str, Stage]], total: float) -> str:
    lines = [f"{'by':<5} {'stage':<34} {'start':>7} {'wall':>7} {'cpu':>7}  verdict", "-" * 74]
    for worker, s in sorted(done, key=lambda d: (d[0], d[1].started)):
        cpu = f"{s.cpu:>6.0f}s"
        lines.append(f"{worker:<5} {s.name:<34} {s.started / 60:>6.1f}m {s.seconds:>6.0f}s {cpu}  {s.verdict}")
        lines += [f"{'':<5}   {module:<32} {'':>7} {sec:>6.0f}s" for module, sec in s.rows]
    total_row = f"{'':<5} {'total (wall, workers side by side)':<34} {'':>7} {total:>6.0f}s  ({total / 60:.1f} min)"
    lines += ["-" * 74, total_row]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="a comma-separated subset of the stages, e.g. lint,unit or 'molecule pi_agent'")
    parser.add_argument("--workers", type=int, default=2, help="stages run side by side (default: 2)")
    args = parser.parse_args()
    pending = queue()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {s.name for s in pending}
        if unknown:
            parser.error(f"unknown stage(s) {sorted(unknown)}; the stages: {[s.name for s in pending]}")
        pending = [s for s in pending if s.name in wanted]
    LOGS.mkdir(parents=True, exist_ok=True)
    SYSTEM_MODULES_JSON.unlink(missing_ok=True)
    lock = threading.Lock()
    done: list[tuple[str, Stage]] = []
    t0, busy0 = time.monotonic(), machine_busy()
    names = ["lab", "host", *(f"w{i}" for i in range(3, args.workers + 1))][: max(args.workers, 1)]
    threads = [threading.Thread(target=work, args=(n, pending, done, t0, lock)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total, busy = time.monotonic() - t0, machine_busy() - busy0
    passed = sum(s.verdict == "passed" for _, s in done)
    failed = len(done) - passed
    print(f"\nmake test on {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(table(done, total))
    print(
        f"cpu: the stage's own processes, not the containers podman runs for it (the lab's, molecule's); the machine "
        f"was busy {busy:.0f} CPU-s in all, {busy / total:.2f} of {os.cpu_count()} cores on average"
    )
    settle_lab(done, failed)
    print(f"stages: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def settle_lab(done: list[tuple[str, Stage]], failed: int) -> None:
    """Remove the lab the system tier left, unless something failed (it is evidence) or the caller keeps it."""
    if not any(s.name == "system" for _, s in done):
        return
    if failed or os.environ.get("HELIOGRID_KEEP_LAB") == "1":
        why = "HELIOGRID_KEEP_LAB=1" if not failed else "a stage failed"
        print(f"stages: the lab is left up ({why}); `make lab-down` removes it")
        return
    result = subprocess.run(
        [sys.executable, str(ROOT / "lab" / "lab.py"), "down"], cwd=ROOT, capture_output=True, text=True
    )
    print("stages: the lab is removed" if result.returncode == 0 else f"stages: lab down failed:\n{result.stderr}")


if __name__ == "__main__":
    sys.exit(main())
