#!/usr/bin/env python3
"""Latency from a kWh crossing in the metering agent to the kWh credited on chain, against the block period.

For each block period (a fresh loopback Clique chain per period: heliogrid_testing/devchain.py, geth 1.13, the
contracts deployed by the project's deploy code) the real agent package runs in this process: Agent, Meter,
Store (SQLite, fsync'd), Reporter over Web3Chain, with the lab's reporter cadence (chain.poll_seconds 2 s).
Only the sensor is fake: it reports nothing until the benchmark pushes energy into it, and each push takes
the counter across one kWh boundary (counted energy, as an S0 meter's pulses). The agent then does what it
does on a Pi: the crossing sets "report due", the reporter signs, persists and broadcasts reportProduction
with the cumulative total, and later sees the receipt. An observer polls the RPC node (the Pi's node) every
50 ms for the meter's credited kWh.

Per crossing it records: crossing -> transaction sent (the agent), crossing -> credit visible on the RPC node
(the figure), crossing -> the agent has seen the sale (what its page shows), and how many blocks were sealed
between the crossing and the block holding the report. Crossings are spaced so that one report is in flight
at a time (as on a Pi, where a kWh takes minutes), at a random phase of the block period.

    python bench/kwh_latency.py                          # periods 2 and 5 s, 10 crossings each
    python bench/kwh_latency.py --periods 1 2 5 --crossings 20

Needs `make geth` (the cached geth archive) and the venv (web3, the agent package). Loopback only.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from heliogrid_agent.agent import Agent
from heliogrid_agent.chain import Web3Chain, load_deployment
from heliogrid_agent.clock import SystemClock
from heliogrid_agent.config import parse_config
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.metrics import AgentMetrics
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.sensors.base import Reading, Sensor
from heliogrid_agent.store import Store

from heliogrid_testing.latency import OBSERVER_POLL, HeadObserver, spread, wait_for
from heliogrid_testing.loopback_market import GethNotBuilt, LoopbackMarket, bench_key
from heliogrid_testing.results import Run

ROOT = Path(__file__).resolve().parent.parent

# Large enough that the contract's capacity rule (an increase <= capacity x elapsed block time) allows a kWh
# per block at a 1 s period, so the rule never delays a report here: the figure is the pipeline's latency.
CAPACITY_WATTS = 4_000_000
POLL_SECONDS = 2.0  # the agent's chain.poll_seconds, as on the lab Pis (the role's default)


class PushSensor(Sensor):
    """Counts nothing until energy is pushed; the next read returns it (like an S0 meter's pulses)."""

    name = "push"

    def __init__(self) -> None:
        self._pending_uwh = 0
        self._lock = threading.Lock()

    def push(self, wh: int) -> None:
        with self._lock:
            self._pending_uwh += wh * UWH_PER_WH

    def read(self) -> Reading:
        with self._lock:
            energy, self._pending_uwh = self._pending_uwh, 0
        return Reading(watts=0.0, energy_uwh=energy, resolution_uwh=0)


@dataclass
class Crossing:
    to_sent: float
    to_chain: float
    to_agent: float
    blocks: int  # blocks sealed from the crossing up to and including the one holding the report


def measure_period(period: int, crossings: int, rng: random.Random, workdir: Path) -> list[Crossing]:
    meter_key = bench_key("kwh-latency/meter")
    meter = Account.from_key(meter_key)
    lm = LoopbackMarket.start(
        workdir,
        period,
        prefund=[meter.address],
        meters=[{"address": meter.address, "owner": meter.address, "capacity_watts": CAPACITY_WATTS}],
    )
    agent = None
    observer = HeadObserver(
        lm.chain.rpc_url, lambda head: lm.market.functions.getMeter(meter.address).call(block_identifier=head)[6]
    )
    try:
        config = parse_config(
            {
                # An hour between the sampler's own samples: after its first, the benchmark takes every sample.
                "meter": {"sensor": "s0", "capacity_watts": CAPACITY_WATTS, "interval_seconds": 3600},
                "sensor": {"s0": {"pin": 17}},
                "chain": {
                    "rpc_url": lm.chain.rpc_url,
                    "contracts_file": str(lm.record_path),
                    "poll_seconds": POLL_SECONDS,
                },
                "store": {"path": str(workdir / "agent.db")},
                "metrics": {"enabled": False},
                "ui": {"enabled": False},
                "gpio": {"pin_factory": "mock"},
            }
        )
        deployment = load_deployment(config.chain.contracts_file)
        store = Store(config.store.path)
        sales: list[float] = []
        reporter = Reporter(
            Web3Chain(config.chain.rpc_url, deployment, timeout=config.chain.rpc_timeout_seconds),
            store,
            meter,
            expected_chain_id=deployment.chain_id,
            gas_limit=config.chain.gas_limit,
            max_gas_price_wei=int(config.chain.max_gas_price_gwei * 10**9),
            resend_seconds=config.chain.resend_seconds,
            metrics=AgentMetrics(),
            on_sale=lambda _kwh: sales.append(time.time()),
        )
        sensor = PushSensor()
        agent = Agent(config, sensor, store, reporter, SystemClock(), reporter.metrics)
        agent.start()  # the sampler takes its baseline sample now; the reporter reconciles with the chain
        observer.start()
        wait_for(lambda: reporter.status.meter is not None and reporter.status.problem is None, 120, "agent ready")
        time.sleep(1.0)
        sensor.push(500)  # half a kWh first: every later push of 1 kWh then crosses exactly one boundary
        assert not agent.sample_once().crossed_kwh

        results: list[Crossing] = []
        for i in range(crossings):
            # A new block since the last report (the contract measures capacity in block time), then a random
            # phase within the period, so the crossings sample every moment of the block cycle.
            head = observer.head
            wait_for(lambda h=head: observer.head > h, 10 * period + 30, "a new block")
            time.sleep(rng.uniform(0, period))
            head_at_crossing = observer.head
            sensor.push(1000)
            t0 = time.time()
            sample = agent.sample_once()
            assert sample.crossed_kwh, sample
            target = i + 1
            limit = 20 * period + 60
            wait_for(lambda t=target: t in observer.seen, limit, f"crossing {target} credited on chain")
            wait_for(lambda t=target: len(sales) >= t, limit, f"crossing {target} seen by the agent")
            row = next(r for r in store.transactions() if r.kind == "report" and r.total_wh == 500 + 1000 * target)
            crossing = Crossing(
                to_sent=row.sent_at - t0,
                to_chain=observer.seen[target] - t0,
                to_agent=sales[target - 1] - t0,
                blocks=row.block_number - head_at_crossing,
            )
            results.append(crossing)
            print(
                f"  period {period} s  crossing {target:>3}: sent {crossing.to_sent:5.2f} s, on chain "
                f"{crossing.to_chain:5.2f} s ({crossing.blocks} block(s)), agent shows it {crossing.to_agent:5.2f} s",
                flush=True,
            )
        return results
    finally:
        observer.stop.set()
        if agent is not None:
            agent.stop()
            agent.store.close()
        lm.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--periods", type=int, nargs="+", default=[2, 5], help="Clique periods to measure (s)")
    parser.add_argument("--crossings", type=int, default=10, help="kWh crossings per period (1..200)")
    parser.add_argument("--seed", type=int, default=8, help="seed of the crossing phases")
    args = parser.parse_args(argv)
    if not 1 <= args.crossings <= 200 or any(not 1 <= p <= 60 for p in args.periods):
        parser.error(f"expected 1 <= crossings <= 200 and periods of 1..60 s, got {vars(args)}")
    run = Run("kwh_latency", "kWh crossing → credited on chain")
    rng = random.Random(args.seed)
    rows: list[tuple[int, list[Crossing]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kwh-") as tmp:
        logging.basicConfig(filename=Path(tmp) / "agent.log", level=logging.INFO)
        for period in args.periods:
            print(f"period {period} s: starting a dev chain and the agent", flush=True)
            try:
                rows.append((period, measure_period(period, args.crossings, rng, Path(tmp) / f"p{period}")))
            except GethNotBuilt as exc:
                print(f"kwh_latency: {exc}")
                run.skip(str(exc))
                return 0
    header = (
        "| period | crossings | crossing → on chain, min / median / max (s) | median ÷ period "
        "| → tx sent, median (s) | → agent shows the sale, median / max (s) | blocks waited (x crossings) |"
    )
    lines = [header, "|---|---|---|---|---|---|---|"]
    print()
    print(f"{'period':>6} {'n':>3}  {'on chain min/med/max s':>24} {'med/P':>5}  {'sent med':>8}  agent med/max")
    for period, results in rows:
        chain = [c.to_chain for c in results]
        agent = [c.to_agent for c in results]
        counts = ", ".join(f"{b} (x{sum(c.blocks == b for c in results)})" for b in sorted({c.blocks for c in results}))
        print(
            f"{period:>5}s {len(results):>3}  {spread(chain):>24} {statistics.median(chain) / period:>5.2f}  "
            f"{statistics.median(c.to_sent for c in results):>8.2f}  "
            f"{statistics.median(agent):>6.2f}/{max(agent):<6.2f}  blocks waited {counts}"
        )
        lines.append(
            f"| {period} s | {len(results)} | {spread(chain)} | {statistics.median(chain) / period:.2f} "
            f"| {statistics.median(c.to_sent for c in results):.2f} "
            f"| {statistics.median(agent):.2f} / {max(agent):.2f} | {counts} |"
        )
    lines += [
        "",
        "The agent package in process (Agent, Meter, Store, Reporter over Web3Chain, `chain.poll_seconds` = "
        f"{POLL_SECONDS:g} s as on the lab Pis) against a loopback geth 1.13 Clique chain (a sealer and the "
        "RPC node the agent uses); a fake sensor pushed across one kWh boundary at a random phase of the period, "
        "one report in flight at a time. *On chain*: the RPC node's `getMeter` shows the kWh credited (polled every "
        f"{OBSERVER_POLL * 1000:.0f} ms). *Blocks waited*: blocks sealed from the crossing to the one holding the "
        "report (1 = the next block). *Agent shows the sale*: the reporter has seen the receipt (its page and "
        "metrics), bounded by its poll interval.",
    ]
    run.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
