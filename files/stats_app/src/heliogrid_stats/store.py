"""The SQLite index: schema, the indexer's writes and the bounded queries the API reads.

Every read the API makes is a primary-key or index lookup, or a scan of a small table (meters,
signers), so its cost does not grow with the length of the chain. Running totals are kept up to date
by the indexer in the same transaction as the events they come from. Token amounts (18 decimals)
overflow SQLite integers, so they are stored as decimal text and added in Python.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

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
"""

# Aggregates derived from `events`; cleared and replayed after a reorg.
DERIVED_TABLES = ("meters", "sales", "hourly", "totals")
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
)


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
    """Owns one connection. The indexer uses a writable Store, the API a read-only one."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if not readonly:
            writer = connect(path)
            writer.executescript(SCHEMA)
            found = writer.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if found is None:
                writer.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(found["value"]) != SCHEMA_VERSION:
                raise RuntimeError(
                    f"index {path} has schema {found['value']}, expected {SCHEMA_VERSION}: "
                    "delete it and the app re-indexes from the chain"
                )
            self.conn = writer
        else:
            self.conn = connect(path, readonly=True)

    def close(self) -> None:
        self.conn.close()

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

    def _apply(self, e: EventRow) -> None:
        """Fold one market event into the aggregates."""
        a = e.args
        if e.name == "MeterRegistered":
            self.conn.execute(
                "INSERT OR REPLACE INTO meters (address, owner, capacity_watts, active, registered_at) "
                "VALUES (?,?,?,1,?)",
                (a["meter"], a["owner"], int(a["capacityWatts"]), e.timestamp),
            )
        elif e.name == "MeterDeactivated":
            self.conn.execute("UPDATE meters SET active=0 WHERE address=?", (a["meter"],))
        elif e.name == "ProductionReported":
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
        elif e.name == "OfferCreated":
            self._add_total("offers_created", 1)
            self._add_total("offered_kwh", int(a["kWh"]))
        elif e.name == "EnergyPurchased":
            kwh, cost = int(a["kWh"]), int(a["cost"])
            self.conn.execute(
                "INSERT INTO sales VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    e.block_number,
                    e.log_index,
                    e.tx_hash,
                    e.timestamp,
                    int(a["offerId"]),
                    a["buyer"],
                    a["seller"],
                    kwh,
                    str(cost),
                ),
            )
            self._add_total("bought_kwh", kwh)
            self._add_total("sales_cost", cost)
            self._add_total("purchases", 1)
            self._add_hourly(e.timestamp, "bought_kwh", kwh)

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
        rows = self.conn.execute("SELECT * FROM meters ORDER BY address LIMIT ? OFFSET ?", (limit, offset))
        return [dict(r) for r in rows]

    def meter(self, address: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM meters WHERE address=?", (address,)).fetchone()
        return None if row is None else dict(row)

    def meter_count(self) -> tuple[int, int]:
        row = self.conn.execute("SELECT count(*) AS n, coalesce(sum(active), 0) AS active FROM meters").fetchone()
        return row["n"], row["active"]

    def top_producers(self, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM meters WHERE total_wh > 0 ORDER BY total_wh DESC, address LIMIT ?", (limit,)
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
