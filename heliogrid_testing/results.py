"""The results file of the benchmarks, docs/benchmarks.md: each bench script replaces its own section.

A section holds what one run of one script measured, with the machine, the date, the commit, the command and
the load average at its start and end (this machine is shared: the load says how far a figure is from a quiet
machine's). Nothing in the file is written by hand; `make bench` runs every script and each rewrites its part.

    run = Run("kwh_latency", "kWh crossing -> credited on chain")   # at the start: machine, load
    ...measure...
    run.write(["| period | ... |", ...])                            # at the end: load again, the figures
    run.skip("the lab is not up")                                   # or: why nothing was measured
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "benchmarks.md"

# Sections appear in this order whatever order the scripts run in; unknown names go last.
ORDER = (
    "kwh_latency",
    "autobuy_latency",
    "meter_throughput",
    "agent_kills",
    "pi_memory",
    "agent_idle_rpc",
    "site_profile",
    "task_cost",
    "site_rerun",
    "new_pi",
    "stats_api",
    "contract_gas",
)

HEADER = """# Benchmarks

Figures measured by the scripts in [`bench/`](../bench); **this file is written by them** (`make bench` runs
every script, and each one replaces its own section with what it measured). Do not edit it by hand: re-run the
script instead (`.venv/bin/python bench/<script>.py`, see its `--help`).

Each section names the machine, the date, the commit and the load average (1/5/15 min) at the start and the end
of its run. The project's machine is shared with other builds and test runs, so a figure taken under a load
above the core count is a pessimistic one: a quiet machine does better. Benchmarks print figures; they do not
pass or fail. Lab benchmarks (marked *lab*) need the lab up with `site.yml` applied (`make demo`); without it
they keep their previous section and record the skipped attempt.
"""

BEGIN = "<!-- bench:{name} -->"
END = "<!-- /bench:{name} -->"
SECTION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n?", re.DOTALL)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    """CPU count and model, memory, kernel: enough to tell two machines apart."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_kib / 2**20:.1f} GiB RAM, "
        f"Linux {platform.release()} {platform.machine()}, Python {platform.python_version()}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (work tree modified)" if git("status", "--porcelain", "--untracked-files=no") else "")


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


class Run:
    """One run of one bench script: remembers how it started, writes its section when done."""

    def __init__(self, name: str, title: str, lab: bool = False) -> None:
        self.name = name
        self.title = title + (" (*lab*)" if lab else "")
        self.started = time.time()
        self.load_start = load_average()
        self.command = " ".join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])

    def _context(self) -> list[str]:
        minutes = (time.time() - self.started) / 60
        return [
            f"- machine: {machine()}",
            f"- run: {utc(self.started)}, {minutes:.1f} min, commit {commit()}, `{self.command}`",
            f"- load average (1/5/15 min): {self.load_start} at start, {load_average()} at end",
        ]

    def write(self, body: list[str]) -> None:
        """Replace this script's section with the run's context and ``body`` (Markdown lines)."""
        _replace(self.name, [f"## {self.title}", "", *self._context(), "", *body])
        print(f"results: section {self.name!r} written to {os.path.relpath(RESULTS, ROOT)}")

    def skip(self, reason: str) -> None:
        """Nothing measured: keep the previous figures (they carry their own date) and say why this run had none."""
        note = f"> Last attempt {utc(self.started)}: not measured ({reason})."
        previous = _sections().get(self.name)
        if previous:
            lines = previous.rstrip("\n").split("\n")
            rest = [line for line in lines[1:] if not line.startswith("> Last attempt")]
            while rest and not rest[0]:
                rest.pop(0)
            _replace(self.name, [lines[0], "", note, "", *rest])
        else:
            _replace(self.name, [f"## {self.title}", "", note])
        print(f"results: {self.name!r} not measured ({reason}); noted in {os.path.relpath(RESULTS, ROOT)}")


def _sections() -> dict[str, str]:
    text = RESULTS.read_text() if RESULTS.exists() else ""
    return {m["name"]: m["body"] for m in SECTION.finditer(text)}


def _replace(name: str, lines: list[str]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # Two scripts at once must not lose a section: they take turns on a lock of the docs folder.
    folder = os.open(RESULTS.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        sections = _sections()
        sections[name] = "\n".join(lines).rstrip("\n") + "\n"
        rank = {n: i for i, n in enumerate(ORDER)}
        names = sorted(sections, key=lambda n: (rank.get(n, len(ORDER)), n))
        parts = [HEADER]
        for n in names:
            parts.append(f"\n{BEGIN.format(name=n)}\n{sections[n]}{END.format(name=n)}\n")
        tmp = RESULTS.with_suffix(".md.tmp")
        tmp.write_text("".join(parts))
        tmp.replace(RESULTS)
    finally:
        os.close(folder)
