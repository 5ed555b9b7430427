"""The fill journal: what must survive a process restart, in one small SQLite file (stdlib sqlite3).

Tables (schema version ``SCHEMA_VERSION`` in ``PRAGMA user_version``):

- ``fills``: one row per delivered execution id, with its correction stem and suffix, the
  execution time (UTC epoch seconds) and whether its commission report was delivered too.
- ``order_ids``: the highest order id ever sent per (host, port, client id), so a restarted
  process never hands out an id at or below one already used, whatever ``nextValidId`` says.
- ``pending_orders``: orderRefs of orders written to the socket but not yet acknowledged (UNKNOWN
  until reconciliation finds them or proves them absent).

Reads come from an in-memory copy loaded at open (what :mod:`v6.orders.retention` keeps), so a
connect that records nothing runs no SQL, and ``fills`` has no secondary index to keep up on every
write (only :meth:`prune` scans it; files made with the ``fills_stem`` / ``fills_time`` indexes of
earlier v6 versions keep them, harmlessly). WAL mode with ``synchronous=NORMAL``: one transaction
per recorded fill (or per :meth:`batch`, whose fills are written with one ``executemany`` in one
transaction when it ends), durable against a process crash (a power loss may lose the last
transactions, never corrupt the file). A journal written by a newer v6, or a file sqlite cannot
read, raises at construction: never a silent reset.
``Journal(None)`` keeps the same tables in memory: exactly once for the life of the process.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from v6.connection.lifecycle import Endpoint
from v6.errors import JournalCorrupt, JournalTooNew

SCHEMA_VERSION = 1
_TABLES = frozenset({"fills", "order_ids", "pending_orders"})
_SCHEMA = """
CREATE TABLE fills (
    exec_id TEXT PRIMARY KEY,
    stem TEXT NOT NULL,
    suffix INTEGER NOT NULL,
    exec_time REAL NOT NULL,
    commission_delivered INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE order_ids (
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    client_id INTEGER NOT NULL,
    highest INTEGER NOT NULL,
    PRIMARY KEY (host, port, client_id)
) WITHOUT ROWID;
CREATE TABLE pending_orders (
    order_ref TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    client_id INTEGER NOT NULL,
    order_id INTEGER NOT NULL,
    sent_at REAL NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class PendingOrder:
    """An order written to the socket whose acknowledgement was never seen."""

    order_ref: str
    endpoint: Endpoint
    order_id: int
    sent_at: float


class Journal:
    """Restart-safe bookkeeping of delivered fills and sent order ids (see the module docstring).

    ``path=None`` keeps everything in memory. Not thread-safe: use it from the event loop's thread.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = ":memory:" if path is None else os.fspath(path)
        self.closed = True
        self.reopen()

    def reopen(self) -> None:
        """Open (again, after :meth:`close`) the same file; in-memory journals never close."""
        if not self.closed:
            return
        self._unwritten: dict[str, tuple[str, str, int, float, int]] = {}  # inside batch()
        self._batching = False
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalCorrupt(f"cannot open journal {self.path}: {exc}") from exc
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise
        self.closed = False

    def _open(self) -> None:
        try:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise JournalCorrupt(f"journal {self.path} is not a readable SQLite file") from exc
        if version > SCHEMA_VERSION:
            raise JournalTooNew(self.path, version, SCHEMA_VERSION)
        if version == 0 and not tables:
            self._create()
        elif version != SCHEMA_VERSION or not tables >= _TABLES:
            raise JournalCorrupt(
                f"{self.path} is not a v6 journal "
                f"(schema version {version}, tables {sorted(tables)})"
            )
        self._check_integrity()
        self._load_cache()
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        if self.path != ":memory:":
            # A connection's first write creates the -wal and -shm files (~0.5 ms): done here,
            # not when the first recovered fills are waiting to be handed out.
            with self._transaction():
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _create(self) -> None:
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_integrity(self) -> None:
        try:
            verdict = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise JournalCorrupt(f"journal {self.path} is damaged: {exc}") from exc
        if verdict != "ok":
            raise JournalCorrupt(f"journal {self.path} is damaged: {verdict}")

    def _load_cache(self) -> None:
        """What was delivered, in memory: reads never touch the file (one day's executions)."""
        self._unwritten.clear()
        self._pending = {
            str(ref): PendingOrder(str(ref), Endpoint(str(host), int(port), int(cid)), int(oid),
                                   float(at))
            for ref, host, port, cid, oid, at in self._db.execute(
                "SELECT order_ref, host, port, client_id, order_id, sent_at FROM pending_orders"
            )
        }  # fmt: skip
        self._highest = {
            Endpoint(str(host), int(port), int(cid)): int(highest)
            for host, port, cid, highest in self._db.execute(
                "SELECT host, port, client_id, highest FROM order_ids"
            )
        }
        self._delivered: set[str] = set()
        self._latest: dict[str, tuple[int, str]] = {}
        self._commissions: set[str] = set()
        for exec_id, stem, suffix, commission in self._db.execute(
            "SELECT exec_id, stem, suffix, commission_delivered FROM fills"
        ):
            self._remember(str(exec_id), str(stem), int(suffix))
            if commission:
                self._commissions.add(str(exec_id))

    def _remember(self, exec_id: str, stem: str, suffix: int) -> None:
        self._delivered.add(exec_id)
        latest = self._latest.get(stem)
        if latest is None or suffix > latest[0]:
            self._latest[stem] = (suffix, exec_id)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The fills recorded inside are written together when the block ends, in one
        transaction (none if there are none), or not at all if it raises. Reads inside the
        block already see them; other writes inside it are their own transactions."""
        if self._batching:
            yield
            return
        self._batching = True
        try:
            yield
        except BaseException:
            self._unwritten.clear()
            self._load_cache()  # forget what the failed block recorded
            raise
        finally:
            self._batching = False
        if self._unwritten:
            with self._transaction():
                pass  # the commit writes them

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            if not self._batching:  # a batch's fills wait for its end
                self._write_unwritten()
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._load_cache()  # forget what the rolled-back transaction recorded
            raise

    def _write_unwritten(self) -> None:
        if self._unwritten:
            self._db.executemany(
                "INSERT OR IGNORE INTO fills "
                "(exec_id, stem, suffix, exec_time, commission_delivered) VALUES (?, ?, ?, ?, ?)",
                self._unwritten.values(),
            )
            self._unwritten.clear()

    # ------------------------------------------------------------------- fills

    def is_delivered(self, exec_id: str) -> bool:
        return exec_id in self._delivered

    def latest_version(self, stem: str) -> tuple[int, str] | None:
        """The highest delivered (suffix, exec_id) of a correction stem, or None."""
        return self._latest.get(stem)

    def record_delivery(
        self, exec_id: str, stem: str, suffix: int, exec_time: float, *, commission: bool = False
    ) -> None:
        """Mark one execution delivered, with its commission report if ``commission`` (one
        transaction, or part of the :meth:`batch` around it; a repeat is a no-op)."""
        if exec_id in self._delivered:
            return
        self._unwritten[exec_id] = (exec_id, stem, suffix, exec_time, int(commission))
        if not self._batching:  # inside batch(): written when it ends
            with self._transaction():
                pass  # the commit writes it
        self._remember(exec_id, stem, suffix)
        if commission:
            self._commissions.add(exec_id)

    def is_commission_delivered(self, exec_id: str) -> bool:
        return exec_id in self._commissions

    def record_commission(self, exec_id: str) -> None:
        """Mark the commission report of a delivered execution delivered."""
        row = self._unwritten.get(exec_id)
        if row is not None:  # recorded in this batch, not written yet
            self._unwritten[exec_id] = (*row[:4], 1)
            self._commissions.add(exec_id)
            return
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE fills SET commission_delivered = 1 WHERE exec_id = ?", (exec_id,)
            )
            if cursor.rowcount:
                self._commissions.add(exec_id)

    def last_execution_time(self) -> float | None:
        """The latest execution time among delivered fills (UTC epoch seconds), or None."""
        row = self._db.execute("SELECT MAX(exec_time) FROM fills").fetchone()
        times = [float(t) for t in (row[0], *(u[3] for u in self._unwritten.values()))
                 if t is not None]  # fmt: skip
        return max(times, default=None)

    def delivered_count(self) -> int:
        stored = int(self._db.execute("SELECT COUNT(*) FROM fills").fetchone()[0])
        return stored + len(self._unwritten)  # inside batch(): its fills count too

    def prune(self, before: float) -> int:
        """Forget fills executed before ``before`` (epoch s); TWS reports executions of at most
        the last seven days, so rows older than that can never come back. Returns the rows
        removed. The in-memory copy is updated in place (not reloaded: this runs hourly)."""
        gone = self._db.execute(
            "SELECT exec_id, stem FROM fills WHERE exec_time < ?", (before,)
        ).fetchall()
        if not gone:
            return 0
        with self._transaction():
            self._db.execute("DELETE FROM fills WHERE exec_time < ?", (before,))
        stems: set[str] = set()
        for exec_id, stem in gone:
            self._delivered.discard(exec_id)
            self._commissions.discard(exec_id)
            if self._latest.get(stem, (0, ""))[1] == exec_id:
                del self._latest[stem]
                stems.add(stem)
        if stems:  # a stem's latest version is gone: an older one may remain
            marks = ",".join("?" * len(stems))
            for stem, suffix, exec_id in self._db.execute(
                f"SELECT stem, suffix, exec_id FROM fills WHERE stem IN ({marks})", tuple(stems)
            ):
                self._remember(str(exec_id), str(stem), int(suffix))
        return len(gone)

    # ------------------------------------------------------------------- orders

    def highest_order_id(self, endpoint: Endpoint) -> int | None:
        return self._highest.get(endpoint)

    def record_order_sent(
        self, endpoint: Endpoint, order_id: int, order_ref: str, sent_at: float
    ) -> None:
        """Before the bytes go out: raise the id high-water mark and mark the order pending."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO order_ids (host, port, client_id, highest) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (host, port, client_id) DO UPDATE "
                "SET highest = MAX(highest, excluded.highest)",
                (endpoint.host, endpoint.port, endpoint.client_id, order_id),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO pending_orders VALUES (?, ?, ?, ?, ?, ?)",
                (order_ref, endpoint.host, endpoint.port, endpoint.client_id, order_id, sent_at),
            )
            self._pending[order_ref] = PendingOrder(order_ref, endpoint, order_id, sent_at)
            self._highest[endpoint] = max(order_id, self._highest.get(endpoint, order_id))

    def resolve_pending(self, order_ref: str) -> None:
        """The order was acknowledged, or proven absent: it is no longer UNKNOWN."""
        if order_ref not in self._pending:
            return
        with self._transaction():
            self._db.execute("DELETE FROM pending_orders WHERE order_ref = ?", (order_ref,))
            del self._pending[order_ref]

    def pending_orders(self) -> list[PendingOrder]:
        """Oldest first."""
        return sorted(self._pending.values(), key=lambda pending: pending.sent_at)

    # ------------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the file (an in-memory journal stays open: closing would forget it)."""
        if self.path != ":memory:" and not self.closed:
            self._db.close()
            self.closed = True

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
