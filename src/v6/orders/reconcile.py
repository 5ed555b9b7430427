"""Reconciliation after a (re)connect, as one pure function of plain data.

Inputs: the orders the application placed (``PlacedOrder``), what the gateway reported
(``GatewayReport``: open orders, completed orders, executions, commission reports, and which
lists were closed by their end marker) and a read-only view of what was already delivered.

Output (``Reconciliation``): fills to deliver (recovered; NEW or CORRECTION, lower suffix of a
stem first), commission reports now deliverable, which placed order each gateway order or
execution is, statuses to apply, UNKNOWN orders proven absent, and acknowledged orders the
gateway no longer knows.

Matching, first that applies: permId (both non-zero); orderRef (unique on both sides); (client id,
order id) when the order was placed in the SAME API session as the report (ids are per session:
a restarted gateway may hand the same id out again), or in any session when the orderRef agrees
too (an application may give several orders one orderRef: a ref alone never decides then).
Placed orders are named by :attr:`PlacedOrder.ident` (its ``key``, else its orderRef), unique
even when orderRefs are not.

Unknown is not empty: if any list lacks its end marker the result is ``complete=False`` with the
missing lists named and NOTHING decided; the caller retries. Only a complete sync can prove an
UNKNOWN order absent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from v6.orders.ledger import DeliveryView, FillVerdict, classify_execution, split_exec_id


@dataclass(frozen=True)
class PlacedOrder:
    """An order the application placed, as the manager knows it."""

    order_ref: str
    client_id: int
    order_id: int
    session: int  # the API session (connection count) in which order_id was assigned
    perm_id: int = 0  # 0 until TWS acknowledged it
    status: str = "PendingSubmit"
    unacknowledged: bool = False  # written to the socket, never acknowledged: UNKNOWN
    key: str = ""  # unique per placed order (orderRefs need not be); "" = the orderRef

    @property
    def ident(self) -> str:
        return self.key or self.order_ref


@dataclass(frozen=True)
class ReportedOrder:
    """One openOrder (+ its orderStatus) or completedOrder from the gateway."""

    perm_id: int
    client_id: int
    order_id: int
    order_ref: str
    status: str
    filled: float = 0.0
    remaining: float = 0.0


class ReportedExecution(NamedTuple):  # one per execution: cheaper to build than a dataclass
    exec_id: str
    perm_id: int
    client_id: int
    order_id: int
    order_ref: str
    time: float  # UTC epoch seconds


@dataclass(frozen=True)
class GatewayReport:
    session: int
    open_orders: Sequence[ReportedOrder] = ()
    completed_orders: Sequence[ReportedOrder] = ()
    executions: Sequence[ReportedExecution] = ()
    commission_exec_ids: Sequence[str] = ()
    open_orders_complete: bool = True  # openOrderEnd seen
    completed_orders_complete: bool = True  # completedOrdersEnd seen
    executions_complete: bool = True  # execDetailsEnd seen

    def missing(self) -> tuple[str, ...]:
        flags = {
            "open orders": self.open_orders_complete,
            "completed orders": self.completed_orders_complete,
            "executions": self.executions_complete,
        }
        return tuple(name for name, done in flags.items() if not done)


class RecoveredFill(NamedTuple):
    execution: ReportedExecution
    verdict: FillVerdict
    placed: str | None  # the ident of the placed order it belongs to, None if not one


@dataclass(frozen=True)
class StatusUpdate:
    placed: str  # the placed order's ident
    status: str
    perm_id: int
    filled: float
    remaining: float


@dataclass(frozen=True)
class Reconciliation:
    complete: bool
    missing: tuple[str, ...] = ()
    fills: tuple[RecoveredFill, ...] = ()
    commissions: tuple[str, ...] = ()  # exec ids whose report is now deliverable
    found: dict[str, str] = field(default_factory=dict)  # ident -> "perm_id" | "order_ref" | …
    statuses: tuple[StatusUpdate, ...] = ()
    absent: tuple[str, ...] = ()  # idents of UNKNOWN orders proven never to have arrived
    vanished: tuple[str, ...] = ()  # idents of acknowledged orders the gateway reports nowhere


class _Matcher:
    """Finds the placed order a reported order or execution belongs to."""

    def __init__(self, placed: Iterable[PlacedOrder], report: GatewayReport) -> None:
        self._session = report.session
        self._by_perm = {p.perm_id: p for p in placed if p.perm_id}
        placed_refs = Counter(p.order_ref for p in placed if p.order_ref)
        reported_refs = Counter(
            o.order_ref
            for o in (*report.open_orders, *report.completed_orders)
            if o.order_ref
        )
        self._by_ref = {
            p.order_ref: p
            for p in placed
            if placed_refs[p.order_ref] == 1 and reported_refs[p.order_ref] <= 1
        }
        self._by_id = {(p.client_id, p.order_id): p for p in placed if p.session == report.session}
        self._by_id_and_ref = {(p.client_id, p.order_id, p.order_ref): p for p in placed}

    def match(
        self, perm_id: int, order_ref: str, client_id: int, order_id: int
    ) -> tuple[PlacedOrder, str] | None:
        if perm_id and perm_id in self._by_perm:
            return self._by_perm[perm_id], "perm_id"
        if order_ref and order_ref in self._by_ref:
            return self._by_ref[order_ref], "order_ref"
        placed = self._by_id.get((client_id, order_id))
        if placed is None and order_id > 0:
            placed = self._by_id_and_ref.get((client_id, order_id, order_ref))
        return (placed, "order_id") if placed is not None else None


class _BatchView:
    """The delivered view plus the deliveries decided earlier in this batch."""

    def __init__(self, view: DeliveryView) -> None:
        self._view = view
        self._batch: dict[str, tuple[int, str]] = {}  # stem -> (suffix, exec_id)
        self._ids: set[str] = set()

    def is_delivered(self, exec_id: str) -> bool:
        return exec_id in self._ids or self._view.is_delivered(exec_id)

    def latest_version(self, stem: str) -> tuple[int, str] | None:
        return self._batch.get(stem) or self._view.latest_version(stem)

    def is_commission_delivered(self, exec_id: str) -> bool:
        return self._view.is_commission_delivered(exec_id)

    def add(self, verdict: FillVerdict) -> None:
        self._ids.add(verdict.exec_id)
        self._batch[verdict.stem] = (verdict.suffix, verdict.exec_id)


def reconcile(
    placed: Sequence[PlacedOrder], report: GatewayReport, delivered: DeliveryView
) -> Reconciliation:
    """Decide what a complete sync means for the application (see the module docstring)."""
    missing = report.missing()
    if missing:
        return Reconciliation(complete=False, missing=missing)
    if not (placed or report.executions or report.open_orders or report.completed_orders):
        return Reconciliation(complete=True)  # the usual connect of an app without orders
    matcher = _Matcher(placed, report)
    found: dict[str, str] = {}
    statuses = _statuses(report, matcher, found)
    fills, batch = _fills(report.executions, matcher, found, delivered)
    commissions = tuple(
        exec_id
        for exec_id in dict.fromkeys(report.commission_exec_ids)
        if batch.is_delivered(exec_id) and not delivered.is_commission_delivered(exec_id)
    )
    absent = tuple(p.ident for p in placed if p.unacknowledged and p.ident not in found)
    vanished = tuple(p.ident for p in placed if not p.unacknowledged and p.ident not in found)
    return Reconciliation(
        complete=True,
        fills=fills,
        commissions=commissions,
        found=found,
        statuses=statuses,
        absent=absent,
        vanished=vanished,
    )


def _statuses(
    report: GatewayReport, matcher: _Matcher, found: dict[str, str]
) -> tuple[StatusUpdate, ...]:
    # Completed after open: an order in both lists (it finished during the sync) ends completed.
    latest: dict[str, tuple[PlacedOrder, ReportedOrder]] = {}
    for reported in (*report.open_orders, *report.completed_orders):
        hit = matcher.match(
            reported.perm_id, reported.order_ref, reported.client_id, reported.order_id
        )
        if hit is not None:
            placed, how = hit
            found.setdefault(placed.ident, how)
            latest[placed.ident] = (placed, reported)
    return tuple(
        StatusUpdate(placed.ident, r.status, r.perm_id, r.filled, r.remaining)
        for placed, r in latest.values()
        if r.status != placed.status or r.perm_id != placed.perm_id or placed.unacknowledged
    )


def _fills(
    executions: Sequence[ReportedExecution],
    matcher: _Matcher,
    found: dict[str, str],
    delivered: DeliveryView,
) -> tuple[tuple[RecoveredFill, ...], _BatchView]:
    batch = _BatchView(delivered)
    out: list[RecoveredFill] = []
    for execution in _delivery_order(executions):
        hit = matcher.match(
            execution.perm_id, execution.order_ref, execution.client_id, execution.order_id
        )
        ident = None
        if hit is not None:
            ident = hit[0].ident
            found.setdefault(ident, hit[1])
        verdict = classify_execution(execution.exec_id, batch)
        if verdict.kind.delivered:
            batch.add(verdict)
            out.append(RecoveredFill(execution, verdict, ident))
    return tuple(out), batch


def _delivery_order(executions: Sequence[ReportedExecution]) -> list[ReportedExecution]:
    """One per exec id; stems in time order, and within a stem the lower suffix first, so a
    missed original precedes its correction."""
    unique = {e.exec_id: e for e in executions}
    split = {exec_id: split_exec_id(exec_id) for exec_id in unique}
    first_time: dict[str, float] = {}
    for e in unique.values():
        stem = split[e.exec_id][0]
        first_time[stem] = min(e.time, first_time.get(stem, e.time))

    def key(e: ReportedExecution) -> tuple[float, str, int]:
        stem, suffix = split[e.exec_id]
        return first_time[stem], stem, suffix

    return sorted(unique.values(), key=key)
