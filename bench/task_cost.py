#!/usr/bin/env python3
"""What one task costs on one more host, by kind, with the repository's configuration (lab).

The growth of a no-op `site.yml` with the number of Pis is the cost of one Pi's host-tasks: each is a worker the
controller forks, the variables it computes for the host, a round trip to the host and the module's work there.
This script measures that cost per host-task for the kinds a no-op run is made of:

  skipped   a task whose `when` is false: the worker forks, evaluates the condition and ends
  assert    an action that runs on the controller only (assert; validate_argument_spec and set_fact are alike)
  command   `/bin/true` on the host: a module call over the connection, and a process on the host
  file      a directory that exists (/etc, `state: directory`): a module that reads the host and changes nothing

It starts --hosts Pi stand-ins (amd64 containers, as bench/site_lab.py starts them; no `site.yml` needed), runs a
playbook of --tasks tasks of one kind on one of them and then on all of them, and divides the difference by
(hosts - 1) x tasks, so Ansible's start-up and the connections' set-up cancel out. Per host-task it reports the
controller's CPU (ansible-playbook and its children: the main process, the workers, Mitogen's multiplexer, ssh),
the main process's share of it (serial: it computes each host's variables and forks each worker in turn), the
stand-ins' CPU (their containers' cgroups) and the whole machine's busy CPU, each less what it used per second
unprompted (measured for 10 s before: the rest of the lab seals blocks and runs its agents).

With --site-times (a task_times.py record of a no-op `site.yml`, as bench/site_profile.py writes one), it counts
one Pi's host-tasks by kind and multiplies: the machine CPU one more Pi costs, and the growth per Pi it bounds on
this machine's cores (the lab's Pis share the machine with the controller).

    python bench/task_cost.py                          # 7 stand-ins, 40 tasks of each kind (about 4 min)
    python bench/task_cost.py --site-times FILE        # and the per-Pi estimate for that site.yml run

Writes the section task_cost of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from site_lab import ADDRESS_BASE, FIRST_EXTRA, IMAGES, remove_containers, start_containers, write_inventory

from heliogrid_testing.lab_state import lab_problem
from heliogrid_testing.results import Run
from lab import lab
from lab.stages import machine_busy

ROOT = Path(__file__).resolve().parent.parent

KINDS = {
    "skipped": {"ansible.builtin.command": "/bin/true", "when": False},
    "assert": {"ansible.builtin.assert": {"that": ["inventory_hostname is string"], "quiet": True}},
    "command": {"ansible.builtin.command": "/bin/true", "changed_when": False},
    "file": {"ansible.builtin.file": {"path": "/etc", "state": "directory"}},
}
# What a site.yml task counts as: actions that never reach the host are priced as `assert`.
LOCAL_ACTIONS = {
    "ansible.builtin.assert",
    "ansible.builtin.validate_argument_spec",
    "ansible.builtin.set_fact",
    "ansible.builtin.debug",
    "ansible.builtin.include_role",
    "ansible.builtin.include_tasks",
    "ansible.builtin.meta",
}


@dataclass
class Usage:
    wall: float
    controller: float  # CPU-s of ansible-playbook and its waited-for children
    main: float  # CPU-s of the ansible-playbook process itself
    hosts: float  # CPU-s of the stand-ins' containers
    machine: float  # busy CPU-s of the whole machine

    def __sub__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f) - getattr(other, f) for f in self.__dataclass_fields__))


def container_cpu(names: list[str]) -> float:
    """CPU-s of the named containers, from their cgroups (v1 cpuacct or v2 cpu.stat, as podman's cgroupfs lays out)."""
    total = 0.0
    for name in names:
        cid = lab.podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
        v1 = Path(f"/sys/fs/cgroup/cpuacct/libpod_parent/libpod-{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/libpod_parent/libpod-{cid}/cpu.stat")
        if v1.exists():
            total += int(v1.read_text()) / 1e9
        elif v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            total += int(usage["usage_usec"]) / 1e6
        else:
            raise SystemExit(f"task_cost: no cgroup CPU account found for {name}")
    return total


@dataclass
class Background:
    """What the stand-ins and the machine (the rest of the lab: sealing, the agents) use per second unprompted."""

    hosts: float
    machine: float

    @classmethod
    def measure(cls, containers: list[str], seconds: float = 10) -> Background:
        hosts0, busy0 = container_cpu(containers), machine_busy()
        time.sleep(seconds)
        return cls((container_cpu(containers) - hosts0) / seconds, (machine_busy() - busy0) / seconds)


def run(playbook: Path, inventory: Path, limit: list[str], containers: list[str], idle: Background) -> Usage:
    """ansible-playbook on `limit`, with the CPU it and the machine used meanwhile (less their background use)."""
    args = [str(lab.BIN / "ansible-playbook"), "-i", str(ROOT / "inventories" / "lab"), "-i", str(inventory)]
    args += ["--limit", ",".join(limit), str(playbook)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    hosts0, busy0, t0 = container_cpu(containers), machine_busy(), time.monotonic()
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: nobody reads while the playbook runs
        proc = subprocess.Popen(args, env=lab.ENV, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        main = 0.0
        while proc.poll() is None:  # the main process's own CPU, read until it ends (its children are counted apart)
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                main = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError):
                pass
            time.sleep(0.1)
        log.seek(0)
        output = log.read()
    wall, busy, hosts = time.monotonic() - t0, machine_busy() - busy0, container_cpu(containers) - hosts0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"task_cost: {playbook.name} on {len(limit)} host(s) failed:\n{output[-3000:]}")
    controller = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Usage(wall, controller, main, hosts - idle.hosts * wall, busy - idle.machine * wall)


def write_playbook(path: Path, kind: str, tasks: int) -> None:
    body = [{"name": f"{kind} {i}", **KINDS[kind]} for i in range(tasks)]
    play = {"name": f"task_cost {kind}", "hosts": "pis", "gather_facts": False, "tasks": body}
    path.write_text(json.dumps([play], indent=1))


def site_counts(times: Path) -> tuple[str, Counter]:
    """One Pi's host-tasks in a task_times record, by the kind that prices them (the Pi with the most rows among
    the amd64 ones: pi1 is emulated arm64 and runs a few more)."""
    rows = json.loads(times.read_text())
    per_host = Counter(r["host"] for r in rows if r["host"].startswith("pi") and r["host"] != "pi1")
    if not per_host:
        raise SystemExit(f"task_cost: no amd64 Pi in {times}")
    pi = per_host.most_common(1)[0][0]
    counts: Counter = Counter()
    for r in rows:
        if r["host"] != pi:
            continue
        if r["status"] == "skipped":
            counts["skipped"] += 1
        elif r["action"] in LOCAL_ACTIONS:
            counts["assert"] += 1
        elif r["action"] == "ansible.builtin.command":
            counts["command"] += 1
        else:
            counts["file"] += 1
    return pi, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=7, help="Pi stand-ins to start (default 7)")
    parser.add_argument("--tasks", type=int, default=40, help="tasks of each kind in a run (default 40)")
    parser.add_argument("--site-times", type=Path, help="task_times.py JSON of a no-op site.yml: the per-Pi estimate")
    args = parser.parse_args(argv)
    if args.hosts < 2:
        parser.error("--hosts must be at least 2")

    result = Run("task_cost", "What one task costs on one more host, by kind", lab=True)
    problem = lab_problem()  # the stand-ins join the lab's network; the background measured is the lab's
    if problem:
        result.skip(problem)
        return 0
    base = lab.inventory_hosts("pis")
    subnet = lab.hostvars()[base[0]]["lab_address"].rsplit(".", 1)[0]
    numbers = range(FIRST_EXTRA, FIRST_EXTRA + args.hosts)
    pis = [(f"pi{n}", f"{subnet}.{ADDRESS_BASE + n}", IMAGES[0]) for n in numbers]
    names = [name for name, _, _ in pis]
    started: list[str] = []
    costs: dict[str, Usage] = {}
    with tempfile.TemporaryDirectory(prefix="heliogrid-task-cost-") as tmp:
        inventory = Path(tmp) / "stand-ins.json"
        try:
            start_containers(pis, started)
            write_inventory(inventory, pis)
            playbook = Path(tmp) / "warm.json"
            write_playbook(playbook, "command", 1)
            run(playbook, inventory, names, started, Background(0, 0))  # first contact: Mitogen's bootstrap on each
            idle = Background.measure(started)
            print(f"task_cost: background {idle.hosts:.2f} CPU-s/s on the stand-ins, {idle.machine:.2f} on the machine")
            for kind in KINDS:
                playbook = Path(tmp) / f"{kind}.json"
                write_playbook(playbook, kind, args.tasks)
                one = run(playbook, inventory, names[:1], started, idle)
                every = run(playbook, inventory, names, started, idle)
                costs[kind] = every - one
                per = 1000 / ((args.hosts - 1) * args.tasks)
                d = costs[kind]
                print(
                    f"task_cost: {kind}: per host-task controller {d.controller * per:.0f} ms "
                    f"(main process {d.main * per:.0f}), host {d.hosts * per:.0f} ms, "
                    f"machine {d.machine * per:.0f} ms; "
                    f"wall {one.wall:.1f} s on 1 host, {every.wall:.1f} s on {args.hosts}",
                    flush=True,
                )
        finally:
            remove_containers(started)

    per = 1000 / ((args.hosts - 1) * args.tasks)
    lines = [
        f"{args.tasks} tasks of each kind on 1 and on {args.hosts} Pi stand-ins (amd64 containers) with the "
        "repository's ansible.cfg (Mitogen, linear strategy); each figure is the difference of the two runs per added "
        "host-task, in CPU milliseconds. *controller* is ansible-playbook with its workers, Mitogen's multiplexer and "
        "ssh; *main* is the part of it in the main process, which works for one host after the other; *host* is the "
        "stand-in's container. What the stand-ins and the machine use meanwhile without being asked (the rest of the "
        "lab seals blocks and runs its agents), measured for 10 s before, is taken off.",
        "",
        "| kind | controller (ms) | of which main (ms) | host (ms) | machine (ms) |",
        "|---|---|---|---|---|",
    ]
    for kind, d in costs.items():
        lines.append(
            f"| {kind} | {d.controller * per:.0f} | {d.main * per:.0f} | {d.hosts * per:.0f} | {d.machine * per:.0f} |"
        )
    if args.site_times:
        pi, counts = site_counts(args.site_times)
        cores = os.cpu_count() or 1
        machine_s = sum(n * costs[kind].machine * per / 1000 for kind, n in counts.items())
        parts = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
        lines += [
            "",
            f"One Pi's host-tasks in a no-op `site.yml` ({args.site_times.name}, {pi}): {sum(counts.values())} "
            f"({parts}). At the costs above that is **{machine_s:.1f} CPU-s of machine per added Pi**, "
            f"{machine_s / cores:.1f} s on {cores} cores if nothing waited.",
        ]
        print(f"task_cost: {pi}: {dict(counts)} -> {machine_s:.1f} machine CPU-s per added Pi", flush=True)
    result.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
