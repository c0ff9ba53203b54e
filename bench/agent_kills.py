#!/usr/bin/env python3
"""A Pi's metering agent SIGKILLed many times: nothing lost, nothing credited twice, no stuck nonce (lab).

The benchmark mode of tests/system/test_faults.py's kill test (CI kills 5 times), through the same code
(heliogrid_testing/agents.py kill_repeatedly and after_kills): the agent on one lab Pi is killed --kills times, most
at a random moment within --max-delay s of its (re)start, --aimed of them just after a kWh crossing (while its
report is being signed, sent and mined). Then it waits for a report signed after the last kill to be mined, reads
the agent and the chain at a quiet moment and records what they disagree on (nothing, when all is well), the
meter's transactions stuck in the node's pool, how many kills came while a report was in flight, and how fast
systemd brought the agent back (the unit's RestartSec is 5 s).

    python bench/agent_kills.py                          # 100 kills on pi3, 10 of them aimed
    python bench/agent_kills.py --kills 200 --aimed 20 --pi pi1 --seed 7

Needs the lab up with site.yml applied (make demo); otherwise says so and records the skipped attempt. An aimed
kill waits for the next kWh (about a minute on a lab Pi).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from heliogrid_testing import agents
from heliogrid_testing.chain import Contracts, period
from heliogrid_testing.lab_state import lab_problem
from heliogrid_testing.results import Run
from lab import lab

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="how many SIGKILLs (1..1000)")
    parser.add_argument("--aimed", type=int, default=10, help="how many of them come just after a kWh crossing")
    parser.add_argument("--max-delay", type=float, default=12.0, help="a random kill comes within this many s")
    parser.add_argument("--pi", default="pi3", help="the lab Pi whose agent is killed")
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill moments (printed; random if unset)")
    args = parser.parse_args(argv)
    if not 1 <= args.kills <= 1000 or not 0 <= args.aimed <= args.kills or not 0 < args.max_delay <= 300:
        parser.error(f"expected 1..1000 kills, 0..kills aimed and a delay of 0..300 s, got {vars(args)}")
    run = Run("agent_kills", "Agent SIGKILLed at random moments: on chain equals the meter", lab=True)
    problem = lab_problem()
    if problem is None and args.pi not in lab.inventory_hosts("pis"):
        problem = f"{args.pi} is not a Pi of the lab inventory"
    if problem:
        print(f"agent_kills: skipped: {problem}")
        run.skip(problem)
        return 0

    seed = args.seed if args.seed is not None else random.randrange(10**6)
    contracts = Contracts("stats1")
    try:
        meter = agents.status(args.pi)["address"]
        capacity = contracts.meter(meter).capacity_watts
        restarts_before = int(agents.unit_properties(args.pi, agents.UNIT, "NRestarts")["NRestarts"])
        print(f"agent_kills: {args.kills} kills of {args.pi}'s agent ({args.aimed} aimed), seed {seed}")
        started = time.monotonic()
        kills = agents.kill_repeatedly(
            args.pi, args.kills, random.Random(seed), max_delay=args.max_delay, aimed=args.aimed, period=period()
        )
        killing = time.monotonic() - started
        restarts = int(agents.unit_properties(args.pi, agents.UNIT, "NRestarts")["NRestarts"]) - restarts_before
        print(f"agent_kills: {len(kills)} kills in {killing:.0f} s; systemd counted {restarts} restarts")
        after = agents.after_kills(args.pi, contracts, kills, agents.seconds_per_kwh(capacity))
    finally:
        contracts.close()

    ledger = after.ledger
    problems = ledger.discrepancies() if ledger else ["no quiet moment came to compare the agent with the chain"]
    if not after.report:
        problems.append("no report signed after the last kill was mined")
    if after.stuck:
        problems.append(f"{after.stuck} transaction(s) of the meter stuck in the node's pool")
    if restarts != args.kills:
        problems.append(f"systemd restarted the agent {restarts} times for {args.kills} kills")
    back = [k.restarted_after for k in kills]
    randoms = [k.delay for k in kills if not k.aimed]
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| Pi, meter | {args.pi}, `{meter}` ({capacity} W) |",
        f"| kills (seed) | {len(kills)} ({seed}), over {killing / 60:.1f} min |",
        f"| aimed just after a kWh crossing | {sum(k.aimed for k in kills)} |",
        f"| kills while a report was signed and not yet in a block | {after.in_flight} |",
        f"| kill to a new agent process (median / max) | {statistics.median(back):.1f} s / {max(back):.1f} s |",
        f"| last kill to the first report signed after it, mined | {after.report_after:.0f} s |",
    ]
    if ledger:
        rows += [
            f"| agent's counter at the quiet moment | {ledger.counter_wh:.1f} Wh |",
            f"| on chain at block {ledger.block}: total, credited | {ledger.chain.total_wh} Wh, "
            f"{ledger.chain.credited_kwh} kWh |",
            f"| reports on chain / nonces the agent signed | {len(ledger.reports)} / "
            f"{len({t['nonce'] for t in ledger.transactions})} |",
        ]
    rows += [f"| meter's transactions stuck in the node's pool | {after.stuck} |"]
    verdict = "none: on chain equals the meter, nothing credited twice" if not problems else "; ".join(problems)
    body = [
        *rows,
        "",
        f"Disagreements between the agent and the chain: **{verdict}**.",
        "",
        "The kill loop and the checks are those of tests/system/test_faults.py, which CI runs with 5 kills. Random "
        f"kills came {min(randoms, default=0):.1f} to {max(randoms, default=0):.1f} s after the agent's (re)start "
        f"(median {statistics.median(randoms or [0]):.1f} s); replay them with `--seed {seed}`.",
    ]
    for line in [*rows, "", f"disagreements: {verdict}"]:
        print(line)
    run.write(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
