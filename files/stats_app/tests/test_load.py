"""The app under load, served by uvicorn as `heliogrid-stats serve` runs it (uvicorn_options) on 127.0.0.1: slow
database work and a flood of API requests do not hold up geth's ethstats pings, nor other requests; oversized
websocket messages are refused before login; /healthz keeps the indexer's exception to the log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from heliogrid_testing.ethstats_credentials import node_secret
from heliogrid_testing.http_load import load
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from heliogrid_stats.api import WS_MAX_BYTES, create_app, uvicorn_options
from heliogrid_stats.ethstats import MAX_HELLO_BYTES
from heliogrid_stats.routes import INDEXER_FAILING

SLOW = 1.0  # seconds a slowed database call takes
BOUND = 0.3  # seconds a ping or another request may take meanwhile (the slow call would add SLOW on the loop)
PING_INTERVAL = 0.25  # seconds between the flood test's pings (geth pings every 15 s)


def hello(node: str, padding: int = 0) -> dict:
    """geth's login message (test_ethstats.py has it whole), with `padding` bytes more."""
    info = {"name": node, "node": "Geth/v1.13.15-stable/linux-arm64/go1.21.9", "net": "4242", "os": "linux"}
    if padding:
        info["padding"] = "x" * padding
    return {"emit": ["hello", {"id": node, "info": info, "secret": node_secret(node)}]}


@contextlib.contextmanager
def serving(app: FastAPI, config) -> Iterator[int]:
    """`app` under uvicorn in a thread, with the production options on a free port; yields the port."""
    server = uvicorn.Server(uvicorn.Config(app, **{**uvicorn_options(config, "warning"), "port": 0}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        time.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


async def ping_times(port: int, pings: int, interval: float = 0.0) -> list[float]:
    """Log in as node pi-1 and time `pings` node-ping -> node-pong round trips, `interval` apart."""
    async with connect(f"ws://127.0.0.1:{port}/api") as ws:
        await ws.send(json.dumps(hello("pi-1")))
        assert json.loads(await ws.recv()) == {"emit": ["ready"]}
        times = []
        for _ in range(pings):
            t0 = time.perf_counter()
            await ws.send(json.dumps({"emit": ["node-ping", {"id": "pi-1", "clientTime": str(t0)}]}))
            while json.loads(await ws.recv())["emit"][0] != "node-pong":
                pass
            times.append(time.perf_counter() - t0)
            await asyncio.sleep(interval)
        return times


async def timed_get(port: int, path: str) -> float:
    result = await load("127.0.0.1", port, [path], clients=1, duration=30, max_requests=1)
    assert result.statuses == {200: 1}, (path, result.statuses, result.errors)
    return result.latencies[0]


def test_a_slow_read_holds_up_neither_pings_nor_other_requests(app, config, sync, trading, monkeypatch):
    sync()
    views = app.state.stats.views
    meters = views.meters
    started = threading.Event()

    def slow_meters(*args):  # runs where the route runs the read: a reader thread, never the event loop
        started.set()
        time.sleep(SLOW)
        return meters(*args)

    monkeypatch.setattr(views, "meters", slow_meters)

    async def scenario(port: int) -> tuple[float, list[float], float]:
        slow = asyncio.create_task(timed_get(port, "/api/v1/meters"))
        assert await asyncio.to_thread(started.wait, 5)
        pings = await ping_times(port, 3)
        other = await timed_get(port, "/api/v1/energy")
        assert not slow.done(), "the slow read ended before the pings and the other request: nothing was proven"
        return await slow, pings, other

    with TestClient(app), serving(app, config) as port:
        slow, pings, other = asyncio.run(scenario(port))
    assert slow >= SLOW  # the slow call did happen, on the request that made it
    assert max(pings) < BOUND, pings
    assert other < BOUND, other


def test_a_slow_indexer_step_holds_up_no_ping(config, w3, trading, monkeypatch):
    app = create_app(replace(config, poll_interval=0.05), w3=w3)  # with its indexer task, as in production
    indexer = app.state.stats.indexer
    stepping, stepped = threading.Event(), threading.Event()

    def slow_step() -> int:
        stepping.set()
        time.sleep(SLOW)
        stepped.set()
        return 0

    monkeypatch.setattr(indexer, "step", slow_step)

    async def scenario(port: int) -> list[float]:
        assert await asyncio.to_thread(stepping.wait, 5)
        pings = await ping_times(port, 3)
        assert not stepped.is_set(), "the slow step ended before the pings: nothing was proven"
        return pings

    with serving(app, config) as port:
        pings = asyncio.run(scenario(port))
    assert max(pings) < BOUND, pings


def test_a_flood_of_the_api_does_not_delay_pings_beyond_one_interval(app, config, sync, market_trading):
    sync()
    paths = [
        "/api/v1/summary",
        "/api/v1/market",
        "/api/v1/meters?limit=500",
        "/api/v1/blocks?limit=500",
        "/api/v1/sales?limit=500",
        "/",
    ]

    async def scenario(port: int):
        flood = asyncio.create_task(load("127.0.0.1", port, paths, clients=16, duration=3.0, max_requests=6_000))
        await asyncio.sleep(0.2)  # the flood is on
        pings = await ping_times(port, 8, PING_INTERVAL)
        return await flood, pings

    with TestClient(app), serving(app, config) as port:
        flood, pings = asyncio.run(scenario(port))
    assert not flood.errors
    assert set(flood.statuses) == {200}
    assert flood.requests >= 300, f"only {flood.requests} requests: not a flood"
    assert max(pings) < PING_INTERVAL, f"ping round trips {pings} during {flood.requests} requests"


def test_an_oversized_message_before_login_is_refused_unread(app, config):
    async def first_message(port: int, size: int) -> int | None:
        """Send a `size`-byte hello first; the close code the server answers with (None: it answered)."""
        async with connect(f"ws://127.0.0.1:{port}/api", max_size=None) as ws:
            message = hello("pi-1", padding=size)
            await ws.send(json.dumps(message))
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            return None

    with serving(app, config) as port:
        assert asyncio.run(first_message(port, 200)) is None  # a geth-sized hello logs in
        assert asyncio.run(first_message(port, MAX_HELLO_BYTES + 1)) == 1008  # the app's hello cap
        assert asyncio.run(first_message(port, WS_MAX_BYTES + 1)) == 1009  # uvicorn's: never handed to the app


def test_healthz_says_the_indexer_fails_and_the_log_says_why(config, caplog):
    # No w3 given: the app's own HTTPProvider, to a port nothing listens on.
    app = create_app(replace(config, rpc_url="http://127.0.0.1:9/", poll_interval=0.05))
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while app.state.stats.indexer.status.last_error is None:
            assert time.monotonic() < deadline, "the indexer never failed"
            time.sleep(0.05)
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"ok": False, "head": None, "indexed": None, "last_error": INDEXER_FAILING}
    assert "port=9" in caplog.text  # the exception, in the log


@pytest.mark.parametrize("path", ["/api/v1/summary", "/", "/api/v1/energy"])
def test_cached_answers_follow_the_index_at_once(client, sync, market, trading, path):
    sync()
    before = client.get("/api/v1/energy").json()["produced_wh"]
    client.get(path)  # built and kept now
    market.travel(3600)
    market.report(trading["meters"][1], 4_000)
    sync()
    assert client.get("/api/v1/summary").json()["energy"]["produced_wh"] == before + 1_500
    assert client.get("/api/v1/energy").json()["produced_wh"] == before + 1_500
