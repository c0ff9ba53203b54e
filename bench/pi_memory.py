#!/usr/bin/env python3
"""Resident memory of the metering agent and of geth on each lab Pi, per Pi and architecture (lab).

For every host of the `pis` group it reads, inside the container (`podman exec`), the main process of
geth.service and heliogrid-agent.service (`systemctl show -p MainPID`), its resident set (VmRSS) and peak
(VmHWM) from /proc, a few samples apart, and what systemd accounts to the unit (MemoryCurrent; the lab's
cgroupfs containers may not account it). The arm64 Pi runs under qemu-user: its figures are the emulator's
process, guest program plus translation cache, so they overstate what a real Pi uses.

    python bench/pi_memory.py                 # 3 samples 10 s apart
    python bench/pi_memory.py --samples 6 --interval 30

Needs the lab up with site.yml applied (make demo); otherwise says so and records the skipped attempt.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from heliogrid_testing.lab_state import AGENT_SERVICE, GETH_SERVICE, lab_problem, run_in
from heliogrid_testing.results import Run
from lab import lab

ROOT = Path(__file__).resolve().parent.parent

UNITS = {"geth": GETH_SERVICE, "agent": AGENT_SERVICE}


def unit_facts(host: str, unit: str) -> dict[str, str]:
    out = run_in(
        host, "systemctl", "show", "-p", "MainPID", "-p", "MemoryCurrent", "-p", "ActiveEnterTimestamp", unit
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def proc_status(host: str, pid: str) -> dict[str, int]:
    """VmRSS and VmHWM of a process in KiB (empty when it is gone)."""
    out = run_in(host, "cat", f"/proc/{pid}/status").stdout
    found = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def cmdline(host: str, pid: str) -> list[str]:
    return run_in(host, "cat", f"/proc/{pid}/cmdline").stdout.split("\0")


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3, help="samples per process (1..20)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples (1..300)")
    args = parser.parse_args(argv)
    if not 1 <= args.samples <= 20 or not 1 <= args.interval <= 300:
        parser.error(f"expected 1..20 samples and an interval of 1..300 s, got {vars(args)}")
    run = Run("pi_memory", "Agent and Pi geth resident memory", lab=True)
    problem = lab_problem()
    if problem:
        print(f"pi_memory: skipped: {problem}")
        run.skip(problem)
        return 0

    variables = lab.hostvars()
    pis = lab.inventory_hosts("pis")
    rows = []
    for pi in pis:
        arch = run_in(pi, "uname", "-m").stdout.strip()
        image = variables.get(pi, {}).get("lab_image", "?")
        for name, unit in UNITS.items():
            facts = unit_facts(pi, unit)
            pid = facts.get("MainPID", "0")
            if pid in ("", "0"):
                rows.append((pi, arch, image, name, None, None, facts, [], "not running"))
                continue
            rss, hwm = [], 0
            for i in range(args.samples):
                status = proc_status(pi, pid)
                if status:
                    rss.append(status["VmRSS"])
                    hwm = max(hwm, status["VmHWM"])
                if i + 1 < args.samples:
                    time.sleep(args.interval)
            argv_ = cmdline(pi, pid)
            note = ""
            if name == "geth" and "--cache" in argv_:
                note = f"--cache {argv_[argv_.index('--cache') + 1]}"
            rows.append((pi, arch, image, name, rss, hwm, facts, argv_, note))
            print(
                f"{pi:6} {arch:8} {name:5} pid {pid:>6}: VmRSS median {mib(statistics.median(rss)) if rss else '-'} "
                f"MiB, peak {mib(hwm)} MiB, MemoryCurrent {facts.get('MemoryCurrent', '?')} {note}",
                flush=True,
            )

    lines = [
        f"Per lab Pi, the main process of each unit: VmRSS (median of {args.samples} samples {args.interval:g} s "
        "apart) and VmHWM (peak since start) from /proc inside the container; MemoryCurrent as systemd accounts "
        "the unit. *Running since*: the unit's start, so the reader knows how warm the figure is.",
        "",
        "| Pi | arch (image) | process | resident (MiB) | peak (MiB) | MemoryCurrent (MiB) | running since | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pi, arch, image, name, rss, hwm, facts, _argv, note in rows:
        current = facts.get("MemoryCurrent", "")
        current = mib(int(current) / 1024) if current.isdigit() else (current or "?")
        emulated = " (qemu-user: emulator + guest)" if arch == "aarch64" and "arm64" in image else ""
        if rss is None:
            lines.append(f"| {pi} | {arch} ({image}) | {name} | - | - | {current} | - | {note} |")
            continue
        lines.append(
            f"| {pi} | {arch} ({image}){emulated} | {name} | {mib(statistics.median(rss)) if rss else '-'} "
            f"| {mib(hwm)} | {current} | {facts.get('ActiveEnterTimestamp', '?')} | {note} |"
        )
    lines += [
        "",
        "geth on the Pis is the non-sealing client of roles/geth_client (its `--cache` in the notes); the agent is "
        "one Python process (web3.py, SQLite, the UI and metrics servers). On the emulated arm64 Pi the figures "
        "include qemu's translation cache; a real Pi 4/5 runs the same programs natively.",
    ]
    run.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
