"""Journal: persistence across reopen, schema version, corrupt files, pending orders, order ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from v6.errors import JournalCorrupt, JournalError, JournalTooNew, JournalWriteFailed
from v6.orders.journal import SCHEMA_VERSION, Endpoint, Journal

EP = Endpoint("127.0.0.1", 4002, 7)


def test_deliveries_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        journal.record_delivery("a.01", "a", 1, 100.0)
        journal.record_delivery("b.01", "b", 1, 250.0)
        journal.record_commission("a.01")
    with Journal(path) as journal:
        assert journal.is_delivered("a.01")
        assert not journal.is_delivered("a.02")
        assert journal.latest_version("a") == (1, "a.01")
        assert journal.is_commission_delivered("a.01")
        assert not journal.is_commission_delivered("b.01")
        assert journal.last_execution_time() == 250.0
        assert journal.delivered_count() == 2


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()


def test_memory_journal_is_empty_per_instance() -> None:
    with Journal(None) as first:
        first.record_delivery("x.01", "x", 1, 1.0)
        assert first.is_delivered("x.01")
    with Journal(None) as second:
        assert not second.is_delivered("x.01")
        assert second.last_execution_time() is None


def test_repeat_delivery_is_a_no_op() -> None:
    with Journal(None) as journal:
        journal.record_delivery("x.01", "x", 1, 1.0)
        journal.record_delivery("x.01", "x", 1, 5.0)
        assert journal.delivered_count() == 1
        assert journal.last_execution_time() == 1.0


def test_newer_schema_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalTooNew, match=f"schema version {SCHEMA_VERSION + 1}") as caught:
        Journal(path)
    assert isinstance(caught.value, ValueError)
    db = sqlite3.connect(path)
    try:  # never reset: the table is still there
        assert db.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 0
    finally:
        db.close()


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all, just text" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
)
def test_corrupt_file_is_a_clear_error_and_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(content)
    with pytest.raises(JournalCorrupt):
        Journal(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (x TEXT)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="not a v6 journal"):
        Journal(path)


def test_damaged_pages_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        for n in range(2000):
            journal.record_delivery(f"e{n:05d}.01", f"e{n:05d}", 1, float(n))
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : 3 * page] = b"\x5a" * page  # scribble over one b-tree page
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        Journal(path)


def test_order_ids_keep_the_highest_per_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    other = Endpoint("127.0.0.1", 4002, 8)
    with Journal(path) as journal:
        assert journal.highest_order_id(EP) is None
        journal.record_order_sent(EP, 10, "v6-a-1", 1.0)
        journal.record_order_sent(EP, 7, "v6-a-2", 2.0)  # never lowers the mark
        journal.record_order_sent(other, 3, "v6-a-3", 3.0)
    with Journal(path) as journal:
        assert journal.highest_order_id(EP) == 10
        assert journal.highest_order_id(other) == 3
        assert [p.order_ref for p in journal.pending_orders()] == ["v6-a-1", "v6-a-2", "v6-a-3"]
        journal.forget_order(EP, 7)
        pending = journal.pending_orders()
        assert [(p.order_ref, p.order_id, p.endpoint) for p in pending] == [
            ("v6-a-1", 10, EP),
            ("v6-a-3", 3, other),
        ]


def test_prune_forgets_old_fills_only() -> None:
    with Journal(None) as journal:
        journal.record_delivery("old.01", "old", 1, 10.0)
        journal.record_delivery("new.01", "new", 1, 20.0)
        assert journal.prune(before=15.0) == 1
        assert not journal.is_delivered("old.01")
        assert journal.is_delivered("new.01")


def test_an_order_that_cannot_be_recorded_records_nothing(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        journal._db.execute("PRAGMA query_only = ON")  # a read-only file, as sqlite sees it
        with pytest.raises(JournalWriteFailed, match="readonly"):
            journal.record_order_sent(EP, 1, "v6-a-1", 1.0)
        assert journal.highest_order_id(EP) is None  # neither half
        assert journal.orders() == []
        assert journal.unwritten == 0


def test_batch_writes_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal, journal.batch():
        journal.record_delivery("a.01", "a", 1, 1.0, commission=True)
        journal.record_delivery("b.01", "b", 1, 2.0)
        journal.record_commission("b.01")  # recorded in this batch, not written yet
        assert journal.is_delivered("a.01")
        assert journal.delivered_count() == 2  # reads inside the batch see its fills
    with Journal(path) as journal:
        assert journal.is_commission_delivered("a.01")
        assert journal.is_commission_delivered("b.01")
        assert journal.delivered_count() == 2
