#!/usr/bin/env python3
"""JSON-RPC calls the metering agent's reporter makes per minute, reading the chain only when it moved.

The agent's report loop runs ``Reporter.step`` every ``chain.poll_seconds`` (2 s) and ``refresh_balances`` every
15 s (agent.py). Blocks come every Clique period (5 s on the lab), so most steps meet the block of the step
before. This script runs that loop in fake time against the unit tests' in-memory chain
(heliogrid_testing/fakechain.py, a block every ``--period`` seconds) with the agent's real Reporter and Store, and
counts every call the reporter makes on the chain, in two runs of the same loop:

- *every step*: the reporter forgets what it read before each step, so it reads the chain every time (what
  every step did before the reporter kept the reads of a block);
- *per block*: the reporter as it is: the head every step, the rest again only at a new block.

Two loads: *idle* (no export, the night or a cloudy day: no report) and *exporting* (``--export-watts``, a report
per kWh, each mined in the next block). The chain is in memory, so the figures are calls, not seconds: each
call is one HTTP request and an eth_call or RPC answer the Pi's node serves and the agent decodes.

    python bench/agent_idle_rpc.py                        # 60 min, period 5 s, poll 2 s
    python bench/agent_idle_rpc.py --minutes 30 --period 2

No chain, no network: runs anywhere the venv does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from eth_account import Account
from heliogrid_agent.clock import FakeClock
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.store import Store

from heliogrid_testing.fakechain import FakeChain
from heliogrid_testing.results import Run

BALANCES_SECONDS = 15  # agent.py's _report_loop refreshes the balances this often
CALLS = (
    "chain_id", "block_number", "latest_timestamp", "syncing", "peer_count", "nonce", "gas_price", "send_raw",
    "receipt", "get_meter", "tolerance_percent", "max_report_seconds", "paused", "ether_balance", "token_balance",
    "allowance", "get_offer", "next_offer_id", "ask_price",
)  # fmt: skip
KEY = "0x" + "11" * 32  # a throwaway key: the in-memory chain only checks signatures


class EveryStep(Reporter):
    """The reporter reading the whole chain at every step: what it read before is forgotten first."""

    def step(self, imported_uwh: int | None = None) -> None:
        with self.lock:
            self.forget_reads()
            super().step(imported_uwh)


def counting(chain: FakeChain) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name in CALLS:
        original = getattr(chain, name)
        setattr(chain, name, lambda *a, _n=name, _f=original: (counts.update([_n]), _f(*a))[1])
    return counts


def run_loop(cls: type[Reporter], minutes: int, period: int, poll: int, export_watts: int) -> dict:
    clock = FakeClock()
    account = Account.from_key(KEY)
    chain = FakeChain(clock, period=period)
    chain.register(account.address, owner="0x" + "22" * 20, capacity_watts=max(export_watts, 1000) * 2)
    with tempfile.TemporaryDirectory(prefix="bench-idle-rpc-") as tmp:
        store = Store(Path(tmp) / "agent.db")
        reporter = cls(chain, store, account, expected_chain_id=1337, clock=clock)
        reporter.step()  # the start: everything is read once, not counted
        reporter.refresh_balances()
        counts = counting(chain)
        steps, balances_due, start_block = 0, clock.time() + BALANCES_SECONDS, chain.block_number()
        counts.clear()
        total_uwh = 0
        for _ in range(minutes * 60 // poll):
            clock.advance(poll)
            if export_watts:
                delta = export_watts * poll * UWH_PER_WH // 3600
                total_uwh += delta
                store.record_sample(total_uwh, delta, "day", clock.time())
            reporter.step()
            steps += 1
            if reporter.status.node_up and clock.time() >= balances_due:
                reporter.refresh_balances()
                balances_due = clock.time() + BALANCES_SECONDS
        blocks = len(chain.blocks) - 1 - start_block
        reports = sum(1 for r in store.transactions() if r.kind == "report" and r.status == "mined")
        wh = chain.meter(account.address).total_wh
        store.close()
    return {"counts": counts, "steps": steps, "blocks": blocks, "reports": reports, "onchain_wh": wh}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="fake minutes per run")
    parser.add_argument("--period", type=int, default=5, help="Clique block period (s)")
    parser.add_argument("--poll", type=int, default=2, help="the agent's chain.poll_seconds")
    parser.add_argument("--export-watts", type=int, default=3600, help="export of the exporting load (W)")
    args = parser.parse_args(argv)
    if not 1 <= args.minutes <= 24 * 60 or not 1 <= args.period <= 60 or not 1 <= args.poll <= 60:
        parser.error(f"expected minutes 1..1440, period 1..60 s, poll 1..60 s; got {vars(args)}")
    run = Run("agent_idle_rpc", "Reporter JSON-RPC calls per minute: every step versus once per block")
    lines = [
        f"The agent's report loop in fake time: `Reporter.step` every {args.poll} s, `refresh_balances` every "
        f"{BALANCES_SECONDS} s, a block every {args.period} s, {args.minutes} min per run, against the in-memory "
        "chain of the unit tests. *Every step*: the reads of the previous step forgotten before each step (the "
        "behaviour before the reporter kept a block's reads); *per block*: as the agent runs now. Calls counted "
        "at the chain interface, one JSON-RPC request each.",
        "",
        "| load | reporter | steps | blocks | reports mined | calls | calls/min | calls/step | "
        "get_meter + paused /min | block_number /min | token_balance /min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_method: dict[str, dict[str, Counter[str]]] = {}
    for load, watts in (("idle", 0), (f"exporting {args.export_watts} W", args.export_watts)):
        by_method[load] = {}
        for label, cls in (("every step", EveryStep), ("per block", Reporter)):
            r = run_loop(cls, args.minutes, args.period, args.poll, watts)
            counts, total = r["counts"], sum(r["counts"].values())
            by_method[load][label] = counts
            per_min = total / args.minutes
            fast = (counts["get_meter"] + counts["paused"]) / args.minutes
            print(
                f"{load:>16} {label:>10}: {r['steps']} steps, {r['blocks']} blocks, {r['reports']} reports mined "
                f"({r['onchain_wh']} Wh on chain); {total} calls = {per_min:.1f}/min, {total / r['steps']:.2f}/step",
                flush=True,
            )
            lines.append(
                f"| {load} | {label} | {r['steps']} | {r['blocks']} | {r['reports']} | {total} | {per_min:.1f} | "
                f"{total / r['steps']:.2f} | {fast:.1f} | {counts['block_number'] / args.minutes:.1f} | "
                f"{counts['token_balance'] / args.minutes:.1f} |"
            )
    lines += ["", "Calls by method (whole run):", "", "| load | reporter | calls by method |", "|---|---|---|"]
    for load, runs in by_method.items():
        for label, counts in runs.items():
            detail = ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            print(f"{load:>16} {label:>10}: {detail}")
            lines.append(f"| {load} | {label} | {detail} |")
    run.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
