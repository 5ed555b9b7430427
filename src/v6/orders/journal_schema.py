"""The journal file's schema: its tables, its version, and the one migration (1 -> 2).

Version 2 (``PRAGMA user_version``):

- ``fills``: one row per ACKNOWLEDGED execution id (its ``on_fill`` handlers returned), with its
  correction stem and suffix, the execution time (UTC epoch seconds) and whether its commission
  report was delivered too;
- ``handed_out``: execution ids handed to ``on_fill`` whose handlers had not returned yet. A row
  left here by a process that died is a fill delivered again after the restart, and counted so;
- ``order_ids``: the highest order id ever sent per (host, port, client id);
- ``orders``: orders sent and not known to be done, per (host, port, client id, order id), with
  their orderRef, permId and whether the gateway acknowledged them (0: UNKNOWN). A client id
  with rows here is pinned (no rotation away from it after a restart).

Version 1 had ``pending_orders`` (keyed by orderRef, which an application may repeat) in place
of ``orders``; opening a version-1 file migrates it in one transaction.
"""

from __future__ import annotations

import sqlite3

from v6.errors import JournalCorrupt, JournalTooNew

SCHEMA_VERSION = 2
TABLES = frozenset({"fills", "handed_out", "order_ids", "orders"})
_V1_TABLES = frozenset({"fills", "order_ids", "pending_orders"})
_FILLS = """
CREATE TABLE fills (
    exec_id TEXT PRIMARY KEY,
    stem TEXT NOT NULL,
    suffix INTEGER NOT NULL,
    exec_time REAL NOT NULL,
    commission_delivered INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID"""
_ORDER_IDS = """
CREATE TABLE order_ids (
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    client_id INTEGER NOT NULL,
    highest INTEGER NOT NULL,
    PRIMARY KEY (host, port, client_id)
) WITHOUT ROWID"""
_HANDED_OUT = """
CREATE TABLE handed_out (
    exec_id TEXT PRIMARY KEY,
    exec_time REAL NOT NULL
) WITHOUT ROWID"""
_ORDERS = """
CREATE TABLE orders (
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    client_id INTEGER NOT NULL,
    order_id INTEGER NOT NULL,
    order_ref TEXT NOT NULL,
    perm_id INTEGER NOT NULL DEFAULT 0,
    sent_at REAL NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (host, port, client_id, order_id)
) WITHOUT ROWID"""
_MIGRATE_1_TO_2 = (
    _HANDED_OUT,
    _ORDERS,
    "INSERT OR IGNORE INTO orders (host, port, client_id, order_id, order_ref, sent_at) "
    "SELECT host, port, client_id, order_id, order_ref, sent_at FROM pending_orders",
    "DROP TABLE pending_orders",
)


def prepare(db: sqlite3.Connection, path: str) -> None:
    """Create a new file's tables, migrate a version-1 file, or refuse what is not a v6
    journal this version can read (never a silent reset)."""
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            str(row[0])
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.DatabaseError as exc:
        raise JournalCorrupt(f"journal {path} is not a readable SQLite file") from exc
    if version > SCHEMA_VERSION:
        raise JournalTooNew(path, version, SCHEMA_VERSION)
    if version == 0 and not tables:
        _run(db, (_FILLS, _ORDER_IDS, _HANDED_OUT, _ORDERS))
    elif version == 1 and tables >= _V1_TABLES:
        _run(db, _MIGRATE_1_TO_2)
    elif version != SCHEMA_VERSION or not tables >= TABLES:
        raise JournalCorrupt(
            f"{path} is not a v6 journal (schema version {version}, tables {sorted(tables)})"
        )
    _check_integrity(db, path)


def _run(db: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in statements:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _check_integrity(db: sqlite3.Connection, path: str) -> None:
    try:
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise JournalCorrupt(f"journal {path} is damaged: {exc}") from exc
    if verdict != "ok":
        raise JournalCorrupt(f"journal {path} is damaged: {verdict}")
