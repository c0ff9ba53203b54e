"""The HTTP and websocket routes, one router per part of the API; each reads the app's state through a dependency
and the index through a reader thread (`Reads.run`), never on the event loop."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, WebSocket
from fastapi.requests import HTTPConnection
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import Response
from web3 import Web3

from heliogrid_stats.ethstats import serve_node
from heliogrid_stats.models import (
    Block,
    DepthLevel,
    Energy,
    Health,
    HourlyPoint,
    Market,
    Meter,
    Network,
    Node,
    Offer,
    PricePoint,
    Sale,
    Summary,
)
from heliogrid_stats.reads import Reads, encode
from heliogrid_stats.state import AppState
from heliogrid_stats.views import format_units

TEMPLATES = Environment(loader=PackageLoader("heliogrid_stats", "templates"), autoescape=select_autoescape())
TEMPLATES.filters["tokens"] = lambda base: format_units(int(base))
# to 4 decimals, rounded half up, as the page's script shows it (an average price can have all 18)
TEMPLATES.filters["price"] = lambda base: format_units((int(base) + 5 * 10**13) // 10**14 * 10**14)


# The dependencies are coroutines: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per
# dependency per request for what is an attribute lookup.
async def app_state(connection: HTTPConnection) -> AppState:
    """The indexer, stores, registry and views that create_app built (request or websocket alike)."""
    return connection.app.state.stats


async def app_reads(state: Annotated[AppState, Depends(app_state)]) -> Reads:
    return state.reads


State = Annotated[AppState, Depends(app_state)]
ReadsDep = Annotated[Reads, Depends(app_reads)]


def as_json(value: bytes | dict[str, Any] | list[dict[str, Any]]) -> Response:
    """JSON as is: the declared response_model documents the shape, FastAPI need not re-validate it."""
    return Response(value if isinstance(value, bytes) else encode(value), media_type="application/json")


def render_page(summary: dict[str, Any], refresh: float, market: str) -> str:
    # "<" escaped so the JSON cannot end its <script> element; it is parsed, never executed.
    initial = json.dumps(summary).replace("<", "\\u003c")
    return TEMPLATES.get_template("index.html").render(s=summary, refresh=refresh, initial=initial, market=market)


page_router = APIRouter()


@page_router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(state: State) -> HTMLResponse:
    summary = (await state.reads.summary()).value
    html = await state.reads.run(render_page, summary, state.config.page_refresh, state.deployment.market_address)
    return HTMLResponse(html)


@page_router.get(
    "/api/v1/summary",
    response_model=Summary,
    tags=["page"],
    summary="Everything the page shows, in one answer (the page polls this)",
)
async def summary(reads: ReadsDep) -> Response:
    return Response((await reads.summary()).body, media_type="application/json")


network_router = APIRouter(prefix="/api/v1", tags=["network"])


@network_router.get("/network", response_model=Network)
async def network(reads: ReadsDep) -> Response:
    return as_json(await reads.json(reads.views.network))


@network_router.get("/blocks", response_model=list[Block], summary="Newest indexed blocks")
async def blocks(reads: ReadsDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    return as_json(await reads.json(reads.views.blocks, limit))


@network_router.get("/nodes", response_model=list[Node], summary="Every node reporting over ethstats, online or not")
async def nodes(state: State) -> Response:
    return as_json(state.registry.snapshot())  # in memory, kept by this event loop: no thread


energy_router = APIRouter(prefix="/api/v1", tags=["energy"])


@energy_router.get("/energy", response_model=Energy)
async def energy(reads: ReadsDep) -> Response:
    return as_json(await reads.json(reads.views.energy))


@energy_router.get("/meters", response_model=list[Meter], summary="Meters by address, paged")
async def meters(
    reads: ReadsDep, limit: Annotated[int, Query(ge=1, le=500)] = 100, offset: Annotated[int, Query(ge=0)] = 0
) -> Response:
    return as_json(await reads.json(reads.views.meters, limit, offset))


@energy_router.get("/meters/{address}", response_model=Meter)
async def meter(reads: ReadsDep, address: str) -> Response:
    if not Web3.is_address(address):
        raise HTTPException(422, f"address: expected a 0x-prefixed 20-byte hex address, got {address!r}")
    found = await reads.run(reads.views.meter, Web3.to_checksum_address(address))
    if found is None:
        raise HTTPException(404, f"meter {address} is not registered (or not indexed yet)")
    return as_json(found)


@energy_router.get("/producers/top", response_model=list[Meter], summary="Meters with the most energy reported")
async def top(reads: ReadsDep, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    return as_json(await reads.json(reads.views.top_producers, limit))


@energy_router.get(
    "/sales",
    response_model=list[Sale],
    summary="Purchases, newest first; page with before_block/before_log of the last one seen",
)
async def sales(
    reads: ReadsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    before_block: Annotated[int | None, Query(ge=0)] = None,
    before_log: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    if (before_block is None) != (before_log is None):
        raise HTTPException(422, "before_block and before_log: expected both or neither")
    before = None if before_block is None or before_log is None else (before_block, before_log)
    return as_json(await reads.json(reads.views.sales, limit, before))


@energy_router.get(
    "/production/hourly",
    response_model=list[HourlyPoint],
    summary="Energy produced, credited and bought per hour (UTC hours, chain time)",
)
async def hourly(reads: ReadsDep, hours: Annotated[int, Query(ge=1, le=24 * 14)] = 24) -> Response:
    return as_json(await reads.json(reads.views.hourly, hours))


market_router = APIRouter(prefix="/api/v1/market", tags=["market"])

# The most buckets one request may ask for: two weeks of hours, a year of days.
MAX_BUCKETS = {"hour": 24 * 14, "day": 366}


@market_router.get("", response_model=Market, summary="Open offers, depth, totals and price history of the market")
async def market(reads: ReadsDep) -> Response:
    return as_json(await reads.json(reads.views.market))


@market_router.get("/depth", response_model=list[DepthLevel], summary="Open kWh per price level, cheapest first")
async def depth(reads: ReadsDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    return as_json(await reads.json(reads.views.depth, limit))


@market_router.get("/offers", response_model=list[Offer], summary="Open offers, cheapest first, then oldest first")
async def offers(reads: ReadsDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    return as_json(await reads.json(reads.views.open_offers, limit))


@market_router.get(
    "/prices",
    response_model=list[PricePoint],
    summary="kWh traded and volume-weighted price per UTC hour or day (chain time); buckets without trades are absent",
)
async def prices(
    reads: ReadsDep,
    bucket: Literal["hour", "day"] = "hour",
    count: Annotated[int, Query(ge=1, le=366, description="buckets back from now: at most 336 hours or 366 days")] = 48,
) -> Response:
    if count > MAX_BUCKETS[bucket]:
        raise HTTPException(422, f"count: expected at most {MAX_BUCKETS[bucket]} for bucket={bucket}, got {count}")
    return as_json(await reads.json(reads.views.prices, bucket, count))


ops_router = APIRouter()

INDEXER_FAILING = "the indexer cannot follow the node; the service's log says why"
INDEXING_STOPPED = "indexing stopped: the node serves another chain than the deployment record; see the service's log"


@ops_router.get("/healthz", response_model=Health, tags=["ops"], summary="200 while the index follows the node")
async def health(state: State) -> JSONResponse:
    status = state.indexer.status
    indexed = await state.reads.run(state.reader.last_indexed)
    ok = status.last_error is None and status.head is not None
    # The exception itself is in the service's log, not here: its text can name hosts, ports and paths.
    problem = None if status.last_error is None else INDEXING_STOPPED if status.stopped else INDEXER_FAILING
    body = Health(ok=ok, head=status.head, indexed=indexed, last_error=problem)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@ops_router.websocket("/api")
async def ethstats(websocket: WebSocket, state: State) -> None:
    await serve_node(websocket, state.gate, state.registry)


ROUTERS = (page_router, network_router, energy_router, market_router, ops_router)
