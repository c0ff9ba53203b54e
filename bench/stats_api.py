#!/usr/bin/env python3
"""Benchmark of the stats app's main endpoint (GET /api/v1/summary) at two index sizes.

For each size the script fills a fresh SQLite index through the indexer's own write path
(`Store.add_blocks` / `Store.add_events`, fed with generated market events: meter registrations,
production reports, offers, purchases), starts the app with uvicorn in a separate process on
127.0.0.1, and loads it from this process with concurrent httpx clients for a fixed time. It prints
requests per second and the p50/p99 latency, so one can see that response time stays flat as the
chain grows. "build ms" is the server-side cost of one summary measured in-process (best of 7), a
reference free of HTTP overhead and of other load on the machine. Generating the events instead of
mining them keeps the run short (py-evm needs about 50 ms per transaction); what is measured -- the
read path -- is the same.

    python bench/stats_api.py                       # 1k and 20k events, 10 s each, 16 clients
    python bench/stats_api.py --sizes 1000 100000 --duration 20 --clients 32

Needs heliogrid-stats installed (pip install -e files/stats_app) and httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from heliogrid_testing.results import Run

REPO = Path(__file__).resolve().parent.parent

METERS = 200
BLOCK_TIME = 5  # seconds, a typical Clique period


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def address(i: int) -> str:
    from web3 import Web3

    return Web3.to_checksum_address(f"0x{i:040x}")


def fill_index(database: Path, events: int, seed: int = 6) -> int:
    """Write `events` market events spread over as many blocks; returns the head block number."""
    from heliogrid_stats.store import BlockRow, EventRow, Store

    rng = random.Random(seed)
    store = Store(database)
    start = 1_700_000_000
    signers = [address(0xA0 + i) for i in range(3)]
    totals = dict.fromkeys(range(METERS), 0)
    credited = dict.fromkeys(range(METERS), 0)
    offer = 0
    head = events + 10
    with store.transaction():
        store.add_blocks(
            BlockRow(
                n,
                f"0x{n:064x}",
                f"0x{n - 1:064x}",
                start + n * BLOCK_TIME,
                signers[n % 3],
                rng.randrange(21_000, 300_000),
                30_000_000,
                rng.randrange(0, 5),
            )
            for n in range(max(1, head - 10_000), head + 1)
        )
        rows = [
            EventRow(
                1,
                m,
                "0x" + "11" * 32,
                "0x" + "22" * 32,
                start,
                "MeterRegistered",
                {"meter": address(m + 1), "owner": address(1000 + m % 40), "capacityWatts": 5000},
            )
            for m in range(METERS)
        ]
        for k in range(events - METERS):
            block = 2 + k
            ts = start + block * BLOCK_TIME
            m = rng.randrange(METERS)
            meta = {
                "block_number": block,
                "log_index": 0,
                "block_hash": f"0x{block:064x}",
                "tx_hash": f"0x{k:064x}",
                "timestamp": ts,
            }
            if k % 4 == 3 and offer:
                rows.append(
                    EventRow(
                        **meta,
                        name="EnergyPurchased",
                        args={
                            "offerId": rng.randrange(1, offer + 1),
                            "buyer": address(1000 + rng.randrange(40)),
                            "seller": address(1000 + m % 40),
                            "kWh": 1,
                            "cost": 2 * 10**17,
                        },
                    )
                )
            elif k % 4 == 2:
                offer += 1
                rows.append(
                    EventRow(
                        **meta,
                        name="OfferCreated",
                        args={
                            "offerId": offer,
                            "seller": address(1000 + m % 40),
                            "meter": address(m + 1),
                            "kWh": 1,
                            "pricePerKWh": 2 * 10**17,
                        },
                    )
                )
            else:
                totals[m] += rng.randrange(900, 1500)
                kwh = totals[m] // 1000 - credited[m]
                credited[m] += kwh
                rows.append(
                    EventRow(
                        **meta,
                        name="ProductionReported",
                        args={
                            "meter": address(m + 1),
                            "owner": address(1000 + m % 40),
                            "totalWh": totals[m],
                            "creditedKWh": kwh,
                            "tokensMinted": kwh * 10**18,
                        },
                    )
                )
        store.add_events(rows[:events])
        store.set_meta("last_block", str(head))
        store.set_meta(
            "network",
            json.dumps(
                {
                    "head": head,
                    "pending": 0,
                    "clique_signers": signers,
                    "clique_status": None,
                    "updated": int(time.time()),
                }
            ),
        )
    store.close()
    return head


def summary_build_ms(database: Path) -> float:
    """Server-side cost of one summary (min of 7 x 20 in this process): a reference free of HTTP and load noise."""
    import timeit

    from heliogrid_stats.ethstats import NodeRegistry
    from heliogrid_stats.store import Store
    from heliogrid_stats.views import Views

    store = Store(database, readonly=True)
    views = Views(store, NodeRegistry(), 4242, 100)
    best = min(timeit.repeat(views.summary, number=20, repeat=7)) / 20
    store.close()
    return best * 1000


def serve(config_path: str) -> None:
    """Server process: the app without its indexer (the index is already filled)."""
    import logging

    import uvicorn
    from heliogrid_stats.api import create_app
    from heliogrid_stats.config import load_config

    logging.basicConfig(level=logging.WARNING)
    config = load_config(Path(config_path))
    uvicorn.run(
        create_app(config, run_indexer=False),
        host="127.0.0.1",
        port=config.listen_port,
        log_level="warning",
        access_log=False,
    )


async def load(url: str, clients: int, duration: float, warmup: float) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                t0 = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.HTTPError:  # counted, not fatal: the figure is what a loaded server manages
                    errors += 1
                    continue
                elapsed = time.perf_counter() - t0
                if response.status_code != 200:
                    errors += 1
                elif record:
                    latencies.append(elapsed)

        await asyncio.gather(*(worker(time.perf_counter() + warmup, False) for _ in range(clients)))
        await asyncio.gather(*(worker(time.perf_counter() + duration, True) for _ in range(clients)))
    return len(latencies), latencies, errors


def run_size(events: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as tmp:
        work = Path(tmp)
        database = work / "stats.sqlite3"
        t0 = time.perf_counter()
        head = fill_index(database, events)
        fill_seconds = time.perf_counter() - t0
        build_ms = summary_build_ms(database)
        abi = json.loads((REPO / "contracts" / "build" / "EnergyMarket.json").read_text())["abi"]
        (work / "contracts.json").write_text(
            json.dumps({"chainId": 4242, "market": {"address": address(0xBEEF), "abi": abi, "block": 1}})
        )
        port = free_port()
        (work / "config.toml").write_text(
            f'contracts_file = "{work / "contracts.json"}"\ndatabase = "{database}"\nlisten_port = {port}\n'
        )
        server = multiprocessing.get_context("spawn").Process(target=serve, args=(str(work / "config.toml"),))
        server.start()
        url = f"http://127.0.0.1:{port}{args.path}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(url, timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or not server.is_alive():
                        raise RuntimeError(f"server for {events} events did not come up") from None
                    time.sleep(0.2)
            count, latencies, errors = asyncio.run(load(url, args.clients, args.duration, args.warmup))
        finally:
            server.terminate()
            server.join(10)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return {
        "events": events,
        "head": head,
        "fill_s": fill_seconds,
        "build_ms": build_ms,
        "requests": count,
        "errors": errors,
        "rps": count / args.duration,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": p99 * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 20_000], help="indexed events per run")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per size")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--path", default="/api/v1/summary", help="endpoint to load")
    args = parser.parse_args(argv)
    if any(s < 300 for s in args.sizes) or args.duration <= 0 or args.duration > 600 or args.clients < 1:
        parser.error(f"expected sizes >= 300, 0 < duration <= 600 and clients >= 1, got {vars(args)}")
    run = Run("stats_api", "Stats API requests per second and p99 at two chain lengths")
    print(f"GET {args.path}: {args.clients} clients, {args.duration:.0f} s per size, server in a second process")
    print(
        f"{'events':>8} {'head':>8} {'fill s':>7} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'build ms':>8}"
    )
    lines = [
        f"`GET {args.path}`, {args.clients} concurrent clients for {args.duration:g} s per size (after "
        f"{args.warmup:g} s unmeasured), the app (uvicorn) in a second process on 127.0.0.1, its SQLite index "
        "filled through the indexer's write path with generated market events.",
        "",
        "| indexed events | head block | requests | errors | requests/s | p50 (ms) | p99 (ms) | "
        "summary built in-process, best (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        r = run_size(size, args)
        lines.append(
            f"| {r['events']:,} | {r['head']:,} | {r['requests']:,} | {r['errors']} | {r['rps']:.1f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['build_ms']:.2f} |"
        )
        print(
            f"{r['events']:>8} {r['head']:>8} {r['fill_s']:>7.1f} {r['requests']:>9} {r['errors']:>6} "
            f"{r['rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['build_ms']:>8.2f}",
            flush=True,
        )
    lines += [
        "",
        "Client and server share this machine's CPUs (and its other load): requests/s and latency are those of "
        "the pair; the in-process build time is the server's own cost per summary, free of HTTP and of the load.",
    ]
    run.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
