"""The SQLite index: schema, the indexer's writes and the bounded queries the API reads.

Every read the API makes is a primary-key or index lookup, or a scan of a small table (meters,
signers), so its cost does not grow with the length of the chain. Running totals are kept up to date
by the indexer in the same transaction as the events they come from. Token amounts (18 decimals)
overflow SQLite integers, so they are stored as decimal text and added in Python; where SQLite must
order them (prices), as text zero-padded to the 78 digits of a uint256 (`price_key`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

# 2: the market tables (offers, depth, buyers, trade_buckets). An index of an older schema is upgraded by
# creating the new tables and replaying its stored events into them.
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
  number INTEGER PRIMARY KEY, hash TEXT NOT NULL, parent_hash TEXT NOT NULL, timestamp INTEGER NOT NULL,
  signer TEXT, gas_used INTEGER NOT NULL, gas_limit INTEGER NOT NULL, tx_count INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_signer ON blocks (signer, number);
CREATE TABLE IF NOT EXISTS signers (
  address TEXT PRIMARY KEY, last_block INTEGER, last_time INTEGER, sealed INTEGER NOT NULL DEFAULT 0);
-- Raw market events, the source of truth the aggregates below are rebuilt from after a reorg.
CREATE TABLE IF NOT EXISTS events (
  block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, block_hash TEXT NOT NULL, tx_hash TEXT NOT NULL,
  timestamp INTEGER NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL, PRIMARY KEY (block_number, log_index));
CREATE TABLE IF NOT EXISTS meters (
  address TEXT PRIMARY KEY, owner TEXT NOT NULL, capacity_watts INTEGER NOT NULL, active INTEGER NOT NULL,
  registered_at INTEGER NOT NULL, total_wh INTEGER NOT NULL DEFAULT 0, credited_kwh INTEGER NOT NULL DEFAULT 0,
  tokens_minted TEXT NOT NULL DEFAULT '0', last_report_at INTEGER, reports INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS meters_total ON meters (total_wh DESC);
CREATE TABLE IF NOT EXISTS sales (
  block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, timestamp INTEGER NOT NULL,
  offer_id INTEGER NOT NULL, buyer TEXT NOT NULL, seller TEXT NOT NULL, kwh INTEGER NOT NULL, cost TEXT NOT NULL,
  PRIMARY KEY (block_number, log_index));
CREATE TABLE IF NOT EXISTS hourly (
  hour INTEGER PRIMARY KEY, produced_wh INTEGER NOT NULL DEFAULT 0, credited_kwh INTEGER NOT NULL DEFAULT 0,
  bought_kwh INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Every offer with what is left of it; `price_key` orders prices (zero-padded decimal).
CREATE TABLE IF NOT EXISTS offers (
  offer_id INTEGER PRIMARY KEY, seller TEXT NOT NULL, meter TEXT NOT NULL, price_key TEXT NOT NULL,
  offered_kwh INTEGER NOT NULL, remaining_kwh INTEGER NOT NULL, open INTEGER NOT NULL, created_at INTEGER NOT NULL,
  closed_at INTEGER);
CREATE INDEX IF NOT EXISTS offers_open ON offers (price_key, offer_id) WHERE open = 1;
-- The order book's depth: open kWh and open offers per price level; a level goes when its last offer closes.
CREATE TABLE IF NOT EXISTS depth (
  price_key TEXT PRIMARY KEY, open_kwh INTEGER NOT NULL, offers INTEGER NOT NULL);
-- What each buying address (a meter, for purchases signed by a Pi) bought on the market.
CREATE TABLE IF NOT EXISTS buyers (
  address TEXT PRIMARY KEY, bought_kwh INTEGER NOT NULL, spent TEXT NOT NULL, purchases INTEGER NOT NULL,
  last_purchase_at INTEGER NOT NULL);
-- Trades per UTC hour (size 3600) and day (86400): kWh, tokens paid, cheapest and dearest price.
CREATE TABLE IF NOT EXISTS trade_buckets (
  size INTEGER NOT NULL, start INTEGER NOT NULL, kwh INTEGER NOT NULL, cost TEXT NOT NULL, trades INTEGER NOT NULL,
  low_key TEXT NOT NULL, high_key TEXT NOT NULL, PRIMARY KEY (size, start));
"""

PRICE_DIGITS = 78  # a uint256 has at most 78 decimal digits
BUCKET_SIZES = (3600, 86400)

# Aggregates derived from `events`; cleared and replayed after a reorg.
DERIVED_TABLES = ("meters", "sales", "hourly", "totals", "offers", "depth", "buyers", "trade_buckets")
TOTALS = (
    "produced_wh",
    "credited_kwh",
    "tokens_minted",
    "bought_kwh",
    "sales_cost",
    "offers_created",
    "offered_kwh",
    "reports",
    "purchases",
    "offers_cancelled",
    "cancelled_kwh",
    "open_offers",
    "open_kwh",
)


# A meter with what its address bought on the market (one primary-key lookup in `buyers` per meter).
METER_ROWS = (
    "SELECT m.*, coalesce(b.bought_kwh, 0) AS bought_kwh, coalesce(b.spent, '0') AS bought_cost "
    "FROM meters m LEFT JOIN buyers b ON b.address = m.address"
)


def price_key(price: int) -> str:
    """A price as text that SQLite orders like the number."""
    return str(price).zfill(PRICE_DIGITS)


@dataclass(frozen=True)
class BlockRow:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    signer: str | None
    gas_used: int
    gas_limit: int
    tx_count: int


@dataclass(frozen=True)
class EventRow:
    block_number: int
    log_index: int
    block_hash: str
    tx_hash: str
    timestamp: int
    name: str
    args: dict[str, Any]  # addresses checksummed, integers as int


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the index; WAL lets the API read while the indexer writes."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Store:
    """The index, through one writable connection (the indexer's) or read-only ones, one per thread (the API's
    reader threads: a slow read in one does not wait for another's, and none runs on the event loop).

    `generation` counts the writer's committed transactions: what a reader built from the index is current while
    the generation it was built at is."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self.generation = 0
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if not readonly:
            writer = connect(path)
            writer.executescript(SCHEMA)
            found = writer.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if found is None:
                writer.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(found["value"]) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"index {path} has schema {found['value']}, newer than this app's {SCHEMA_VERSION}: "
                    "delete it and the app re-indexes from the chain"
                )
            self._writer = writer
            if found is not None and int(found["value"]) < SCHEMA_VERSION:
                # The events are all stored whatever the schema: new aggregates are a replay away.
                with self.transaction():
                    self.rebuild_aggregates()
                    self.set_meta("schema", str(SCHEMA_VERSION))

    @property
    def conn(self) -> sqlite3.Connection:
        """The writer's connection, or this thread's read-only one (opened on first use)."""
        if not self.readonly:
            return self._writer
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, readonly=True)
            with self._lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        if not self.readonly:
            self._writer.close()
            return
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

    # -- meta ---------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value)
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.generation += 1

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see one state of the index (a read transaction), however the writer commits meanwhile."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # -- writes (indexer) -----------------------------------------------------------------------------------
    def last_indexed(self) -> int | None:
        value = self.get_meta("last_block")
        return None if value is None else int(value)

    def block_hash(self, number: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM blocks WHERE number=?", (number,)).fetchone()
        return None if row is None else row["hash"]

    def add_blocks(self, blocks: Iterable[BlockRow]) -> None:
        for b in blocks:
            self.conn.execute(
                "INSERT OR REPLACE INTO blocks VALUES (?,?,?,?,?,?,?,?)",
                (b.number, b.hash, b.parent_hash, b.timestamp, b.signer, b.gas_used, b.gas_limit, b.tx_count),
            )
            if b.signer is not None:
                self.conn.execute(
                    "INSERT INTO signers (address, last_block, last_time, sealed) VALUES (?,?,?,1) "
                    "ON CONFLICT(address) DO UPDATE SET sealed=sealed+1, "
                    "last_block=max(coalesce(last_block, -1), excluded.last_block), "
                    "last_time=CASE WHEN excluded.last_block >= coalesce(last_block, -1) "
                    "THEN excluded.last_time ELSE last_time END",
                    (b.signer, b.number, b.timestamp),
                )

    def prune_blocks(self, below: int) -> None:
        self.conn.execute("DELETE FROM blocks WHERE number < ?", (below,))

    def add_events(self, events: Iterable[EventRow]) -> None:
        for e in events:
            self.conn.execute(
                "INSERT INTO events VALUES (?,?,?,?,?,?,?)",
                (
                    e.block_number,
                    e.log_index,
                    e.block_hash,
                    e.tx_hash,
                    e.timestamp,
                    e.name,
                    json.dumps(e.args, default=str),
                ),
            )
            self._apply(e)

    def rollback_to(self, number: int) -> None:
        """Forget everything above block `number` (a reorg replaced it) and rebuild the aggregates."""
        for row in self.conn.execute(
            "SELECT signer, count(*) AS n FROM blocks WHERE number > ? AND signer IS NOT NULL GROUP BY signer",
            (number,),
        ).fetchall():
            self.conn.execute("UPDATE signers SET sealed=max(sealed-?, 0) WHERE address=?", (row["n"], row["signer"]))
        self.conn.execute("DELETE FROM blocks WHERE number > ?", (number,))
        stale = self.conn.execute("SELECT address FROM signers WHERE last_block > ?", (number,)).fetchall()
        for row in stale:
            last = self.conn.execute(
                "SELECT number, timestamp FROM blocks WHERE signer=? ORDER BY number DESC LIMIT 1", (row["address"],)
            ).fetchone()
            self.conn.execute(
                "UPDATE signers SET last_block=?, last_time=? WHERE address=?",
                (last and last["number"], last and last["timestamp"], row["address"]),
            )
        self.conn.execute("DELETE FROM events WHERE block_number > ?", (number,))
        self.rebuild_aggregates()

    def rebuild_aggregates(self) -> None:
        """Clear every aggregate and replay the stored events into them (after a reorg, or a schema upgrade)."""
        for table in DERIVED_TABLES:
            self.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - table names are constants above
        for row in self.conn.execute("SELECT * FROM events ORDER BY block_number, log_index").fetchall():
            self._apply(
                EventRow(
                    row["block_number"],
                    row["log_index"],
                    row["block_hash"],
                    row["tx_hash"],
                    row["timestamp"],
                    row["name"],
                    json.loads(row["args"]),
                )
            )

    def _add_total(self, name: str, amount: int) -> None:
        row = self.conn.execute("SELECT value FROM totals WHERE name=?", (name,)).fetchone()
        value = int(row["value"]) + amount if row else amount
        self.conn.execute("INSERT OR REPLACE INTO totals VALUES (?, ?)", (name, str(value)))

    def _add_hourly(self, timestamp: int, column: str, amount: int) -> None:
        hour = timestamp - timestamp % 3600
        self.conn.execute(
            f"INSERT INTO hourly (hour, {column}) VALUES (?, ?) "  # noqa: S608 - column is a constant
            f"ON CONFLICT(hour) DO UPDATE SET {column}={column}+excluded.{column}",
            (hour, amount),
        )

    def _add_depth(self, key: str, kwh: int, offers: int) -> None:
        self.conn.execute(
            "INSERT INTO depth VALUES (?, ?, ?) ON CONFLICT(price_key) DO UPDATE SET "
            "open_kwh=open_kwh+excluded.open_kwh, offers=offers+excluded.offers",
            (key, kwh, offers),
        )
        self.conn.execute("DELETE FROM depth WHERE price_key=? AND offers <= 0", (key,))
        self._add_total("open_kwh", kwh)
        self._add_total("open_offers", offers)

    def _add_trade_buckets(self, timestamp: int, kwh: int, cost: int, key: str) -> None:
        for size in BUCKET_SIZES:
            start = timestamp - timestamp % size
            row = self.conn.execute(
                "SELECT kwh, cost, trades, low_key, high_key FROM trade_buckets WHERE size=? AND start=?",
                (size, start),
            ).fetchone()
            if row is None:
                values = (kwh, str(cost), 1, key, key)
            else:
                total = str(int(row["cost"]) + cost)
                values = (
                    row["kwh"] + kwh,
                    total,
                    row["trades"] + 1,
                    min(row["low_key"], key),
                    max(row["high_key"], key),
                )
            self.conn.execute("INSERT OR REPLACE INTO trade_buckets VALUES (?,?,?,?,?,?,?)", (size, start, *values))

    def _apply(self, e: EventRow) -> None:
        """Fold one market event into the aggregates; events the aggregates do not use are only stored."""
        handler = self._HANDLERS.get(e.name)
        if handler is not None:
            handler(self, e)

    def _meter_registered(self, e: EventRow) -> None:
        a = e.args
        self.conn.execute(
            "INSERT OR REPLACE INTO meters (address, owner, capacity_watts, active, registered_at) VALUES (?,?,?,1,?)",
            (a["meter"], a["owner"], int(a["capacityWatts"]), e.timestamp),
        )

    def _meter_deactivated(self, e: EventRow) -> None:
        self.conn.execute("UPDATE meters SET active=0 WHERE address=?", (e.args["meter"],))

    def _production_reported(self, e: EventRow) -> None:
        a = e.args
        meter = self.conn.execute(
            "SELECT total_wh, tokens_minted FROM meters WHERE address=?", (a["meter"],)
        ).fetchone()
        previous = meter["total_wh"] if meter else 0
        total_wh, kwh, tokens = int(a["totalWh"]), int(a["creditedKWh"]), int(a["tokensMinted"])
        if meter is None:  # a report for a meter registered before indexing started
            self.conn.execute(
                "INSERT INTO meters (address, owner, capacity_watts, active, registered_at) VALUES (?,?,0,1,?)",
                (a["meter"], a["owner"], e.timestamp),
            )
        minted = int(meter["tokens_minted"]) + tokens if meter else tokens
        self.conn.execute(
            "UPDATE meters SET total_wh=?, credited_kwh=credited_kwh+?, tokens_minted=?, "
            "last_report_at=?, reports=reports+1 WHERE address=?",
            (total_wh, kwh, str(minted), e.timestamp, a["meter"]),
        )
        delta = max(total_wh - previous, 0)
        self._add_total("produced_wh", delta)
        self._add_total("credited_kwh", kwh)
        self._add_total("tokens_minted", tokens)
        self._add_total("reports", 1)
        self._add_hourly(e.timestamp, "produced_wh", delta)
        self._add_hourly(e.timestamp, "credited_kwh", kwh)

    def _offer_created(self, e: EventRow) -> None:
        a = e.args
        kwh, key = int(a["kWh"]), price_key(int(a["pricePerKWh"]))
        self.conn.execute(
            "INSERT OR REPLACE INTO offers VALUES (?,?,?,?,?,?,1,?,NULL)",
            (int(a["offerId"]), a["seller"], a["meter"], key, kwh, kwh, e.timestamp),
        )
        self._add_depth(key, kwh, 1)
        self._add_total("offers_created", 1)
        self._add_total("offered_kwh", kwh)

    def _energy_purchased(self, e: EventRow) -> None:
        a = e.args
        offer_id, kwh, cost = int(a["offerId"]), int(a["kWh"]), int(a["cost"])
        self.conn.execute(
            "INSERT INTO sales VALUES (?,?,?,?,?,?,?,?,?)",
            (e.block_number, e.log_index, e.tx_hash, e.timestamp, offer_id, a["buyer"], a["seller"], kwh, str(cost)),
        )
        self._add_total("bought_kwh", kwh)
        self._add_total("sales_cost", cost)
        self._add_total("purchases", 1)
        self._add_hourly(e.timestamp, "bought_kwh", kwh)
        buyer = self.conn.execute("SELECT spent FROM buyers WHERE address=?", (a["buyer"],)).fetchone()
        spent = int(buyer["spent"]) + cost if buyer else cost
        self.conn.execute(
            "INSERT INTO buyers VALUES (?, ?, ?, 1, ?) ON CONFLICT(address) DO UPDATE SET "
            "bought_kwh=bought_kwh+excluded.bought_kwh, spent=excluded.spent, purchases=purchases+1, "
            "last_purchase_at=excluded.last_purchase_at",
            (a["buyer"], kwh, str(spent), e.timestamp),
        )
        # the price is the offer's: cost = kWh x price exactly (the contract computes it so)
        self._add_trade_buckets(e.timestamp, kwh, cost, price_key(cost // kwh if kwh else 0))
        offer = self.conn.execute(
            "SELECT price_key, remaining_kwh FROM offers WHERE offer_id=? AND open=1", (offer_id,)
        ).fetchone()
        if offer is None:  # the contract sells only open offers it announced: nothing to take off the book
            return
        remaining = max(offer["remaining_kwh"] - kwh, 0)
        closed = remaining == 0
        self.conn.execute(
            "UPDATE offers SET remaining_kwh=?, open=?, closed_at=? WHERE offer_id=?",
            (remaining, 0 if closed else 1, e.timestamp if closed else None, offer_id),
        )
        self._add_depth(offer["price_key"], remaining - offer["remaining_kwh"], -1 if closed else 0)

    def _offer_cancelled(self, e: EventRow) -> None:
        offer_id = int(e.args["offerId"])
        offer = self.conn.execute(
            "SELECT price_key, remaining_kwh FROM offers WHERE offer_id=? AND open=1", (offer_id,)
        ).fetchone()
        if offer is None:
            return
        self.conn.execute("UPDATE offers SET open=0, closed_at=? WHERE offer_id=?", (e.timestamp, offer_id))
        self._add_depth(offer["price_key"], -offer["remaining_kwh"], -1)
        self._add_total("offers_cancelled", 1)
        self._add_total("cancelled_kwh", offer["remaining_kwh"])

    _HANDLERS: ClassVar[dict[str, Callable[[Store, EventRow], None]]] = {
        "MeterRegistered": _meter_registered,
        "MeterDeactivated": _meter_deactivated,
        "ProductionReported": _production_reported,
        "OfferCreated": _offer_created,
        "EnergyPurchased": _energy_purchased,
        "OfferCancelled": _offer_cancelled,
    }

    # -- reads (API) --------------------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        found = {r["name"]: int(r["value"]) for r in self.conn.execute("SELECT name, value FROM totals")}
        return {name: found.get(name, 0) for name in TOTALS}

    def head_block(self) -> BlockRow | None:
        row = self.conn.execute("SELECT * FROM blocks ORDER BY number DESC LIMIT 1").fetchone()
        return None if row is None else BlockRow(**dict(row))

    def block_at(self, number: int) -> BlockRow | None:
        row = self.conn.execute("SELECT * FROM blocks WHERE number=?", (number,)).fetchone()
        return None if row is None else BlockRow(**dict(row))

    def recent_blocks(self, limit: int) -> list[BlockRow]:
        rows = self.conn.execute("SELECT * FROM blocks ORDER BY number DESC LIMIT ?", (limit,)).fetchall()
        return [BlockRow(**dict(r)) for r in rows]

    def signers(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM signers ORDER BY address")]

    def meters(self, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        rows = self.conn.execute(f"{METER_ROWS} ORDER BY m.address LIMIT ? OFFSET ?", (limit, offset))
        return [dict(r) for r in rows]

    def meter(self, address: str) -> dict[str, Any] | None:
        row = self.conn.execute(f"{METER_ROWS} WHERE m.address=?", (address,)).fetchone()
        return None if row is None else dict(row)

    def meter_count(self) -> tuple[int, int]:
        row = self.conn.execute("SELECT count(*) AS n, coalesce(sum(active), 0) AS active FROM meters").fetchone()
        return row["n"], row["active"]

    def top_producers(self, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"{METER_ROWS} WHERE m.total_wh > 0 ORDER BY m.total_wh DESC, m.address LIMIT ?",
            (limit,),
        )
        return [dict(r) for r in rows]

    def recent_sales(self, limit: int, before: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        if before is None:
            rows = self.conn.execute("SELECT * FROM sales ORDER BY block_number DESC, log_index DESC LIMIT ?", (limit,))
        else:
            rows = self.conn.execute(
                "SELECT * FROM sales WHERE (block_number, log_index) < (?, ?) "
                "ORDER BY block_number DESC, log_index DESC LIMIT ?",
                (*before, limit),
            )
        return [dict(r) for r in rows]

    def hourly(self, since: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM hourly WHERE hour >= ? ORDER BY hour", (since - since % 3600,))
        return [dict(r) for r in rows]

    def depth(self, limit: int) -> list[dict[str, Any]]:
        """Price levels of the open offers, cheapest first."""
        rows = self.conn.execute("SELECT * FROM depth ORDER BY price_key LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def open_offers(self, limit: int) -> list[dict[str, Any]]:
        """Open offers, cheapest first, oldest first at one price (the partial index offers_open)."""
        rows = self.conn.execute(
            "SELECT * FROM offers WHERE open = 1 ORDER BY price_key, offer_id LIMIT ?", (limit,)
        ).fetchall()
        return [dict(r) for r in rows]

    def trade_buckets(self, size: int, since: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM trade_buckets WHERE size=? AND start >= ? ORDER BY start", (size, since - since % size)
        )
        return [dict(r) for r in rows]
