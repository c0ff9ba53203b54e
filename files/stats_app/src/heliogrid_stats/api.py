"""The web app: JSON API under /api/v1, the page at /, geth's ethstats websocket at /api (routes.py).

One process holds the indexer (a background task stepping in a worker thread), the ethstats
registry (in memory) and the HTTP handlers, which only read SQLite. Run it with a single worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

from heliogrid_stats import __version__
from heliogrid_stats.chain import ChainReader
from heliogrid_stats.config import StatsConfig
from heliogrid_stats.credentials import Credentials
from heliogrid_stats.deployment import load_deployment
from heliogrid_stats.ethstats import Gate, NodeRegistry
from heliogrid_stats.indexer import ChainMismatchError, Indexer
from heliogrid_stats.routes import ROUTERS
from heliogrid_stats.state import AppState
from heliogrid_stats.store import Store
from heliogrid_stats.views import Views

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index_forever(state: AppState) -> None:
    """Keep the index at the head; errors are logged and retried (backing off to a minute while the node is
    down), a chain mismatch stops indexing."""
    indexer, interval = state.indexer, state.config.poll_interval
    checked = False
    failures = 0
    while True:
        advanced = 0
        try:
            if not checked:
                await asyncio.to_thread(indexer.check_chain)
                checked = True
            advanced = await asyncio.to_thread(indexer.step)
            indexer.status.last_error = None
            failures = 0
        except ChainMismatchError as exc:
            indexer.status.last_error = str(exc)
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
    return AppState(config, deployment, writer, reader, indexer, gate, registry, views)


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

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    for router in ROUTERS:
        app.include_router(router)
    return app
