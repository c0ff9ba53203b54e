#!/usr/bin/env python3
"""site.yml on the 7-host lab, per task and per host: a fresh lab, then no-op runs under each candidate (lab).

1. --fresh: the lab is brought up from nothing (lab/lab.py down, up; the controller's state folder emptied) and
   `site.yml` is applied with the repository's configuration (ansible.cfg: Mitogen's linear strategy).
2. The no-op re-run under each candidate, one after the other on the same lab:
     plain     ANSIBLE_STRATEGY=linear: plain Ansible, containers.podman's connection, Python started per task
     mitogen   the repository's ansible.cfg (mitogen_linear; podman hosts through Mitogen's podman transport)
   each with its wall time and changed tasks (every no-op run must report changed=0). The free and host_pinned
   strategies are not candidates: they run a `run_once` task on every host ("not currently supported", says
   ansible-core), and the roles use run_once for what must happen once (the genesis rendered, the contracts
   deployed). The section shows what they could gain at most: each host's own task time against the wall time.
3. --grow N: N more Pis (amd64 stand-ins, as bench/site_lab.py starts them) join with one `site.yml --limit`
   run over them and the monitoring host (as docs/pi-guide.md has operators join Pis), then the adopted no-op run
   is repeated over all 3 + N Pis: the growth per Pi against step 2. Each run's CPU is counted (the machine,
   ansible-playbook with its children, each lab container), and the machine's use with no playbook running is
   sampled for 30 s before the two no-op runs compared: where an added Pi's seconds go.
4. A callback (bench/callbacks/task_times.py) times every task on every host: the 15 slowest host-tasks of
   the fresh run and of the adopted no-op run, and each host's total, go into the section.

    python bench/site_profile.py --fresh --grow 7         # everything (13 min with --candidates mitogen)
    python bench/site_profile.py --candidates mitogen     # one no-op run on a lab with site.yml applied

Writes the section site_profile of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from site_lab import ADDRESS_BASE, FIRST_EXTRA, IMAGES, remove_containers, start_containers, write_inventory
from task_cost import container_cpu

from heliogrid_testing.lab_state import lab_problem
from heliogrid_testing.results import Run
from lab import lab
from lab.stages import machine_busy

ROOT = Path(__file__).resolve().parent.parent

CANDIDATES = {
    "plain": ("plain Ansible, linear strategy (the configuration before)", {"ANSIBLE_STRATEGY": "linear"}),
    "mitogen": ("Mitogen, linear strategy (ansible.cfg: adopted)", {}),
}
SLOWEST = 15
IDLE_SECONDS = 30  # the lab's own use, sampled before each no-op run


def lab_containers() -> list[str]:
    return sorted(c["Names"][0] for c in lab.containers() if c.get("State") == "running")


@dataclass
class Cpu:
    """CPU-s during a run: the whole machine, ansible-playbook with its children, and each lab container."""

    machine: float
    controller: float
    containers: dict[str, float]


def cpu_now() -> Cpu:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Cpu(machine_busy(), usage.ru_utime + usage.ru_stime, {n: container_cpu([n]) for n in lab_containers()})


def cpu_since(before: Cpu) -> Cpu:
    after = cpu_now()
    return Cpu(
        after.machine - before.machine,
        after.controller - before.controller,
        {n: c - before.containers.get(n, 0.0) for n, c in after.containers.items()},  # a new container: all of it,
    )


def idle_per_minute() -> float:
    """The machine's busy CPU-s per minute while nothing runs Ansible: the lab sealing, syncing and selling."""
    busy = machine_busy()
    time.sleep(IDLE_SECONDS)
    return (machine_busy() - busy) * 60 / IDLE_SECONDS


@dataclass
class Timed:
    label: str
    seconds: float
    returncode: int
    changed: dict[str, int]
    rows: list[dict] = field(default_factory=list)
    cpu: Cpu | None = None
    idle: float | None = None  # machine CPU-s per minute just before the run, if sampled


def run_site(label: str, env: dict[str, str], logdir: Path, *args: str, idle: bool = False) -> Timed:
    times = logdir / f"{label.replace(' ', '-')}.times.json"
    extra = {
        **env,
        "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "bench" / "callbacks"),
        "ANSIBLE_CALLBACKS_ENABLED": "task_times",
        "HELIOGRID_TASK_TIMES": str(times),
    }
    background = idle_per_minute() if idle else None
    saved = dict(lab.ENV)
    lab.ENV.update(extra)
    print(f"site_profile: {label}: ansible-playbook site.yml ({env or 'ansible.cfg'})", flush=True)
    before = cpu_now()
    start = time.monotonic()
    try:
        result = lab.playbook("site.yml", *args, log=logdir / f"{label.replace(' ', '-')}.log")
    finally:
        lab.ENV.clear()
        lab.ENV.update(saved)
    seconds = time.monotonic() - start
    cpu = cpu_since(before)
    changed = {h: r["changed"] for h, r in result.recap.items() if r["changed"]}
    rows = json.loads(times.read_text()) if times.exists() else []
    print(f"site_profile: {label}: {seconds:.0f} s, rc {result.returncode}, changed {changed or 0}", flush=True)
    if result.returncode != 0:
        print(result.output[-3000:])
    return Timed(label, seconds, result.returncode, changed, rows, cpu, background)


def slowest(run: Timed) -> list[str]:
    lines = [
        f"The {SLOWEST} slowest tasks of *{run.label}*, each on one host (host, play, task, module, result, seconds):",
        "",
        "| host | play | task | module | result | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(run.rows, key=lambda r: r["seconds"], reverse=True)[:SLOWEST]:
        lines.append(
            f"| {r['host']} | {r['play']} | {r['task']} | {r['action'].split('.')[-1]} | {r['status']} "
            f"| {r['seconds']:.1f} |"
        )
    per_host: dict[str, list[float]] = defaultdict(list)
    for r in run.rows:
        per_host[r["host"]].append(r["seconds"])
    lines += [
        "",
        "Per host: tasks run, and the sum of their times. Hosts run side by side, so the sums overlap; the largest "
        "is about what a strategy that never waits for other hosts could reach: "
        + ", ".join(f"{h} {len(v)} tasks {sum(v):.0f} s" for h, v in sorted(per_host.items())),
    ]
    return lines


def cpu_cell(run: Timed) -> str:
    return f"{run.cpu.machine:.0f} / {run.cpu.controller:.0f}" if run.cpu else ""


def cpu_growth(before: Timed, after: Timed, added: int) -> list[str]:
    """Where an added Pi's seconds go: the CPU-s of the controller, of the added Pis' containers, of the rest."""
    if not (before.cpu and after.cpu):
        return []
    machine = (after.cpu.machine - before.cpu.machine) / added
    controller = (after.cpu.controller - before.cpu.controller) / added
    new = [n for n in after.cpu.containers if n not in before.cpu.containers]
    own = sum(after.cpu.containers[n] for n in new) / added
    cores, rest = os.cpu_count() or 1, machine - controller - own
    lines = [
        "",
        f"CPU per added Pi in the no-op run: {machine:.1f} CPU-s of the machine ({machine / cores:.1f} s on its "
        f"{cores} cores if nothing waited): ansible-playbook with its workers and Mitogen {controller:.1f}, "
        f"the Pi's own container {own:.1f} (its modules, its geth and agent), the rest {rest:.1f} "
        "(the hosts it talks to, podman, the kernel).",
    ]
    if before.idle is not None and after.idle is not None:
        idle = (after.idle - before.idle) / added
        few, many = len(pi_containers(before)), len(pi_containers(after))
        lines[-1] += (
            f" With no playbook running the lab used {before.idle:.0f} CPU-s per minute with {few} "
            f"Pis and {after.idle:.0f} with {many}: {idle:.1f} per added Pi per minute "
            f"(its geth follows the chain, its agent sells), {idle * after.seconds / 60:.1f} CPU-s of the run."
        )
    return lines


def pi_containers(run: Timed) -> list[str]:
    """The Pis' containers that ran during `run`."""
    return [n for n in (run.cpu.containers if run.cpu else {}) if n.startswith(f"{lab.PREFIX}pi")]


def section(fresh: Timed | None, runs: list[Timed], logdir: Path, grown: list[Timed] = ()) -> list[str]:
    lines = [
        "`ansible-playbook site.yml` on the lab (3 miners, 1 stats host, 3 Pis of which pi1 is arm64 under "
        f"qemu-user), one run after the other on the same lab. Logs: `{logdir}` (on the machine that ran it).",
        "",
        "| run | configuration | wall time (s) | CPU-s: machine / ansible-playbook | changed | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in ([fresh] if fresh else []) + runs:
        name = "fresh lab" if r is fresh else "no-op re-run"
        config = CANDIDATES.get(r.label, (r.label,))[0] if r is not fresh else CANDIDATES["mitogen"][0]
        result = "ok" if r.returncode == 0 else f"**failed** (rc {r.returncode})"
        changed = sum(r.changed.values())
        where = f" ({', '.join(f'{h}: {c}' for h, c in r.changed.items())})" if r.changed else ""
        lines.append(f"| {name} | {config} | {r.seconds:.0f} | {cpu_cell(r)} | {changed}{where} | {result} |")
    base = len(lab.inventory_hosts("pis"))
    for r in grown:
        result = "ok" if r.returncode == 0 else f"**failed** (rc {r.returncode})"
        changed = sum(r.changed.values())
        lines.append(
            f"| {r.label} | {CANDIDATES['mitogen'][0]} | {r.seconds:.0f} | {cpu_cell(r)} | {changed} | {result} |"
        )
    adopted = next((r for r in runs if r.label == "mitogen"), None)
    rerun = next((r for r in grown if r.label.startswith("no-op re-run")), None)
    if adopted and rerun and adopted.returncode == rerun.returncode == 0:
        pis = int(rerun.label.split(", ")[1].split()[0])
        growth = (rerun.seconds - adopted.seconds) / (pis - base)
        added = rerun.seconds - adopted.seconds
        lines += ["", f"Growth: {base} → {pis} Pis adds {added:.0f} s ({growth:+.1f} s per Pi)."]
        lines += cpu_growth(adopted, rerun, pis - base)
    for r in [fresh, adopted]:
        if r and r.rows:
            lines += ["", *slowest(r)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="bring the lab up from nothing and apply site.yml first")
    parser.add_argument("--grow", type=int, default=0, help="Pis to add after the no-op runs (0..16)")
    parser.add_argument(
        "--candidates", default="mitogen,plain", help=f"no-op runs, in order (of {', '.join(CANDIDATES)})"
    )
    args = parser.parse_args(argv)
    chosen = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in chosen if c not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; expected some of {list(CANDIDATES)}")
    report = Run("site_profile", "site.yml per task and host: a fresh lab, and no-op runs side by side", lab=True)
    logdir = Path(tempfile.mkdtemp(prefix="heliogrid-bench-profile-"))
    fresh = None
    if args.fresh:
        lab.cli("down")  # the controller's state folder too
        lab.cli("up")
        fresh = run_site("fresh", {}, logdir)
        report.write(section(fresh, [], logdir))
        if fresh.returncode != 0:
            return 1
    else:
        problem = lab_problem()
        if problem:
            report.skip(problem)
            return 0
    runs: list[Timed] = []
    for label in chosen:
        runs.append(run_site(label, CANDIDATES[label][1], logdir, idle=label == "mitogen" and args.grow > 0))
        report.write(section(fresh, runs, logdir))
    grown: list[Timed] = []
    if args.grow:
        grown = grow(args.grow, logdir)
        report.write(section(fresh, runs, logdir, grown))
    return 0 if all(r.returncode == 0 for r in [*runs, *grown, *([fresh] if fresh else [])]) else 1


def grow(extra: int, logdir: Path) -> list[Timed]:
    """Start `extra` Pi stand-ins, join them in one limited run, then re-run site.yml over every Pi; remove them."""
    base = lab.inventory_hosts("pis")
    subnet = lab.hostvars()[base[0]]["lab_address"].rsplit(".", 1)[0]
    pis = [
        (f"pi{n}", f"{subnet}.{ADDRESS_BASE + n}", IMAGES[i % 2])
        for i, n in enumerate(range(FIRST_EXTRA, FIRST_EXTRA + extra))
    ]
    started: list[str] = []
    inventory = logdir / "extra-pis.json"
    sources = ["-i", str(ROOT / "inventories" / "lab"), "-i", str(inventory)]
    try:
        start_containers(pis, started)
        write_inventory(inventory, pis)
        # As docs/pi-guide.md has operators join Pis: the new Pis and the monitoring host, which scrapes them.
        names = ",".join([*(name for name, _, _ in pis), "monitoring"])
        joined = run_site(f"{extra} Pis join (--limit)", {}, logdir, *sources, "--limit", names)
        if joined.returncode != 0:
            return [joined]
        return [joined, run_site(f"no-op re-run, {len(base) + extra} Pis", {}, logdir, *sources, idle=True)]
    finally:
        remove_containers(started)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
