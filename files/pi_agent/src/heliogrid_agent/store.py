"""The agent's durable state in SQLite: the energy counter, daily totals and the transaction outbox.

WAL journal with ``synchronous=FULL``: every commit is on disk before it returns, so after a SIGKILL or a
power cut the agent resumes from the last committed sample. A transaction is written to the outbox (its
nonce and signed bytes) before it is broadcast, so a restart re-broadcasts the very same transaction
instead of signing a second one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heliogrid_agent.meter import Baseline

SCHEMA = """
CREATE TABLE IF NOT EXISTS meter_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    total_uwh INTEGER NOT NULL,
    last_sample_at REAL,
    selling_paused INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO meter_state (id, total_uwh) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS daily (
    day TEXT PRIMARY KEY,
    exported_uwh INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- report | approve | buy | ask
    nonce INTEGER NOT NULL,
    tx_hash TEXT NOT NULL UNIQUE,
    raw_tx BLOB NOT NULL,
    total_wh INTEGER,                -- the cumulative total a report carries
    detail TEXT,                     -- JSON: what a buy/approve/ask was for
    status TEXT NOT NULL,            -- signed | sent | mined | reverted | dropped
    created_at REAL NOT NULL,
    sent_at REAL,
    block_number INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status);
-- Import, and the meter registers' baseline (meters with their own totals): the counters and the baseline are
-- written in one commit, so a restart credits what the meter counted since then exactly once.
CREATE TABLE IF NOT EXISTS meter_import (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    imported_uwh INTEGER NOT NULL DEFAULT 0,
    register_export_uwh INTEGER,
    register_import_uwh INTEGER,
    register_at REAL
);
INSERT OR IGNORE INTO meter_import (id) VALUES (1);
CREATE TABLE IF NOT EXISTS daily_import (
    day TEXT PRIMARY KEY,
    imported_uwh INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

UNRESOLVED = ("signed", "sent")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    nonce: int
    tx_hash: str
    raw_tx: bytes
    total_wh: int | None
    detail: dict[str, Any]
    status: str
    created_at: float
    sent_at: float | None
    block_number: int | None
    error: str | None

    @property
    def resolved(self) -> bool:
        return self.status not in UNRESOLVED


class Store:
    """One SQLite database, shared by the agent's threads behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        if fresh:
            os.chmod(self.path, 0o600)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> Any:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # -- the energy counter ------------------------------------------------------------------------------
    def total_uwh(self) -> int:
        return int(self._one("SELECT total_uwh FROM meter_state WHERE id = 1"))

    def record_sample(
        self,
        total_uwh: int,
        delta_uwh: int,
        day: str,
        at: float,
        imported_uwh: int | None = None,
        import_delta_uwh: int = 0,
        baseline: Baseline | None = None,
    ) -> None:
        """Persist the counters (and the meter registers' baseline) after one sample, in one fsync'd commit."""
        with self._tx() as db:
            db.execute("UPDATE meter_state SET total_uwh = ?, last_sample_at = ? WHERE id = 1", (total_uwh, at))
            if delta_uwh:
                db.execute(
                    "INSERT INTO daily (day, exported_uwh) VALUES (?, ?) "
                    "ON CONFLICT (day) DO UPDATE SET exported_uwh = exported_uwh + excluded.exported_uwh",
                    (day, delta_uwh),
                )
            if imported_uwh is not None:
                db.execute("UPDATE meter_import SET imported_uwh = ? WHERE id = 1", (imported_uwh,))
            if import_delta_uwh:
                db.execute(
                    "INSERT INTO daily_import (day, imported_uwh) VALUES (?, ?) "
                    "ON CONFLICT (day) DO UPDATE SET imported_uwh = imported_uwh + excluded.imported_uwh",
                    (day, import_delta_uwh),
                )
            if baseline is not None:
                db.execute(
                    "UPDATE meter_import SET register_export_uwh = ?, register_import_uwh = ?, register_at = ? "
                    "WHERE id = 1",
                    (baseline.export_uwh, baseline.import_uwh, baseline.at),
                )

    def imported_uwh(self) -> int:
        """The energy the home imported, counted by this agent (µWh; 0 for sensors that cannot see import)."""
        return int(self._one("SELECT imported_uwh FROM meter_import WHERE id = 1"))

    def day_imported_uwh(self, day: str) -> int:
        return int(self._one("SELECT imported_uwh FROM daily_import WHERE day = ?", day) or 0)

    def register_baseline(self) -> Baseline | None:
        """The meter registers' values at the last credited reading, or None before the first one."""
        with self._lock:
            row = self._db.execute(
                "SELECT register_export_uwh, register_import_uwh, register_at FROM meter_import WHERE id = 1"
            ).fetchone()
        return None if row[0] is None else Baseline(int(row[0]), None if row[1] is None else int(row[1]), row[2])

    def raise_total(self, total_uwh: int) -> bool:
        """Move the counter up to ``total_uwh`` if it is behind (never down). Returns True if it moved."""
        with self._tx() as db:
            current = db.execute("SELECT total_uwh FROM meter_state WHERE id = 1").fetchone()[0]
            if total_uwh <= current:
                return False
            db.execute("UPDATE meter_state SET total_uwh = ? WHERE id = 1", (total_uwh,))
            return True

    def day_uwh(self, day: str) -> int:
        return int(self._one("SELECT exported_uwh FROM daily WHERE day = ?", day) or 0)

    def selling_paused(self) -> bool:
        return bool(self._one("SELECT selling_paused FROM meter_state WHERE id = 1"))

    def set_selling_paused(self, paused: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE meter_state SET selling_paused = ? WHERE id = 1", (int(paused),))

    # -- the outbox --------------------------------------------------------------------------------------
    def add_transaction(
        self,
        kind: str,
        nonce: int,
        tx_hash: str,
        raw_tx: bytes,
        at: float,
        total_wh: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO outbox (kind, nonce, tx_hash, raw_tx, total_wh, detail, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'signed', ?)",
                (kind, nonce, tx_hash, raw_tx, total_wh, json.dumps(detail or {}), at),
            )
            return int(cur.lastrowid or 0)

    def update_transaction(self, row_id: int, **changes: Any) -> None:
        allowed = {"status", "sent_at", "block_number", "error"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update outbox columns {sorted(unknown)}; allowed: {sorted(allowed)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._tx() as db:
            db.execute(f"UPDATE outbox SET {assignments} WHERE id = ?", (*changes.values(), row_id))  # noqa: S608

    def _rows(self, where: str, args: tuple[Any, ...] = (), limit: int | None = None) -> list[OutboxRow]:
        columns = "id, kind, nonce, tx_hash, raw_tx, total_wh, detail, status, created_at, sent_at, block_number, error"
        sql = f"SELECT {columns} FROM outbox WHERE {where}"  # noqa: S608 - fixed clauses from this module
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [OutboxRow(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], json.loads(r[6] or "{}"), *r[7:]) for r in rows]

    def unresolved(self) -> list[OutboxRow]:
        return self._rows("status IN ('signed', 'sent') ORDER BY nonce, id")

    def auto_rows(self) -> list[OutboxRow]:
        """The automatic purchases' buy and approve rows, oldest first (autobuy.py sums them)."""
        return self._rows("kind IN ('buy', 'approve') AND json_extract(detail, '$.auto') = 1 ORDER BY id")

    def last_transaction(self, kind: str) -> OutboxRow | None:
        rows = self._rows("kind = ? ORDER BY id DESC", (kind,), limit=1)
        return rows[0] if rows else None

    def recent(self, limit: int) -> list[OutboxRow]:
        return self._rows("1 ORDER BY id DESC", limit=limit)

    def transactions(self) -> list[OutboxRow]:
        return self._rows("1 ORDER BY id")

    def next_local_nonce(self) -> int | None:
        """One past the highest nonce still waiting in the outbox, or None when nothing waits."""
        highest = self._one("SELECT MAX(nonce) FROM outbox WHERE status IN ('signed', 'sent')")
        return None if highest is None else int(highest) + 1

    # -- cached facts about the chain, for the UI after a restart ----------------------------------------
    def put(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def get(self, key: str, default: Any = None) -> Any:
        value = self._one("SELECT value FROM kv WHERE key = ?", key)
        return default if value is None else json.loads(value)
