"""The web app: JSON API under /api/v1, the page at /, geth's ethstats websocket at /api.

One process holds the indexer (a background task stepping in a worker thread), the ethstats
registry (in memory) and the HTTP handlers, which only read SQLite. Run it with a single worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import Response
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

from heliogrid_stats import __version__
from heliogrid_stats.chain import ChainReader
from heliogrid_stats.config import StatsConfig
from heliogrid_stats.deployment import Deployment, load_deployment
from heliogrid_stats.ethstats import NodeRegistry, serve_node
from heliogrid_stats.indexer import ChainMismatchError, Indexer
from heliogrid_stats.models import Block, Energy, Health, HourlyPoint, Meter, Network, Node, Sale, Summary
from heliogrid_stats.store import Store
from heliogrid_stats.views import Views, format_units

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class AppState:
    config: StatsConfig
    deployment: Deployment
    writer: Store
    reader: Store
    indexer: Indexer
    registry: NodeRegistry
    views: Views
    task: asyncio.Task[None] | None = None


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


def as_json(value: dict[str, Any] | list[dict[str, Any]]) -> Response:
    """Serialise directly: the declared response_model documents the shape, FastAPI need not re-validate it."""
    return Response(json.dumps(value, separators=(",", ":")).encode(), media_type="application/json")


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
    registry = NodeRegistry(config.ethstats_secret, config.ethstats_max_nodes, config.node_stale_after)
    views = Views(reader, registry, deployment.chain_id, config.block_time_window)
    return AppState(config, deployment, writer, reader, indexer, registry, views)


def create_app(config: StatsConfig, *, w3: Web3 | None = None, run_indexer: bool = True) -> FastAPI:
    """The ASGI app. Tests pass an eth-tester `w3` and step the indexer themselves (`run_indexer=False`)."""
    state = build_state(config, w3)
    templates = Environment(loader=PackageLoader("heliogrid_stats", "templates"), autoescape=select_autoescape())
    templates.filters["tokens"] = lambda base: format_units(int(base))

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
    views = state.views

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        # "<" escaped so the JSON cannot end its <script> element; it is parsed, never executed.
        summary = views.summary()
        initial = json.dumps(summary).replace("<", "\\u003c")
        html = templates.get_template("index.html").render(
            s=summary, refresh=config.page_refresh, initial=initial, market=state.deployment.market_address
        )
        return HTMLResponse(html)

    @app.get(
        "/api/v1/summary",
        response_model=Summary,
        tags=["page"],
        summary="Everything the page shows, in one answer (the page polls this)",
    )
    async def summary() -> Response:
        return as_json(views.summary())

    @app.get("/api/v1/network", response_model=Network, tags=["network"])
    async def network() -> Response:
        return as_json(views.network())

    @app.get("/api/v1/blocks", response_model=list[Block], tags=["network"], summary="Newest indexed blocks")
    async def blocks(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
        return as_json(views.blocks(limit))

    @app.get(
        "/api/v1/nodes",
        response_model=list[Node],
        tags=["network"],
        summary="Every node reporting over ethstats, online or not",
    )
    async def nodes() -> Response:
        return as_json(views.nodes())

    @app.get("/api/v1/energy", response_model=Energy, tags=["energy"])
    async def energy() -> Response:
        return as_json(views.energy())

    @app.get("/api/v1/meters", response_model=list[Meter], tags=["energy"], summary="Meters by address, paged")
    async def meters(
        limit: Annotated[int, Query(ge=1, le=500)] = 100, offset: Annotated[int, Query(ge=0)] = 0
    ) -> Response:
        return as_json(views.meters(limit, offset))

    @app.get("/api/v1/meters/{address}", response_model=Meter, tags=["energy"])
    async def meter(address: str) -> Response:
        if not Web3.is_address(address):
            raise HTTPException(422, f"address: expected a 0x-prefixed 20-byte hex address, got {address!r}")
        found = views.meter(Web3.to_checksum_address(address))
        if found is None:
            raise HTTPException(404, f"meter {address} is not registered (or not indexed yet)")
        return as_json(found)

    @app.get(
        "/api/v1/producers/top",
        response_model=list[Meter],
        tags=["energy"],
        summary="Meters with the most energy reported",
    )
    async def top(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
        return as_json(views.top_producers(limit))

    @app.get(
        "/api/v1/sales",
        response_model=list[Sale],
        tags=["energy"],
        summary="Purchases, newest first; page with before_block/before_log of the last one seen",
    )
    async def sales(
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
        before_block: Annotated[int | None, Query(ge=0)] = None,
        before_log: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        if (before_block is None) != (before_log is None):
            raise HTTPException(422, "before_block and before_log: expected both or neither")
        before = None if before_block is None or before_log is None else (before_block, before_log)
        return as_json(views.sales(limit, before))

    @app.get(
        "/api/v1/production/hourly",
        response_model=list[HourlyPoint],
        tags=["energy"],
        summary="Energy produced, credited and bought per hour (UTC hours, chain time)",
    )
    async def hourly(hours: Annotated[int, Query(ge=1, le=24 * 14)] = 24) -> Response:
        return as_json(views.hourly(hours))

    @app.get("/healthz", response_model=Health, tags=["ops"], summary="200 while the index follows the node")
    async def health() -> JSONResponse:
        status = state.indexer.status
        indexed = state.reader.last_indexed()
        ok = status.last_error is None and status.head is not None
        body = Health(ok=ok, head=status.head, indexed=indexed, last_error=status.last_error)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.websocket("/api")
    async def ethstats(websocket: WebSocket) -> None:
        await serve_node(websocket, state.registry)

    return app
