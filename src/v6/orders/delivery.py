"""Handing fills and commission reports to the application, once, on the right Trade.

:class:`FillDelivery` is the tracker's delivery desk. A fill the ledger lets through is put on
``trade.fills`` (only the latest revision of each execution: a correction replaces what it
corrects, and an older revision a sync re-reports is kept off), ``trade.fillEvent`` and
``ib.execDetailsEvent`` fire once, then the ``on_fill`` handlers run and, once they returned,
the fill is acknowledged in the journal (:mod:`v6.orders.handlers`).

Recovered fills (found by a reconciliation after a connect) wait until the session is live
(:meth:`FillDelivery.go_live`, called when the state becomes CONNECTED, before ``on_connected``
and before ``wait_connected()`` returns), so that an order placed from ``on_fill`` or
``on_commission`` for a fill made during an outage is accepted like any other. A commission
report that becomes deliverable during a start-up sync waits with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ib_async import CommissionReport, Fill, Trade
from ib_async.util import dataclassUpdate

from v6.orders.ib_adapter import OrderPort
from v6.orders.journal import Journal
from v6.orders.ledger import CommissionKind, FillDecision, FillKind, FillLedger, split_exec_id
from v6.orders.registry import TradeRegistry
from v6.orders.trade_updates import adopt_ids, append_fill, fill_quantities, grow_built

if TYPE_CHECKING:
    from loguru import Logger

DeliverFill = Callable[[Trade, Fill, Callable[[], None]], None]
CommissionCallback = Callable[[Trade, Fill, CommissionReport], None]
Decided = tuple[Trade, Fill, FillDecision[CommissionReport], bool]


class FillDelivery:
    """Exactly-once hand-out of fills and commission reports (see the module docstring)."""

    def __init__(
        self,
        port: OrderPort,
        journal: Journal,
        registry: TradeRegistry,
        *,
        deliver_fill: DeliverFill,
        deliver_commission: CommissionCallback,
        trade_for: Callable[[Fill], Trade],
        log: Logger,
    ) -> None:
        self.port = port
        self.journal = journal
        self.registry = registry
        self.ledger: FillLedger[CommissionReport] = FillLedger(journal)
        self.corrections: dict[str, str] = {}  # correcting exec id -> the exec id it replaced
        self.replaced: dict[str, Fill] = {}  # revisions kept out of trade.fills
        self.live = True  # the session is live: hand out at once (False from a handshake on)
        self.logged: set[int] = set()  # ids of fills whose log line ib_async wrote already
        self.session = 0
        self._deliver_fill = deliver_fill
        self._deliver_commission = deliver_commission
        self._trade_for = trade_for
        self._log = log
        self._waiting: list[Decided] = []  # recovered, until the session is live
        self._live_waiting: list[Decided] = []  # live during a sync (the bool: announced)
        self._commissions: list[tuple[str, CommissionReport]] = []  # likewise

    # ---------------------------------------------------------------- fills

    def deliver(self, trade: Trade, fill: Fill, *, recovered: bool, announced: bool) -> None:
        """Deliver once (the ledger decides). ``announced``: ib_async already appended the
        fill to ``trade.fills`` and fired its events."""
        e = fill.execution
        decision = self.ledger.execution(e.execId, e.time.timestamp(), recovered=recovered)
        if not decision.deliver:
            self.keep_latest_revisions(trade)  # a stale revision ib_async appended
            return
        if not self.live:  # a live fill during a start-up sync: with the recovered ones
            self._live_waiting.append((trade, fill, decision, announced))
            return
        self.hand_out(trade, fill, decision, announced=announced)

    def wait_for_live(self, decided: list[Decided]) -> None:
        """Recovered fills, decided (and marked handed out): handed out at :meth:`go_live`."""
        self._waiting.extend(decided)

    def go_live(self) -> None:
        """The session is live: hand out what waited for it, in order."""
        self.live = True
        if not (self._waiting or self._live_waiting or self._commissions):
            return
        waiting, self._waiting = self._waiting, []
        live, self._live_waiting = self._live_waiting, []
        commissions, self._commissions = self._commissions, []
        with self.journal.batch():  # the acknowledgements of sync handlers, together
            for trade, fill, decision, listed in waiting:
                self.hand_out(trade, fill, decision, announced=False, listed=listed)
            for trade, fill, decision, announced in live:
                self.hand_out(trade, fill, decision, announced=announced)
            for exec_id, report in commissions:
                self.pass_commission(exec_id, report)

    def hand_out(
        self,
        trade: Trade,
        fill: Fill,
        decision: FillDecision[CommissionReport],
        *,
        announced: bool,
        listed: bool | None = None,
    ) -> None:
        """``listed``: whether the fill is on ``trade.fills`` already (None: look)."""
        e = fill.execution
        self._put_on(trade, fill, decision, listed)
        if not announced:
            self.port.announce_fill(trade, fill)
        if decision.redelivery:
            self._log.warning("Fill {} delivered again: the process that handed it out "
                              "stopped before on_fill returned", e.execId)  # fmt: skip
        self._deliver_fill(trade, fill, lambda: self.ledger.acknowledge(e.execId))
        if decision.held_commission is not None:
            self.pass_commission(e.execId, decision.held_commission, trade)

    def _put_on(
        self,
        trade: Trade,
        fill: Fill,
        decision: FillDecision[CommissionReport],
        listed: bool | None,
    ) -> None:
        """The fill on its Trade (the latest revision only), the Trade held and its quantities
        completed where TWS did not send them."""
        if listed is None:
            listed = any(f is fill for f in trade.fills)
        if not listed:
            logged = id(fill) in self.logged
            self.logged.discard(id(fill))
            append_fill(trade, fill, log=not logged)
        verdict = decision.verdict
        if verdict.kind is FillKind.CORRECTION:
            if verdict.replaces:
                self.corrections[verdict.exec_id] = verdict.replaces
            self.keep_latest_revisions(trade)  # (a NEW fill's stem has no other revision)
        if not trade.order.orderId:
            adopt_ids(trade, fill)
        held = self.registry.add(trade, self.session)
        if held.built:
            grow_built(trade, fill)
        elif not trade.orderStatus.avgFillPrice and trade.orderStatus.status == "Filled":
            fill_quantities(trade)  # a Trade built from a completed order: no price in it

    def keep_latest_revisions(self, trade: Trade) -> None:
        """``trade.fills`` holds one fill per execution: its latest revision. The others are
        kept (re-seeded at each handshake, so a sync does not append them again)."""
        latest: dict[str, tuple[int, Fill]] = {}
        for fill in trade.fills:
            stem, suffix = split_exec_id(fill.execution.execId)
            known = self.journal.latest_version(stem)
            best = latest.get(stem)
            if (best is None or suffix > best[0]) and (known is None or suffix >= known[0]):
                latest[stem] = (suffix, fill)
        keep = [f for f in trade.fills
                if latest.get(split_exec_id(f.execution.execId)[0], (0, None))[1] is f]
        if len(keep) != len(trade.fills):
            for fill in trade.fills:
                if not any(fill is k for k in keep):
                    self.replaced[fill.execution.execId] = fill
            trade.fills[:] = keep

    # ---------------------------------------------------------------- commissions

    def commission(self, report: CommissionReport) -> None:
        if self.ledger.commission(report.execId, report) is not CommissionKind.DELIVER:
            return
        if self.live:
            self.pass_commission(report.execId, report)
        else:
            self._commissions.append((report.execId, report))

    def pass_commission(
        self, exec_id: str, report: CommissionReport, trade: Trade | None = None
    ) -> None:
        fill = self.port.fill(exec_id)
        if fill is None:
            return
        if report is not fill.commissionReport:
            dataclassUpdate(fill.commissionReport, report)
        if trade is None:
            trade = self._trade_for(fill)
        self.port.announce_commission(trade, fill)
        self._deliver_commission(trade, fill, fill.commissionReport)

    def close(self) -> None:
        """The manager stops: nothing waits for a session any more."""
        self._waiting.clear()
        self._live_waiting.clear()
        self._commissions.clear()
        self.logged.clear()
        self.live = False
