#!/usr/bin/env python3
"""Latency from an imported kWh crossing to its automatic purchase on chain, against the block period.

A fresh loopback Clique chain (heliogrid_testing/loopback_market.py: geth 1.13, the contracts deployed by the
project's deploy code) holds a neighbour's offer; the real agent package runs in this process as the buyer's Pi
(Agent, Store, Reporter over Web3Chain, AutoBuyer, `chain.poll_seconds` 2 s as on the lab Pis). Only the import
meter is fake: the benchmark moves the home's cumulative import across one whole kWh at a random phase of the
block period, and the agent notices it at its next step, as it would a meter's register. It then approves the
purchase's exact cost, waits for that to be mined, and buys (two transactions, one in flight at a time). An
observer polls the RPC node every 50 ms for the buyer's purchasedKWh.

    python bench/autobuy_latency.py                       # period 2 s, 8 crossings
    python bench/autobuy_latency.py --periods 1 2 5 --crossings 10

Needs `make geth` (the cached geth archive) and the venv. Loopback only.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from heliogrid_agent.agent import Agent
from heliogrid_agent.autobuy import AutoBuyer
from heliogrid_agent.chain import Web3Chain, load_deployment
from heliogrid_agent.clock import SystemClock
from heliogrid_agent.config import parse_config
from heliogrid_agent.metrics import AgentMetrics
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.sensors.base import Reading, Sensor
from heliogrid_agent.store import Store

from heliogrid_testing.chainkit import call
from heliogrid_testing.latency import OBSERVER_POLL, HeadObserver, spread, wait_for
from heliogrid_testing.loopback_market import TARIFF, GethNotBuilt, LoopbackMarket, bench_key
from heliogrid_testing.results import Run

POLL_SECONDS = 2.0  # the agent's chain.poll_seconds, as on the lab Pis (the role's default)
KWH = 10**9  # micro-Wh
PRICE = TARIFF // 5  # the neighbour asks 0.2 tokens per kWh


class Quiet(Sensor):
    """The buyer's own production: none."""

    name = "quiet"

    def read(self) -> Reading:
        return Reading(watts=0.0)


@dataclass
class Crossing:
    to_buy_sent: float
    to_chain: float
    blocks: int


def mined_buys(store: Store) -> list:
    return [r for r in store.auto_rows() if r.kind == "buy" and r.status == "mined"]


def measure_period(period: int, crossings: int, rng: random.Random, workdir: Path) -> list[Crossing]:
    buyer_key, seller_key = bench_key("autobuy-latency/buyer"), bench_key("autobuy-latency/seller")
    buyer, seller = Account.from_key(buyer_key), Account.from_key(seller_key)
    lm = LoopbackMarket.start(
        workdir,
        period,
        prefund=[buyer.address, seller.address],
        meters=[
            {"address": buyer.address, "owner": buyer.address, "capacity_watts": 4_000},
            {"address": seller.address, "owner": seller.address, "capacity_watts": 4_000_000_000},
        ],
    )
    market, w3 = lm.market, lm.w3
    agent = None
    observer = HeadObserver(
        lm.chain.rpc_url, lambda head: market.functions.purchasedKWh(buyer.address).call(block_identifier=head)
    )
    try:
        call(w3, seller_key, market.functions.setAskPrice(PRICE))
        time.sleep(period)  # the report needs block time since the registration
        call(w3, seller_key, market.functions.reportProduction((crossings + 5) * 1000))
        token = w3.eth.contract(address=lm.record["token"]["address"], abi=lm.record["token"]["abi"])
        call(w3, seller_key, token.functions.transfer(buyer.address, (crossings + 5) * PRICE))
        config = parse_config(
            {
                "meter": {"sensor": "s0", "capacity_watts": 4_000, "interval_seconds": 3600},
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
                "buy": {"max_price_per_kwh": "1", "auto": True, "daily_budget": "1000"},
            }
        )
        deployment = load_deployment(config.chain.contracts_file)
        store = Store(config.store.path)
        reporter = Reporter(
            Web3Chain(config.chain.rpc_url, deployment, timeout=config.chain.rpc_timeout_seconds),
            store,
            buyer,
            expected_chain_id=deployment.chain_id,
            resend_seconds=config.chain.resend_seconds,
            max_buy_price_per_kwh=config.buy.max_price_units,
            metrics=AgentMetrics(),
        )
        AutoBuyer(reporter, available=True, daily_budget=config.buy.daily_budget_units)
        imported = {"uwh": KWH // 2}  # the baseline: half a kWh, so each later kWh crosses exactly one boundary
        agent = Agent(
            config, Quiet(), store, reporter, SystemClock(), reporter.metrics, imported_uwh=lambda: imported["uwh"]
        )
        agent.start()
        observer.start()
        wait_for(lambda: store.get("auto_buy_baseline_kwh") is not None, 120, "agent ready")

        results: list[Crossing] = []
        for i in range(crossings):
            head = observer.head
            wait_for(lambda h=head: observer.head > h, 10 * period + 30, "a new block")
            time.sleep(rng.uniform(0, period))
            head_at_crossing = observer.head
            imported["uwh"] += KWH
            t0 = time.time()
            target = i + 1
            limit = 20 * period + 60
            wait_for(lambda t=target: t in observer.seen, limit, f"crossing {target} bought on chain")
            wait_for(lambda t=target: len(mined_buys(store)) >= t, limit, f"crossing {target} settled by the agent")
            row = mined_buys(store)[target - 1]
            crossing = Crossing(row.sent_at - t0, observer.seen[target] - t0, row.block_number - head_at_crossing)
            results.append(crossing)
            print(
                f"  period {period} s  crossing {target:>3}: buy sent {crossing.to_buy_sent:5.2f} s, bought on chain "
                f"{crossing.to_chain:5.2f} s ({crossing.blocks} block(s))",
                flush=True,
            )
        assert market.functions.purchasedKWh(buyer.address).call() == crossings
        return results
    finally:
        observer.stop.set()
        if agent is not None:
            agent.stop()
            agent.store.close()
        lm.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--periods", type=int, nargs="+", default=[2], help="Clique periods to measure (s)")
    parser.add_argument("--crossings", type=int, default=8, help="imported kWh crossings per period (1..100)")
    parser.add_argument("--seed", type=int, default=8, help="seed of the crossing phases")
    args = parser.parse_args(argv)
    if not 1 <= args.crossings <= 100 or any(not 1 <= p <= 60 for p in args.periods):
        parser.error(f"expected 1 <= crossings <= 100 and periods of 1..60 s, got {vars(args)}")
    run = Run("autobuy_latency", "Imported kWh crossing → bought on chain")
    rng = random.Random(args.seed)
    rows: list[tuple[int, list[Crossing]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-autobuy-") as tmp:
        logging.basicConfig(filename=Path(tmp) / "agent.log", level=logging.INFO)
        for period in args.periods:
            print(f"period {period} s: starting a dev chain and the agent", flush=True)
            try:
                rows.append((period, measure_period(period, args.crossings, rng, Path(tmp) / f"p{period}")))
            except GethNotBuilt as exc:
                print(f"autobuy_latency: {exc}")
                run.skip(str(exc))
                return 0
    lines = [
        "| period | crossings | crossing → bought on chain, min / median / max (s) | median ÷ period "
        "| → buy sent, median (s) | blocks waited (x crossings) |",
        "|---|---|---|---|---|---|",
    ]
    for period, results in rows:
        chain = [c.to_chain for c in results]
        counts = ", ".join(f"{b} (x{sum(c.blocks == b for c in results)})" for b in sorted({c.blocks for c in results}))
        line = (
            f"| {period} s | {len(results)} | {spread(chain)} | {statistics.median(chain) / period:.2f} "
            f"| {statistics.median(c.to_buy_sent for c in results):.2f} | {counts} |"
        )
        print(line)
        lines.append(line)
    lines += [
        "",
        "The agent package in process (Agent, Store, Reporter and AutoBuyer over Web3Chain, `chain.poll_seconds` = "
        f"{POLL_SECONDS:g} s) against a loopback geth 1.13 Clique chain; the home's import moved across one whole "
        "kWh at a random phase of the period, one neighbour's offer at 0.2 tokens per kWh. Each purchase is an "
        "approve for its exact cost, mined, then the buy (one transaction in flight at a time), so it waits for "
        "about two agent steps and two blocks. *Bought on chain*: the RPC node's `purchasedKWh` shows it (polled "
        f"every {OBSERVER_POLL * 1000:.0f} ms). *Blocks waited*: blocks sealed from the crossing to the one holding "
        "the buy.",
    ]
    run.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
