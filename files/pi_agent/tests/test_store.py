from __future__ import annotations

import sqlite3
import stat

from heliogrid_agent.store import Store


def test_database_uses_wal_and_full_synchronous_commits(tmp_path):
    store = Store(tmp_path / "agent.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_database_file_is_private(tmp_path):
    Store(tmp_path / "agent.db")
    assert stat.S_IMODE((tmp_path / "agent.db").stat().st_mode) == 0o600


def test_counter_and_daily_totals_survive_reopening(tmp_path):
    store = Store(tmp_path / "agent.db")
    store.record_sample(1_500_000, 1_500_000, "2025-06-01", 1.0)
    store.record_sample(2_000_000, 500_000, "2025-06-02", 2.0)
    store.close()  # nothing flushed explicitly: every commit is already durable
    again = Store(tmp_path / "agent.db")
    assert again.total_uwh() == 2_000_000
    assert again.day_uwh("2025-06-01") == 1_500_000
    assert again.day_uwh("2025-06-02") == 500_000
    assert again.day_uwh("2025-06-03") == 0


def test_committed_sample_is_visible_to_another_connection_at_once(tmp_path):
    store = Store(tmp_path / "agent.db")
    store.record_sample(42, 42, "2025-06-01", 1.0)
    other = sqlite3.connect(tmp_path / "agent.db")
    assert other.execute("SELECT total_uwh FROM meter_state").fetchone()[0] == 42


def test_counter_is_only_ever_raised(tmp_path):
    store = Store(tmp_path / "agent.db")
    store.record_sample(5000, 5000, "d", 1.0)
    assert not store.raise_total(4000)
    assert store.total_uwh() == 5000
    assert store.raise_total(6000)
    assert store.total_uwh() == 6000


def test_outbox_keeps_the_signed_bytes_and_nonce(tmp_path):
    store = Store(tmp_path / "agent.db")
    row_id = store.add_transaction("report", 7, "0xabc", b"\x01\x02", 10.0, total_wh=2000)
    assert store.next_local_nonce() == 8
    (row,) = store.unresolved()
    assert (row.id, row.nonce, row.raw_tx, row.total_wh, row.status) == (row_id, 7, b"\x01\x02", 2000, "signed")
    store.update_transaction(row_id, status="mined", block_number=3)
    assert store.unresolved() == []
    assert store.next_local_nonce() is None
    assert store.recent(5)[0].status == "mined"


def test_pause_state_persists(tmp_path):
    store = Store(tmp_path / "agent.db")
    store.set_selling_paused(True)
    assert Store(tmp_path / "agent.db").selling_paused()


def test_import_counter_and_meter_baseline_are_committed_with_the_export_counter(tmp_path):
    from heliogrid_agent.meter import Baseline

    store = Store(tmp_path / "agent.db")
    assert store.imported_uwh() == 0
    assert store.register_baseline() is None
    base = Baseline(export_uwh=7_000_000, import_uwh=3_000_000, at=12.5)
    store.record_sample(1_000, 1_000, "2025-06-01", 12.5, imported_uwh=4_000, import_delta_uwh=4_000, baseline=base)
    store.record_sample(1_000, 0, "2025-06-01", 13.0, imported_uwh=6_000, import_delta_uwh=2_000)
    store.close()
    again = Store(tmp_path / "agent.db")
    assert again.imported_uwh() == 6_000
    assert again.day_imported_uwh("2025-06-01") == 6_000
    assert again.register_baseline() == base
