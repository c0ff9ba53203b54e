"""The web app: JSON API under /api/v1, the page at /, geth's ethstats websocket at /api (routes.py).

One process holds the indexer (a background task stepping in its own writer thread), the ethstats
registry (in memory) and the HTTP handlers, which read SQLite in reader threads (reads.py): the event
loop never waits for SQLite, so geth's ethstats pings are answered whatever the API is asked. Run it
with a single worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

from heliogrid_stats import __version__
from heliogrid_stats.chain import ChainReader
from heliogrid_stats.config import StatsConfig
from heliogrid_stats.credentials import Credentials
from heliogrid_stats.deployment import load_deployment
from heliogrid_stats.ethstats import Gate, NodeRegistry
from heliogrid_stats.indexer import ChainMismatchError, Indexer
from heliogrid_stats.reads import Reads
from heliogrid_stats.routes import ROUTERS
from heliogrid_stats.state import AppState
from heliogrid_stats.store import Store
from heliogrid_stats.views import Views

log = logging.getLogger(__name__)

WS_MAX_BYTES = 1024 * 1024  # uvicorn closes the socket (1009) on a longer websocket message

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response that does not set them itself. Plain ASGI: starlette's
    BaseHTTPMiddleware (`@app.middleware("http")`) cost a task group and a stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.raw = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.raw if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


async def index_forever(state: AppState) -> None:
    """Keep the index at the head in the indexer's own thread; errors are logged and retried (backing off to a
    minute while the node is down), a chain mismatch stops indexing."""
    writer = ThreadPoolExecutor(1, thread_name_prefix="stats-index")
    try:
        await _index_loop(state, writer)
    finally:
        writer.shutdown(wait=False, cancel_futures=True)


async def _index_loop(state: AppState, writer: ThreadPoolExecutor) -> None:
    indexer, interval = state.indexer, state.config.poll_interval
    loop = asyncio.get_running_loop()
    checked = False
    failures = 0
    while True:
        advanced = 0
        try:
            if not checked:
                await loop.run_in_executor(writer, indexer.check_chain)
                checked = True
            advanced = await loop.run_in_executor(writer, indexer.step)
            indexer.status.last_error = None
            failures = 0
        except ChainMismatchError as exc:
            indexer.status.last_error = str(exc)
            indexer.status.stopped = True
            log.critical("indexing stopped: %s", exc)
            return
        except Exception as exc:  # the node restarting, a timeout...: keep serving, retry later
            failures += 1
            indexer.status.last_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "indexer step failed (%d in a row), retrying in %.0fs: %s",
                failures,
                min(interval * 2**failures, 60),
                indexer.status.last_error,
            )
        await asyncio.sleep(min(interval * 2**failures, 60) if failures else 0 if advanced else interval)


def build_state(config: StatsConfig, w3: Web3 | None = None) -> AppState:
    deployment = load_deployment(config.contracts_file)
    if w3 is None:
        w3 = Web3(Web3.HTTPProvider(config.rpc_url, request_kwargs={"timeout": 30}))
        # Clique blocks carry vanity + seal in a 97-byte extraData, which web3 refuses without this.
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    writer = Store(config.database)
    reader = Store(config.database, readonly=True)
    indexer = Indexer(
        ChainReader(w3, config.signer_source),
        writer,
        deployment,
        batch_size=config.batch_size,
        confirmations=config.confirmations,
        block_history=config.block_history,
    )
    gate = Gate(Credentials(config.ethstats_credentials_dir))
    registry = NodeRegistry(config.ethstats_max_nodes, config.node_stale_after)
    views = Views(reader, registry, deployment.chain_id, config.block_time_window)
    reads = Reads(views, writer, registry)
    return AppState(config, deployment, writer, reader, indexer, gate, registry, views, reads)


def create_app(config: StatsConfig, *, w3: Web3 | None = None, run_indexer: bool = True) -> FastAPI:
    """The ASGI app. Tests pass an eth-tester `w3` and step the indexer themselves (`run_indexer=False`)."""
    state = build_state(config, w3)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_indexer:
            state.task = asyncio.create_task(index_forever(state))
        yield
        if state.task is not None:
            state.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.task
        state.reads.close()
        state.reader.close()
        state.writer.close()

    # No /docs or /redoc: their UIs load scripts from a CDN. /openapi.json describes the API.
    app = FastAPI(
        title="HelioGrid stats",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Network and energy-market figures of a HelioGrid chain, read from a local index.",
    )
    app.state.stats = state
    app.mount("/static", StaticFiles(directory=str(files("heliogrid_stats") / "static")), name="static")

    app.add_middleware(SecurityHeaders)

    for router in ROUTERS:
        app.include_router(router)
    return app


def uvicorn_options(config: StatsConfig, log_level: str = "info") -> dict[str, Any]:
    """How `serve` runs uvicorn (the benchmark runs it the same way). One worker: the indexer and the ethstats
    registry live in this process. No access log: nginx keeps one, and a line per request through the journal
    cost more than building the answer. `ws_max_size`: the largest websocket message read at all, before or after
    login (geth's reports are a few KiB; the hello is checked against its own, smaller cap)."""
    return dict(
        host=config.listen_host,
        port=config.listen_port,
        workers=1,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level=log_level,
        access_log=False,
        server_header=False,
        ws_max_size=WS_MAX_BYTES,
    )
