"""Exactly-once bookkeeping of fills and their commission reports (pure; the store is injected).

An execution id is ``<stem>.<suffix>``: TWS corrects an execution by sending the same stem with a
higher suffix (``…01.01`` -> ``…01.02``). The rules, for an execution id seen by the ledger:

============================================  ===========  =====================================
situation                                     kind         delivered?
============================================  ===========  =====================================
exec id already delivered                     DUPLICATE    no
stem never delivered                          NEW          yes
stem delivered with a lower suffix            CORRECTION   yes, once, naming the replaced id
stem delivered with an equal or higher one    STALE        no (an older version, or "01"=="1")
============================================  ===========  =====================================

A commission report is delivered once per execution id, and only after its execution: one that
comes first is held (at most ``max_held_commissions``, oldest evicted and counted) and handed back
with the execution's decision. Memory: only held reports; delivered ids live in the store.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Generic, NamedTuple, Protocol, TypeVar

from v6.validation import require_int

DEFAULT_MAX_HELD_COMMISSIONS = 10_000
R = TypeVar("R")


class FillKind(Enum):
    NEW = "new"
    CORRECTION = "correction"
    DUPLICATE = "duplicate"
    STALE = "stale"

    @property
    def delivered(self) -> bool:
        return self in _DELIVERED


_DELIVERED = (FillKind.NEW, FillKind.CORRECTION)  # a tuple: Enum.__hash__ is Python code


class CommissionKind(Enum):
    DELIVER = "deliver"  # its execution was delivered: hand the report on now
    HOLD = "hold"  # its execution is not delivered yet: kept until it is
    DUPLICATE = "duplicate"  # already delivered once


class DeliveryView(Protocol):
    """What the ledger and reconciliation read (a Journal implements it)."""

    def is_delivered(self, exec_id: str) -> bool: ...

    def latest_version(self, stem: str) -> tuple[int, str] | None: ...

    def is_commission_delivered(self, exec_id: str) -> bool: ...


class DeliveryStore(DeliveryView, Protocol):
    """A DeliveryView that also records (a Journal implements it)."""

    def hand_out(self, exec_id: str, stem: str, suffix: int, exec_time: float) -> bool: ...

    def acknowledge(self, exec_id: str) -> None: ...

    def record_commission(self, exec_id: str) -> None: ...


def split_exec_id(exec_id: str) -> tuple[str, int]:
    """``(stem, suffix)``: the suffix is the hex number after the last '.'. An id without one
    (or with a non-hex tail) is its own stem with suffix 0: it can be duplicated, not corrected."""
    stem, dot, tail = exec_id.rpartition(".")
    if not dot or not stem:
        return exec_id, 0
    try:
        return stem, int(tail, 16)
    except ValueError:
        return exec_id, 0


# FillVerdict and FillDecision are NamedTuples: a sync builds them per execution, and a frozen
# dataclass costs three times as much to build.


class FillVerdict(NamedTuple):
    kind: FillKind
    exec_id: str
    replaces: str | None = None  # the corrected exec id (CORRECTION only)
    stem: str = ""  # split_exec_id(exec_id), but for a DUPLICATE
    suffix: int = 0


def classify_execution(exec_id: str, view: DeliveryView) -> FillVerdict:
    """The table in the module docstring, as one pure function of what ``view`` has delivered."""
    if view.is_delivered(exec_id):
        return FillVerdict(FillKind.DUPLICATE, exec_id)
    stem, suffix = split_exec_id(exec_id)
    latest = view.latest_version(stem)
    if latest is None:
        return FillVerdict(FillKind.NEW, exec_id, None, stem, suffix)
    latest_suffix, latest_id = latest
    if suffix > latest_suffix:
        return FillVerdict(FillKind.CORRECTION, exec_id, latest_id, stem, suffix)
    return FillVerdict(FillKind.STALE, exec_id, None, stem, suffix)


class FillDecision(NamedTuple, Generic[R]):
    verdict: FillVerdict
    held_commission: R | None = None  # a report that arrived first, now deliverable
    redelivery: bool = False  # an earlier process handed it out and never acknowledged it

    @property
    def deliver(self) -> bool:
        return self.verdict.kind in _DELIVERED


@dataclass
class LedgerCounters:
    delivered: int = 0  # NEW + CORRECTION, live or recovered
    recovered: int = 0  # of those, found by reconciliation rather than announced live
    redelivered: int = 0  # of those, handed out before by a process that died in on_fill
    corrections: int = 0
    duplicates: int = 0  # DUPLICATE + STALE
    commissions_delivered: int = 0
    commissions_held: int = 0  # currently held
    commissions_evicted: int = 0  # held reports dropped to bound memory


class FillLedger(Generic[R]):
    """Decides, and records in the store, whether each execution and commission report is
    delivered. ``R`` is the caller's commission-report type (held opaquely)."""

    def __init__(
        self, store: DeliveryStore, *, max_held_commissions: int = DEFAULT_MAX_HELD_COMMISSIONS
    ) -> None:
        require_int("max_held_commissions", max_held_commissions, low=1)
        self._store = store
        self._max_held = max_held_commissions
        self._held: OrderedDict[str, R] = OrderedDict()
        self.counters = LedgerCounters()

    def should_deliver(self, exec_id: str) -> bool:
        """Would :meth:`execution` deliver this id now? (no side effect)"""
        return classify_execution(exec_id, self._store).kind.delivered

    def execution(
        self,
        exec_id: str,
        exec_time: float,
        *,
        recovered: bool = False,
        verdict: FillVerdict | None = None,
    ) -> FillDecision[R]:
        """Decide one execution; a delivered one is recorded as handed out before this returns
        (:meth:`acknowledge` it once its handlers returned). ``verdict``: one already
        classified against this store's current state (reconciliation's)."""
        if verdict is None or verdict.exec_id != exec_id:
            verdict = classify_execution(exec_id, self._store)
        if verdict.kind not in _DELIVERED:
            self.counters.duplicates += 1
            return FillDecision(verdict)
        held = self._held.pop(exec_id, None)  # its report came first: delivered with it
        again = self._store.hand_out(exec_id, verdict.stem, verdict.suffix, exec_time)
        if held is not None:
            self._store.record_commission(exec_id)
        counters = self.counters
        counters.delivered += 1
        counters.recovered += recovered
        counters.redelivered += again
        counters.corrections += verdict.kind is FillKind.CORRECTION
        counters.commissions_delivered += held is not None
        counters.commissions_held = len(self._held)
        return FillDecision(verdict, held, again)

    def acknowledge(self, exec_id: str) -> None:
        """The execution's handlers returned: never deliver it again, even after a restart."""
        self._store.acknowledge(exec_id)

    def commission(self, exec_id: str, report: R) -> CommissionKind:
        """Decide one commission report; DELIVER is recorded before this returns."""
        if self._store.is_commission_delivered(exec_id) or exec_id in self._held:
            return CommissionKind.DUPLICATE
        if not self._store.is_delivered(exec_id):
            self._held[exec_id] = report
            if len(self._held) > self._max_held:
                self._held.popitem(last=False)
                self.counters.commissions_evicted += 1
            self.counters.commissions_held = len(self._held)
            return CommissionKind.HOLD
        self._mark_commission(exec_id)
        return CommissionKind.DELIVER

    def held_commissions(self) -> list[str]:
        return list(self._held)

    def _mark_commission(self, exec_id: str) -> None:
        self._store.record_commission(exec_id)
        self.counters.commissions_delivered += 1
