"""The fill journal: what must survive a process restart, in one small SQLite file (stdlib sqlite3).

Tables and their one migration: :mod:`v6.orders.journal_schema`. One owner: an exclusive lock on
``<path>.lock`` taken when the file opens (:mod:`v6.orders.journal_lock`).

Delivery is two steps: :meth:`Journal.hand_out` before a fill's ``on_fill`` handlers run (a
``handed_out`` row), :meth:`Journal.acknowledge` after they returned (a ``fills`` row). A process
that dies in between leaves a ``handed_out`` row with no ``fills`` row: the fill is delivered
again after the restart (at least once) and :meth:`Journal.hand_out` says it is a redelivery.
(An acknowledgement writes only its ``fills`` row; the ``handed_out`` rows it settles are
deleted in one statement when the journal opens.)

Reads come from an in-memory copy loaded at open; within the process that copy is the truth
(a handed-out fill is never handed out twice). Writes go through one queue: each write is
attempted at once (one transaction, or one per :meth:`batch`); a write that fails (disk full, a
read-only file, an I/O error) stays queued, in order, and is retried before the next write and by
:meth:`retry`; meanwhile :attr:`Journal.failure` says why (the tracker logs it as an ERROR and
health reports it), and nothing in memory is lost. Only :meth:`record_order_sent` raises
(:class:`~v6.errors.JournalWriteFailed`): an order the journal cannot record is not sent.

``synchronous=NORMAL`` in WAL mode, chosen: a COMMIT appends to the WAL without an fsync, so a
process crash loses nothing and a power loss may lose the last transactions (never corrupt the
file). What a lost transaction can cost is bounded by the acknowledge-after-handler rule: a lost
``fills`` row means that fill is delivered again (at least once), never lost, since the fills
themselves come from TWS's ``reqExecutions``. ``FULL`` would add an fsync per fill and per order
for no stronger promise. ``Journal(None)`` keeps the same tables in memory: exactly once for the
life of the process, no lock.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from v6.connection.lifecycle import Endpoint
from v6.errors import JournalCorrupt, JournalWriteFailed
from v6.orders.journal_lock import DEFAULT_JOURNAL_LOCK_TIMEOUT, JournalLock
from v6.orders.journal_schema import SCHEMA_VERSION, prepare
from v6.orders.ledger import split_exec_id

__all__ = ["SCHEMA_VERSION", "Endpoint", "Journal", "JournalOrder", "PendingOrder"]

Statement = tuple[str, tuple[Any, ...]]
_ACKNOWLEDGE = (
    "INSERT OR IGNORE INTO fills (exec_id, stem, suffix, exec_time, commission_delivered) "
    "VALUES (?, ?, ?, ?, ?)"
)
_SETTLED = "DELETE FROM handed_out WHERE exec_id IN (SELECT exec_id FROM fills)"


def _grouped(queue: list[Statement]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The queue as few ``executemany`` calls as order allows: a statement joins the last
    group of the same SQL unless a later group touches the same table (statements on different
    tables commute; on one table their order is kept). An acknowledgement's INSERT into
    ``fills`` and its fill's INSERT into ``handed_out`` thus go as two calls for a batch."""
    groups: list[tuple[str, str, list[tuple[Any, ...]]]] = []
    for sql, params in queue:
        if groups and groups[-1][0] == sql:
            groups[-1][2].append(params)
            continue
        table = _table(sql)
        for sql_, table_, rows in reversed(groups):
            if sql_ == sql:
                rows.append(params)
                break
            if table_ == table:
                groups.append((sql, table, [params]))
                break
        else:
            groups.append((sql, table, [params]))
    return [(sql, rows) for sql, _, rows in groups]


@functools.cache
def _table(sql: str) -> str:
    words = sql.split()
    for keyword in ("INTO", "FROM", "UPDATE"):
        if keyword in words:
            return words[words.index(keyword) + 1]
    return sql


@dataclass(frozen=True)
class JournalOrder:
    """An order sent and not known to be done (``acknowledged`` False: UNKNOWN)."""

    order_ref: str
    endpoint: Endpoint
    order_id: int
    sent_at: float
    acknowledged: bool = False
    perm_id: int = 0


PendingOrder = JournalOrder  # the name of earlier versions (pending = not acknowledged)


class Journal:
    """Restart-safe bookkeeping of delivered fills and sent orders (see the module docstring).

    ``path=None`` keeps everything in memory. ``lock_timeout``: how long opening waits for
    another owner to let go. Not thread-safe: use it from the event loop's thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        lock_timeout: float = DEFAULT_JOURNAL_LOCK_TIMEOUT,
    ) -> None:
        self.path = ":memory:" if path is None else os.fspath(path)
        self.lock_timeout = lock_timeout
        self._lock = None if path is None else JournalLock(self.path)
        self.closed = True
        #: Why the last write failed (None: every write is on disk). Retried; see the docstring.
        self.failure: str | None = None
        self.write_failures = 0  # failed write attempts, ever
        self._queue: list[Statement] = []  # writes not on disk yet (kept across reopen)
        self._batching = False
        self.reopen()

    def reopen(self) -> None:
        """Open (again, after :meth:`close`) the same file and take its lock."""
        if not self.closed:
            return
        if self._lock is not None:
            self._lock.acquire(self.lock_timeout)
        try:
            self._connect()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self.closed = False

    def _connect(self) -> None:
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalCorrupt(f"cannot open journal {self.path}: {exc}") from exc
        try:
            prepare(self._db, self.path)
            self._queue.append((_SETTLED, ()))  # handed-out rows acknowledged since
            self._write_queue()  # with what a failing file could not take before close()
            self._load_cache()
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            if self.path != ":memory:":
                # A connection's first write creates the -wal and -shm files (~0.5 ms): done
                # here, not when the first recovered fills are waiting to be handed out.
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._db.close()
            raise

    def _load_cache(self) -> None:
        """What was acknowledged, handed out and sent, in memory: reads never touch the file."""
        self._orders = {
            (Endpoint(str(h), int(p), int(c)), int(o)): JournalOrder(
                str(ref), Endpoint(str(h), int(p), int(c)), int(o), float(at), bool(ack), int(pm)
            )
            for h, p, c, o, ref, pm, at, ack in self._db.execute(
                "SELECT host, port, client_id, order_id, order_ref, perm_id, sent_at, "
                "acknowledged FROM orders"
            )
        }
        self._highest = {
            Endpoint(str(host), int(port), int(cid)): int(highest)
            for host, port, cid, highest in self._db.execute(
                "SELECT host, port, client_id, highest FROM order_ids"
            )
        }
        self._delivered: set[str] = set()  # acknowledged, or handed out by this process
        self._latest: dict[str, tuple[int, str]] = {}
        self._commissions: set[str] = set()
        self._in_flight: dict[str, tuple[str, str, int, float]] = {}  # handed out, not acked
        self._newest = 0.0
        for exec_id, stem, suffix, exec_time, commission in self._db.execute(
            "SELECT exec_id, stem, suffix, exec_time, commission_delivered FROM fills"
        ):
            self._remember(str(exec_id), str(stem), int(suffix), float(exec_time))
            if commission:
                self._commissions.add(str(exec_id))
        #: Handed out by an earlier process whose handlers never returned: redeliveries.
        self.unacknowledged = {str(row[0]) for row in self._db.execute(
            "SELECT exec_id FROM handed_out EXCEPT SELECT exec_id FROM fills")}  # fmt: skip

    def _remember(self, exec_id: str, stem: str, suffix: int, exec_time: float) -> None:
        self._delivered.add(exec_id)
        self._newest = max(self._newest, exec_time)
        latest = self._latest.get(stem)
        if latest is None or suffix > latest[0]:
            self._latest[stem] = (suffix, exec_id)

    # ------------------------------------------------------------------- writing

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes inside are attempted together when the block ends, in one transaction.
        Reads inside the block already see them (memory is updated at once)."""
        if self._batching:
            yield
            return
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self._flush()

    def _write(self, *statements: Statement) -> None:
        self._queue.extend(statements)
        if not self._batching:
            self._flush()

    def _flush(self) -> bool:
        """Attempt every queued write in one transaction; True if the queue is empty."""
        if self.closed:
            return not self._queue
        return self._write_queue()

    def _write_queue(self) -> bool:
        if not self._queue:
            return True
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in _grouped(self._queue):
                    self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self.write_failures += 1
            self.failure = f"{type(exc).__name__}: {exc}"
            return False
        self._queue.clear()
        self.failure = None
        return True

    def retry(self) -> bool:
        """Write what failed to be written; True if nothing is left to write."""
        return self._flush()

    @property
    def unwritten(self) -> int:
        """Writes waiting for a retry (0 while the file is healthy)."""
        return len(self._queue)

    # ------------------------------------------------------------------- fills

    def is_delivered(self, exec_id: str) -> bool:
        """Acknowledged, or handed out by this process (so never handed out twice here)."""
        return exec_id in self._delivered

    def latest_version(self, stem: str) -> tuple[int, str] | None:
        """The highest delivered (suffix, exec_id) of a correction stem, or None."""
        return self._latest.get(stem)

    def hand_out(self, exec_id: str, stem: str, suffix: int, exec_time: float) -> bool:
        """The fill is about to be handed to its handlers; True if an earlier process had
        handed it out and never acknowledged it (a redelivery)."""
        if exec_id in self._delivered:
            return False
        self._remember(exec_id, stem, suffix, exec_time)
        self._in_flight[exec_id] = (exec_id, stem, suffix, exec_time)
        if self.path != ":memory:":  # (a redelivery needs a process that outlives this one)
            self._write(("INSERT OR REPLACE INTO handed_out (exec_id, exec_time) VALUES (?, ?)",
                         (exec_id, exec_time)))  # fmt: skip
        return exec_id in self.unacknowledged

    def acknowledge(self, exec_id: str) -> None:
        """Its handlers returned: the fill is never delivered again, even after a restart."""
        row = self._in_flight.pop(exec_id, None)
        if row is None:
            return
        self.unacknowledged.discard(exec_id)
        self._write((_ACKNOWLEDGE, (*row, int(exec_id in self._commissions))))

    def record_delivery(
        self, exec_id: str, stem: str, suffix: int, exec_time: float, *, commission: bool = False
    ) -> None:
        """Hand out and acknowledge in one step (one ``fills`` row; a repeat is a no-op)."""
        if exec_id in self._delivered:
            return
        self._remember(exec_id, stem, suffix, exec_time)
        if commission:
            self._commissions.add(exec_id)
        self._write((_ACKNOWLEDGE, (exec_id, stem, suffix, exec_time, int(commission))))

    def is_commission_delivered(self, exec_id: str) -> bool:
        return exec_id in self._commissions

    def record_commission(self, exec_id: str) -> None:
        """Mark the commission report of a delivered execution delivered (written with the
        fill's acknowledgement if that is still to come)."""
        if exec_id not in self._delivered or exec_id in self._commissions:
            return
        self._commissions.add(exec_id)
        if exec_id not in self._in_flight:
            self._write(("UPDATE fills SET commission_delivered = 1 WHERE exec_id = ?",
                         (exec_id,)))  # fmt: skip

    def last_execution_time(self) -> float | None:
        """The latest execution time among delivered fills (UTC epoch seconds), or None."""
        return self._newest or None

    def delivered_count(self) -> int:
        return len(self._delivered)

    def prune(self, before: float) -> int:
        """Forget acknowledged fills executed before ``before`` (epoch s); TWS reports
        executions of at most the last seven days, so rows older than that can never come
        back. Returns the fills forgotten."""
        gone = self._db.execute(
            "SELECT exec_id, stem FROM fills WHERE exec_time < ?", (before,)
        ).fetchall()
        if not gone:
            return 0
        self._write(("DELETE FROM fills WHERE exec_time < ?", (before,)),
                    ("DELETE FROM handed_out WHERE exec_time < ?", (before,)))  # fmt: skip
        stems: set[str] = set()
        for exec_id, stem in gone:
            self._delivered.discard(exec_id)
            self._commissions.discard(exec_id)
            if self._latest.get(stem, (0, ""))[1] == exec_id:
                del self._latest[stem]
                stems.add(stem)
        if stems:  # a stem's latest version is gone: an older one may remain
            for exec_id in self._delivered:
                stem, suffix = split_exec_id(exec_id)
                latest = self._latest.get(stem)
                if stem in stems and (latest is None or suffix > latest[0]):
                    self._latest[stem] = (suffix, exec_id)
        return len(gone)

    # ------------------------------------------------------------------- orders

    def highest_order_id(self, endpoint: Endpoint) -> int | None:
        return self._highest.get(endpoint)

    def record_order_sent(
        self, endpoint: Endpoint, order_id: int, order_ref: str, sent_at: float
    ) -> None:
        """Before the bytes go out: raise the id high-water mark and record the order as sent
        and UNKNOWN. Raises JournalWriteFailed (nothing recorded) if it cannot be written."""
        if order_ref is None:
            raise TypeError("order_ref must be a str")
        self._queue.append((
            "INSERT INTO order_ids (host, port, client_id, highest) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (host, port, client_id) DO UPDATE "
            "SET highest = MAX(highest, excluded.highest)",
            (*endpoint, order_id),
        ))  # fmt: skip
        self._queue.append((
            "INSERT OR REPLACE INTO orders (host, port, client_id, order_id, order_ref, sent_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (*endpoint, order_id, order_ref, sent_at),
        ))  # fmt: skip
        if not self._flush():
            cause = self.failure
            del self._queue[-2:]
            raise JournalWriteFailed(
                f"order {order_ref} (id {order_id}) not sent: journal {self.path} cannot "
                f"record it ({cause})"
            )
        self._orders[(endpoint, order_id)] = JournalOrder(order_ref, endpoint, order_id, sent_at)
        self._highest[endpoint] = max(order_id, self._highest.get(endpoint, order_id))

    def acknowledge_order(self, endpoint: Endpoint, order_id: int, perm_id: int) -> None:
        """The gateway acknowledged the order: no longer UNKNOWN (kept until it is done)."""
        row = self._orders.get((endpoint, order_id))
        if row is None or (row.acknowledged and row.perm_id == perm_id):
            return
        self._orders[(endpoint, order_id)] = JournalOrder(
            row.order_ref, endpoint, order_id, row.sent_at, True, perm_id or row.perm_id
        )
        self._write(("UPDATE orders SET acknowledged = 1, perm_id = ? WHERE host = ? AND "
                     "port = ? AND client_id = ? AND order_id = ?",
                     (perm_id or row.perm_id, *endpoint, order_id)))  # fmt: skip

    def forget_order(self, endpoint: Endpoint, order_id: int) -> None:
        """The order is done (or proven never to have arrived): nothing left to recover."""
        if self._orders.pop((endpoint, order_id), None) is None:
            return
        self._write(("DELETE FROM orders WHERE host = ? AND port = ? AND client_id = ? AND "
                     "order_id = ?", (*endpoint, order_id)))  # fmt: skip

    def find_order(self, endpoint: Endpoint, order_id: int, perm_id: int) -> JournalOrder | None:
        """The row of this order: by (endpoint, order id), else by permId."""
        row = self._orders.get((endpoint, order_id))
        if row is None and perm_id:
            row = next((r for r in self._orders.values() if r.perm_id == perm_id), None)
        return row

    def orders(self) -> list[JournalOrder]:
        """Sent and not known to be done, oldest first."""
        return sorted(self._orders.values(), key=lambda order: order.sent_at)

    def has_orders(self) -> bool:
        return bool(self._orders)

    def pending_orders(self) -> list[JournalOrder]:
        """Sent and never acknowledged (UNKNOWN), oldest first."""
        return [order for order in self.orders() if not order.acknowledged]

    def client_ids_with_orders(self, host: str, port: int) -> set[int]:
        """Client ids of this gateway under which orders are working or UNKNOWN."""
        return {e.client_id for e, _ in self._orders if (e.host, e.port) == (host, port)}

    # ------------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Write what is queued (if it can), close the file and let go of its lock (an
        in-memory journal stays open: closing would forget it)."""
        if self.path == ":memory:" or self.closed:
            return
        self._flush()
        self._db.close()
        self.closed = True
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
