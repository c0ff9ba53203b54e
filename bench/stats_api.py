#!/usr/bin/env python3
"""Benchmark of the stats app's API at three index sizes, side by side in one run.

The script fills one fresh SQLite index per size through the indexer's own write path
(`Store.add_blocks` / `Store.add_events`, fed with generated market events: meter registrations,
production reports, offers, purchases), starts the app for each with uvicorn in its own process on
127.0.0.1, run as `heliogrid-stats serve` runs it (`uvicorn_options`), then loads each in turn, in
rounds (size after size, round after round) so that the machine's other load falls on every size
alike. The load comes from this process: keep-alive connections sending GETs
(heliogrid_testing.http_load, lean enough that the server, not the client, is what is measured),
twice per size and path: as fast as the server answers ("most": its throughput, latency being
mostly queueing behind the other connections), and paced at --rate requests/s ("at 500/s": the
latency a client sees at that load, counted from when each request was due). It prints requests
per second and the p50/p99 latency, so one can see that the answer time stays flat as the chain
grows. "build ms" is the server-side cost of one summary
measured in-process (best of 7), a reference free of HTTP and of the machine's other load.
Generating the events instead of mining them keeps the run short (py-evm needs about 50 ms per
transaction); what is measured -- the read path -- is the same.

    python bench/stats_api.py                       # 1k, 20k and 200k events; summary and market
    python bench/stats_api.py --sizes 1000 100000 --duration 20 --clients 32 --paths /api/v1/summary

Needs heliogrid-stats installed (pip install -e files/stats_app).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import socket
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from heliogrid_testing.http_load import Load, load
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
    """Server process: the app without its indexer (the index is already filled), run as `serve` runs it."""
    import logging

    import uvicorn
    from heliogrid_stats.api import create_app, uvicorn_options
    from heliogrid_stats.config import load_config

    logging.basicConfig(level=logging.WARNING)
    config = load_config(Path(config_path))
    uvicorn.run(create_app(config, run_indexer=False), **uvicorn_options(config, "warning"))


def start_server(work: Path, database: Path) -> tuple[multiprocessing.process.BaseProcess, int]:
    """The app on a filled index, in its own process; returns it and its port once it answers."""
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
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server, port
        except httpx.HTTPError:
            if time.monotonic() > deadline or not server.is_alive():
                server.terminate()
                raise RuntimeError(f"server on {database} did not come up") from None
            time.sleep(0.2)


def measure(port: int, path: str, args: argparse.Namespace, seconds: float, rate: float | None) -> Load:
    """Warm up (unmeasured), then load `path` for `seconds`, as fast as it answers or at `rate`."""
    asyncio.run(load("127.0.0.1", port, [path], clients=args.clients, duration=args.warmup, record=False))
    return asyncio.run(load("127.0.0.1", port, [path], clients=args.clients, duration=seconds, rate=rate))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000, 20_000, 200_000], help="indexed events, one index each"
    )
    parser.add_argument(
        "--paths", nargs="+", default=["/api/v1/summary", "/api/v1/market"], help="endpoints to load, in turn"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per size and path")
    parser.add_argument("--rounds", type=int, default=2, help="the duration is split over this many rounds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each round")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s of the paced load")
    args = parser.parse_args(argv)
    if (
        any(s < 300 for s in args.sizes)
        or not 0 < args.duration <= 600
        or args.clients < 1
        or args.rounds < 1
        or args.rate <= 0
    ):
        parser.error(f"expected sizes >= 300, 0 < duration <= 600, clients >= 1, rounds >= 1, got {vars(args)}")
    run = Run("stats_api", "Stats API requests per second and p99 at three index sizes")
    modes = {"most": None, f"at {args.rate:g}/s": args.rate}
    results: dict[tuple[int, str, str], Load] = {
        (size, path, mode): Load() for size in args.sizes for path in args.paths for mode in modes
    }
    with ExitStack() as stack:
        servers = {}
        for size in args.sizes:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stats-bench-")))
            database = work / "stats.sqlite3"
            t0 = time.perf_counter()
            head = fill_index(database, size)
            fill = time.perf_counter() - t0
            build_ms = summary_build_ms(database)
            server, port = start_server(work, database)
            stack.callback(server.join, 10)
            stack.callback(server.terminate)
            servers[size] = (port, head, fill, build_ms)
            print(
                f"{size:>8} events: head {head}, filled in {fill:.1f} s, summary built in {build_ms:.2f} ms", flush=True
            )
        for _ in range(args.rounds):
            for size in args.sizes:
                for path, (mode, rate) in ((p, m) for p in args.paths for m in modes.items()):
                    part = measure(servers[size][0], path, args, args.duration / args.rounds, rate)
                    total = results[size, path, mode]
                    total.latencies += part.latencies
                    total.errors += part.errors
                    total.seconds += part.seconds
                    for status, n in part.statuses.items():
                        total.statuses[status] = total.statuses.get(status, 0) + n
    print(
        f"{args.clients} keep-alive clients, {args.duration:g} s per size and path in {args.rounds} rounds, "
        "one server process per size"
    )
    print(
        f"{'events':>8} {'path':<18} {'load':<10} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8}"
    )
    lines = [
        f"{args.clients} keep-alive connections (heliogrid_testing.http_load) for {args.duration:g} s per size and "
        f"path, in {args.rounds} rounds taking the sizes in turn (each round after {args.warmup:g} s unmeasured); "
        "the app run as `heliogrid-stats serve` runs it, one server process per index on 127.0.0.1, each index "
        "filled through the indexer's write path with generated market events.",
        "",
        "| indexed events | head block | path | load | requests | errors | requests/s | p50 (ms) | p99 (ms) | "
        "summary built in-process, best (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        port, head, _, build_ms = servers[size]
        for path, mode in ((p, m) for p in args.paths for m in modes):
            r = results[size, path, mode]
            errors = len(r.errors) + sum(n for status, n in r.statuses.items() if status != 200)
            rps = r.requests / r.seconds
            p50, p99 = r.percentile(50) * 1000, r.percentile(99) * 1000
            lines.append(
                f"| {size:,} | {head:,} | `{path}` | {mode} | {r.requests:,} | {errors} | {rps:.0f} | {p50:.1f} "
                f"| {p99:.1f} | {build_ms:.2f} |"
            )
            print(
                f"{size:>8} {path:<18} {mode:<10} {r.requests:>9} {errors:>6} {rps:>8.0f} {p50:>8.1f} {p99:>8.1f}",
                flush=True,
            )
    lines += [
        "",
        'Load "most": each connection sends its next request when the last is answered (the server\'s throughput; '
        f'the latency is mostly the wait behind the other {args.clients - 1} connections). Load "at {args.rate:g}/s": '
        "requests paced at that rate, each one's latency counted from when it was due. Client and server share this "
        "machine's two CPUs (and its other load): requests/s and latency are those of the pair. Each answer is built "
        "in a reader thread once per change of the index (the summary: also of the node list), at most a second "
        "old, and served as encoded JSON meanwhile (heliogrid_stats.reads). These servers run no indexer and no node "
        "reports to them, so an answer is rebuilt once a second; in production a rebuild follows each indexer poll "
        "(2 s) and each ethstats report (the summary), about 1 ms each: per change, not per request.",
    ]
    run.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
