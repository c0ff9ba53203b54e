"""Shapes of the JSON API; FastAPI publishes them in the OpenAPI description at /openapi.json."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Block(BaseModel):
    number: int
    hash: str
    timestamp: int = Field(description="Unix time of the block")
    signer: str | None = Field(description="Sealer recovered from the Clique seal")
    gas_used: int
    gas_limit: int
    tx_count: int


class Signer(BaseModel):
    address: str
    authorised: bool | None = Field(description="In clique_getSigners at the head; null when the node hides clique")
    last_block: int | None = Field(description="Last block this signer sealed (among indexed blocks)")
    last_time: int | None
    sealed: int = Field(description="Blocks sealed among the indexed blocks")
    recent_blocks: int | None = Field(description="Blocks sealed in the last 64 (clique_status)")


class Network(BaseModel):
    chain_id: int
    head: int | None = Field(description="Head block of the stats node at the last poll")
    indexed: int | None = Field(description="Last block the index covers")
    lag: int | None = Field(description="head - indexed")
    head_time: int | None
    average_block_time: float | None = Field(description="Seconds, over the last block_time_window blocks")
    block_time_window: int
    pending_transactions: int | None
    inturn_percent: float | None
    signers: list[Signer]
    recent_blocks: list[Block] = Field(description="Newest first: gas used per block")
    updated: int | None = Field(description="Unix time of the last poll of the node")


class Node(BaseModel):
    id: str = Field(description="Name given in --ethstats name:secret@host")
    client: str | None
    os: str | None
    arch: str | None
    network: str | None
    protocols: str | None
    online: bool
    last_seen: int
    latency_ms: int | None
    peers: int | None
    syncing: bool | None
    mining: bool | None
    pending: int | None
    gas_price: int | None
    head: int | None
    head_hash: str | None
    head_time: int | None
    head_miner: str | None


class Energy(BaseModel):
    produced_wh: int = Field(description="Sum of every meter's reported increase, Wh")
    produced_kwh: float
    sold_kwh: int = Field(description="Whole kWh credited to producers and offered on the market")
    tokens_minted: str = Field(description="Token base units (18 decimals), as a decimal string")
    tokens_minted_display: str = Field(description="tokens_minted in whole tokens")
    bought_kwh: int = Field(description="kWh bought on the market")
    sales_cost: str = Field(description="Tokens paid for bought kWh, base units")
    purchases: int
    offers_created: int
    offered_kwh: int
    reports: int
    meters: int
    active_meters: int


class Meter(BaseModel):
    address: str
    owner: str
    capacity_watts: int
    active: bool
    registered_at: int
    total_wh: int
    produced_kwh: float
    credited_kwh: int
    tokens_minted: str
    last_report_at: int | None
    reports: int
    bought_kwh: int = Field(
        description="kWh bought on the market by this meter's address (purchases signed by the Pi's meter key); "
        "the home's import from the grid is not on chain"
    )
    bought_cost: str = Field(description="Tokens the meter's address paid for them, base units")


class Sale(BaseModel):
    block_number: int
    log_index: int
    tx_hash: str
    timestamp: int
    offer_id: int
    buyer: str
    seller: str
    kwh: int
    price: str = Field(description="Price per kWh of the offer, token base units (cost / kWh)")
    cost: str = Field(description="Token base units")


class HourlyPoint(BaseModel):
    hour: int = Field(description="Unix time of the start of the hour (UTC)")
    produced_wh: int
    credited_kwh: int
    bought_kwh: int


class DepthLevel(BaseModel):
    price: str = Field(description="Price per kWh, token base units")
    price_display: str = Field(description="price in whole tokens")
    open_kwh: int = Field(description="kWh still for sale at this price")
    offers: int = Field(description="Open offers at this price")


class Offer(BaseModel):
    offer_id: int
    seller: str
    meter: str = Field(description="Meter whose report created the offer")
    price: str = Field(description="Price per kWh, token base units")
    offered_kwh: int
    remaining_kwh: int
    created_at: int = Field(description="Block time of the report that created it")


class PricePoint(BaseModel):
    start: int = Field(description="Unix time of the start of the UTC hour or day")
    kwh: int = Field(description="kWh traded in the bucket")
    trades: int
    cost: str = Field(description="Tokens paid, base units")
    average_price: str = Field(description="Volume-weighted price per kWh (cost / kWh, rounded down), base units")
    average_price_display: str = Field(description="average_price in whole tokens")
    low_price: str = Field(description="Cheapest price traded, base units")
    high_price: str = Field(description="Dearest price traded, base units")


class Market(BaseModel):
    open_offers: int
    open_kwh: int = Field(description="kWh for sale in open offers")
    best_price: str | None = Field(description="Cheapest open price per kWh, base units; null without open offers")
    offers_created: int
    offered_kwh: int
    offers_cancelled: int
    cancelled_kwh: int = Field(description="kWh withdrawn unsold by cancelled offers")
    bought_kwh: int
    purchases: int
    sales_cost: str = Field(description="Tokens paid for every kWh bought, base units")
    average_price: str | None = Field(description="Volume-weighted price of every trade, base units")
    depth: list[DepthLevel] = Field(description="Cheapest 20 price levels; /api/v1/market/depth for more")
    hourly: list[PricePoint] = Field(description="Trades per UTC hour over the last 48 hours of chain time")
    daily: list[PricePoint] = Field(description="Trades per UTC day over the last 30 days of chain time")


class Summary(BaseModel):
    network: Network
    nodes: list[Node]
    energy: Energy
    top_producers: list[Meter]
    meters: list[Meter] = Field(description="First 100 meters by address; /api/v1/meters pages through all")
    recent_sales: list[Sale]
    hourly: list[HourlyPoint] = Field(description="Production per hour over the last 24 hours of chain time")
    market: Market


class Health(BaseModel):
    ok: bool
    head: int | None
    indexed: int | None
    last_error: str | None
