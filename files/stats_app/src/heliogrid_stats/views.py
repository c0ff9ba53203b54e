"""Read-side: builds the API's answers from the index and the ethstats registry. Never calls the chain.

Answers are plain dicts shaped like the pydantic models in models.py (which document them in the OpenAPI
description; a test validates every endpoint against its model). Building and validating pydantic
objects was most of the time of a summary request; the rows come from our own index, checked when written.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from heliogrid_stats.ethstats import NodeRegistry
from heliogrid_stats.store import BlockRow, Store

TOKEN_DECIMALS = 18
RECENT_BLOCKS = 30
SUMMARY_METERS = 100
SUMMARY_DEPTH = 20
SUMMARY_HOURS = 48
SUMMARY_DAYS = 30
BUCKETS = {"hour": 3600, "day": 86400}


def format_units(value: int, decimals: int = TOKEN_DECIMALS) -> str:
    """Base units as a plain decimal string: 1500000000000000000 -> '1.5'."""
    text = format(Decimal(value).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _block(b: BlockRow) -> dict[str, Any]:
    return dict(
        number=b.number,
        hash=b.hash,
        timestamp=b.timestamp,
        signer=b.signer,
        gas_used=b.gas_used,
        gas_limit=b.gas_limit,
        tx_count=b.tx_count,
    )


def _meter(row: dict[str, Any]) -> dict[str, Any]:
    return dict(
        address=row["address"],
        owner=row["owner"],
        capacity_watts=row["capacity_watts"],
        active=bool(row["active"]),
        registered_at=row["registered_at"],
        total_wh=row["total_wh"],
        produced_kwh=row["total_wh"] / 1000,
        credited_kwh=row["credited_kwh"],
        tokens_minted=row["tokens_minted"],
        last_report_at=row["last_report_at"],
        reports=row["reports"],
        bought_kwh=row["bought_kwh"],
        bought_cost=row["bought_cost"],
    )


def _sale(row: dict[str, Any]) -> dict[str, Any]:
    kwh, cost = row["kwh"], int(row["cost"])
    return dict(
        block_number=row["block_number"],
        log_index=row["log_index"],
        tx_hash=row["tx_hash"],
        timestamp=row["timestamp"],
        offer_id=row["offer_id"],
        buyer=row["buyer"],
        seller=row["seller"],
        kwh=kwh,
        price=str(cost // kwh if kwh else 0),
        cost=row["cost"],
    )


def _depth_level(row: dict[str, Any]) -> dict[str, Any]:
    price = int(row["price_key"])
    return dict(price=str(price), price_display=format_units(price), open_kwh=row["open_kwh"], offers=row["offers"])


def _offer(row: dict[str, Any]) -> dict[str, Any]:
    return dict(
        offer_id=row["offer_id"],
        seller=row["seller"],
        meter=row["meter"],
        price=str(int(row["price_key"])),
        offered_kwh=row["offered_kwh"],
        remaining_kwh=row["remaining_kwh"],
        created_at=row["created_at"],
    )


def _price_point(row: dict[str, Any]) -> dict[str, Any]:
    kwh, cost = row["kwh"], int(row["cost"])
    average = cost // kwh if kwh else 0
    return dict(
        start=row["start"],
        kwh=kwh,
        trades=row["trades"],
        cost=str(cost),
        average_price=str(average),
        average_price_display=format_units(average),
        low_price=str(int(row["low_key"])),
        high_price=str(int(row["high_key"])),
    )


class Views:
    def __init__(self, store: Store, registry: NodeRegistry, chain_id: int, block_time_window: int) -> None:
        self.store = store
        self.registry = registry
        self.chain_id = chain_id
        self.window = block_time_window

    def _network_meta(self) -> dict[str, Any]:
        raw = self.store.get_meta("network")
        return json.loads(raw) if raw else {}

    def average_block_time(self, head: BlockRow | None) -> float | None:
        if head is None:
            return None
        earlier = self.store.block_at(head.number - self.window)
        if earlier is None:  # fewer blocks than the window indexed yet: use the oldest kept one
            row = self.store.conn.execute("SELECT number, timestamp FROM blocks ORDER BY number LIMIT 1").fetchone()
            if row is None or row["number"] == head.number:
                return None
            return (head.timestamp - row["timestamp"]) / (head.number - row["number"])
        return (head.timestamp - earlier.timestamp) / self.window

    def network(self) -> dict[str, Any]:
        meta = self._network_meta()
        head_block = self.store.head_block()
        indexed = self.store.last_indexed()
        head = meta.get("head")
        authorised = meta.get("clique_signers")
        status = meta.get("clique_status") or {}
        activity = status.get("sealer_activity", {})
        rows = {r["address"]: r for r in self.store.signers()}
        addresses = sorted(set(rows) | set(authorised or []))
        signers = [
            dict(
                address=a,
                authorised=None if authorised is None else a in authorised,
                last_block=rows.get(a, {}).get("last_block"),
                last_time=rows.get(a, {}).get("last_time"),
                sealed=rows.get(a, {}).get("sealed", 0),
                recent_blocks=activity.get(a),
            )
            for a in addresses
        ]
        return dict(
            chain_id=self.chain_id,
            head=head,
            indexed=indexed,
            lag=None if head is None or indexed is None else max(head - indexed, 0),
            head_time=head_block.timestamp if head_block else None,
            average_block_time=self.average_block_time(head_block),
            block_time_window=self.window,
            pending_transactions=meta.get("pending"),
            inturn_percent=status.get("inturn_percent"),
            signers=signers,
            recent_blocks=self.blocks(RECENT_BLOCKS),
            updated=meta.get("updated"),
        )

    def blocks(self, limit: int) -> list[dict[str, Any]]:
        return [_block(b) for b in self.store.recent_blocks(limit)]

    def nodes(self) -> list[dict[str, Any]]:
        return self.registry.snapshot()

    def energy(self) -> dict[str, Any]:
        t = self.store.totals()
        meters, active = self.store.meter_count()
        return dict(
            produced_wh=t["produced_wh"],
            produced_kwh=t["produced_wh"] / 1000,
            sold_kwh=t["credited_kwh"],
            tokens_minted=str(t["tokens_minted"]),
            tokens_minted_display=format_units(t["tokens_minted"]),
            bought_kwh=t["bought_kwh"],
            sales_cost=str(t["sales_cost"]),
            purchases=t["purchases"],
            offers_created=t["offers_created"],
            offered_kwh=t["offered_kwh"],
            reports=t["reports"],
            meters=meters,
            active_meters=active,
        )

    def meters(self, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        return [_meter(r) for r in self.store.meters(limit, offset)]

    def meter(self, address: str) -> dict[str, Any] | None:
        row = self.store.meter(address)
        return None if row is None else _meter(row)

    def top_producers(self, limit: int) -> list[dict[str, Any]]:
        return [_meter(r) for r in self.store.top_producers(limit)]

    def sales(self, limit: int, before: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        return [_sale(r) for r in self.store.recent_sales(limit, before)]

    def _now(self) -> int:
        """The later of the wall clock and the head's time: chart windows end there."""
        head = self.store.head_block()
        return max(int(time.time()), head.timestamp if head else 0)

    def hourly(self, hours: int) -> list[dict[str, Any]]:
        return self.store.hourly(self._now() - (hours - 1) * 3600)

    def depth(self, limit: int) -> list[dict[str, Any]]:
        return [_depth_level(r) for r in self.store.depth(limit)]

    def open_offers(self, limit: int) -> list[dict[str, Any]]:
        return [_offer(r) for r in self.store.open_offers(limit)]

    def prices(self, bucket: str, count: int) -> list[dict[str, Any]]:
        """Trades per `bucket` ("hour" or "day") over the last `count` of them; buckets without trades are absent."""
        size = BUCKETS[bucket]
        return [_price_point(r) for r in self.store.trade_buckets(size, self._now() - (count - 1) * size)]

    def market(self) -> dict[str, Any]:
        t = self.store.totals()
        depth = self.depth(SUMMARY_DEPTH)
        return dict(
            open_offers=t["open_offers"],
            open_kwh=t["open_kwh"],
            best_price=depth[0]["price"] if depth else None,
            offers_created=t["offers_created"],
            offered_kwh=t["offered_kwh"],
            offers_cancelled=t["offers_cancelled"],
            cancelled_kwh=t["cancelled_kwh"],
            bought_kwh=t["bought_kwh"],
            purchases=t["purchases"],
            sales_cost=str(t["sales_cost"]),
            average_price=str(t["sales_cost"] // t["bought_kwh"]) if t["bought_kwh"] else None,
            depth=depth,
            hourly=self.prices("hour", SUMMARY_HOURS),
            daily=self.prices("day", SUMMARY_DAYS),
        )

    def summary(self, nodes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything the page shows, read in one snapshot of the index. `nodes`: the registry's snapshot, taken on
        the event loop that updates the registry (the summary is built in a reader thread)."""
        with self.store.snapshot():
            return self._summary(self.nodes() if nodes is None else nodes)

    def _summary(self, nodes: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(
            network=self.network(),
            nodes=nodes,
            energy=self.energy(),
            top_producers=self.top_producers(10),
            meters=self.meters(SUMMARY_METERS),
            recent_sales=self.sales(20),
            hourly=self.hourly(24),
            market=self.market(),
        )
