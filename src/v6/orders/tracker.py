"""Trading state's decisions: every fill delivered once, every held Trade kept alive.

The tracker never touches ib_async's internals: it hears order messages through
:class:`~v6.orders.ib_adapter.OrderMessages` (the wrapper patches of
:mod:`v6.orders.ib_adapter`, which call it while ib_async's decoder runs) and acts through
:class:`~v6.orders.ib_adapter.OrderPort`. What it decides:

* at each handshake (before any later message is decoded) held Trades and their Fills go back
  into ib_async's tables, so the new session's openOrder / orderStatus / execDetails update the
  SAME objects and the start-up sync does not append a fill twice; the order-id floor is raised
  (never an id already sent);
* a message about an order ib_async does not know binds it to the held Trade with the same
  permId or orderRef; a late orderStatus (fewer shares filled than known, or "working" after
  done) is dropped; a held Trade's events outlive the socket;
* a live execution is delivered at once when its Trade is known (else when its openOrder or
  orderStatus arrives, or after the orphan grace); executions from a sync are delivered by
  :meth:`FillTracker.reconcile`, which runs after the sync completed and before the session
  counts as live;
* a commission report is passed on once per execution, after the execution (held until then).

Delivery = the :class:`~v6.orders.ledger.FillLedger` records it (journal), the fill is on
``trade.fills`` (a correction replaces the fill it corrects), ``trade.fillEvent`` and
``ib.execDetailsEvent`` have fired once, then ``deliver_fill(trade, fill)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ib_async import CommissionReport, Fill, Order, Trade
from ib_async.util import dataclassUpdate

from v6.connection.lifecycle import Endpoint, SessionStart
from v6.orders.ib_adapter import OrderPort
from v6.orders.ids import OrderIdAllocator
from v6.orders.journal import Journal
from v6.orders.ledger import CommissionKind, FillDecision, FillKind, FillLedger
from v6.orders.orphans import DEFAULT_ORPHAN_GRACE, Orphans
from v6.orders.reconcile import (
    GatewayReport,
    PlacedOrder,
    RecoveredFill,
    ReportedOrder,
    reconcile,
)
from v6.orders.registry import TradeRegistry
from v6.orders.retention import PruneSchedule, forget_expired
from v6.orders.trade_updates import (
    NOT_RECEIVED,
    append_fill,
    apply_final_status,
    is_late,
    mark_not_received,
    reported_execution,
    reported_order,
    trade_from_execution,
)

if TYPE_CHECKING:
    from loguru import Logger

FillCallback = Callable[[Trade, Fill], None]
CommissionCallback = Callable[[Trade, Fill, CommissionReport], None]
__all__ = ["NOT_RECEIVED", "CommissionCallback", "FillCallback", "FillTracker"]


class FillTracker:
    """Exactly-once fills and surviving Trades for one ``IB`` (see the module docstring)."""

    def __init__(
        self,
        port: OrderPort,
        journal: Journal,
        *,
        deliver_fill: FillCallback,
        deliver_commission: CommissionCallback,
        log: Logger,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        orphan_grace: float = DEFAULT_ORPHAN_GRACE,
    ) -> None:
        self.port = port
        self.journal = journal
        self.ledger: FillLedger[CommissionReport] = FillLedger(journal)
        self.registry = TradeRegistry()
        self.allocator = OrderIdAllocator()
        self.session = 0  # API sessions so far (apiStart count)
        self.corrections: dict[str, str] = {}  # correcting exec id -> the exec id it replaced
        self.last_reconcile_seconds: float | None = None
        self._deliver_fill = deliver_fill
        self._deliver_commission = deliver_commission
        self._log = log
        self._clock = clock
        self._prune = PruneSchedule(wall_clock)
        self._replaced: dict[str, Fill] = {}  # corrected fills, kept out of trade.fills
        self._orphans = Orphans(self._release_orphan, orphan_grace)  # Trade not known yet
        self._open: list[ReportedOrder] = []  # what the current sync reported
        self._completed: list[ReportedOrder] = []
        forget_expired(wall_clock(), self.registry, journal, self.corrections, self._replaced)

    # ------------------------------------------------------------------ public

    def health(self) -> dict[str, Any]:
        counters = self.ledger.counters
        seconds = self.last_reconcile_seconds
        return {
            "open_orders": self.registry.working(),
            "fills_delivered": counters.delivered,
            "fills_recovered": counters.recovered,
            "last_reconcile_seconds": None if seconds is None else round(seconds, 6),
        }

    def endpoint(self) -> Endpoint:
        """Where this session's order ids live (TWS numbers orders per host, port, client id)."""
        return self.port.endpoint

    def begin_sync(self) -> None:
        """A sync starts: what it reports is collected afresh."""
        self._open, self._completed = [], []

    def reconcile(self) -> None:
        """After a COMPLETE sync: deliver every fill not yet delivered, settle UNKNOWN orders."""
        started = self._clock()
        placed, holders = self._placed()
        report = GatewayReport(
            session=self.session,
            open_orders=self._open,
            completed_orders=self._completed,
            executions=[reported_execution(f.execution) for f in self.port.fills()],
        )
        result = reconcile(placed, report, self.journal)
        with self.journal.batch():  # recorded in one transaction, then handed out
            decided = self._decide_recovered(result.fills, holders)
        for trade, fill, decision, listed in decided:
            self._hand_out(trade, fill, decision, announced=False, listed=listed)
        self._orphans.clear()
        for ref in result.found:
            self._acknowledge(ref)
        for ref in result.absent:
            self._not_received(ref, holders.get(ref))
        self.last_reconcile_seconds = self._clock() - started
        self.prune_if_due()
        if result.fills or result.absent:
            self._log.info(
                "Reconciled: {} fill(s) recovered, {} order(s) never received",
                len(result.fills), len(result.absent),
            )  # fmt: skip

    def _decide_recovered(
        self, recovered: Sequence[RecoveredFill], holders: dict[str, Trade]
    ) -> list[tuple[Trade, Fill, FillDecision[CommissionReport], bool]]:
        """Each fill's Trade and decision, and whether it is on ``trade.fills`` already."""
        decided = []
        trades: dict[tuple[int, str, int, int], Trade] = {}  # one lookup per order, not per fill
        listed: dict[int, set[int]] = {}  # id(trade) -> ids of the fills on it
        for r in recovered:
            reported = r.execution
            fill = self.port.fill(reported.exec_id)
            assert fill is not None, "reconcile() reports only fills ib_async holds"
            trade = holders.get(r.order_ref or "")
            if trade is None:
                order = (reported.perm_id, reported.order_ref, reported.client_id,
                         reported.order_id)  # fmt: skip
                trade = trades.get(order) or trades.setdefault(order, self._trade_for(fill))
            if id(trade) not in listed:
                listed[id(trade)] = {id(f) for f in trade.fills}
            # reconcile() classified it against the journal as it is now, batch included
            decision = self.ledger.execution(
                reported.exec_id, reported.time, recovered=True, verdict=r.verdict
            )
            decided.append((trade, fill, decision, id(fill) in listed[id(trade)]))
        return decided

    def prune_if_due(self) -> None:
        """Forget what has passed its retention (:mod:`v6.orders.retention`), at most hourly;
        called wherever state is added."""
        now = self._prune.due()
        if now is None:
            return
        trades, fills = forget_expired(
            now, self.registry, self.journal, self.corrections, self._replaced
        )
        if trades or fills:
            self._log.info("Forgot {} done Trade(s) and {} old fill(s)", trades, fills)

    def close(self) -> None:
        """The manager stops: end the held Trades' events (as ib_async would have)."""
        self._orphans.clear()
        for held in self.registry:
            for name in Trade.events:
                getattr(held.trade, name).set_done()

    # ----------------------------------------------------------- session start

    def session_started(self, session: SessionStart) -> None:
        """An API session started (before its start-up sync is decoded): held Trades go back
        into ib_async's tables, the order-id floor is raised."""
        self.session = session.number
        self.begin_sync()
        port = self.port
        self.allocator = OrderIdAllocator(self.journal.highest_order_id(session.endpoint))
        self.allocator.observe_next_valid_id(port.next_valid_id())  # snooped nextValidId
        if self.allocator.rollbacks:
            self._log.warning("nextValidId {} went backwards: ids continue from {}",
                              port.next_valid_id(), self.allocator.next_id())  # fmt: skip
        port.raise_next_order_id(self.allocator.next_id())
        port.restore((held.trade for held in self.registry), self._replaced.values())

    # ------------------------------------------------------ order messages (OrderMessages)

    def is_held(self, trade: Trade) -> bool:
        return self.registry.get(trade) is not None

    def order_named(
        self, perm_id: int, order_ref: str, client_id: int, order_id: int
    ) -> Trade | None:
        return self._bind(perm_id, order_ref, client_id, order_id)

    def is_late(self, trade: Trade, status: str, filled: float) -> bool:
        if is_late(trade.orderStatus, status, filled):
            self._log.debug("Late orderStatus {} for order {} dropped", status, trade.order.orderId)
            return True
        return False

    def open_order(self, order: Order, status: str, trade: Trade | None) -> None:
        self._open.append(reported_order(order, status))
        if trade is not None:
            self._adopt_orphans(trade)

    def order_status(self, trade: Trade) -> None:
        self._adopt_orphans(trade)

    def completed_order(
        self, order: Order, status: str, filled: float | None, trade: Trade | None
    ) -> None:
        self._completed.append(reported_order(order, status))
        if trade is not None:
            port = self.port
            apply_final_status(trade, status, filled, port.last_time, port.announce_status)

    def execution(self, fill: Fill, trade: Trade | None, *, live: bool, new: bool) -> None:
        if not live:
            return  # a sync's execution: reconcile() delivers it
        if trade is None:
            self._orphans.hold(fill)
            return
        self._deliver(trade, fill, recovered=False, announced=new)

    def commission(self, report: CommissionReport) -> None:
        if self.ledger.commission(report.execId, report) is CommissionKind.DELIVER:
            self._pass_commission(report.execId, report)

    # --------------------------------------------------------------- binding

    def _bind(self, perm_id: int, order_ref: str, client_id: int, order_id: int) -> Trade | None:
        """The Trade of this order; a held Trade takes the place of any other ib_async has."""
        held = self.registry.find(perm_id, order_ref)
        if held is None:
            found = self.port.trade(client_id, order_id, perm_id)
            held = self.registry.get(found) if found is not None else None
            if held is None:
                return found
        trade = held.trade
        if perm_id and not trade.order.permId:
            trade.order.permId = perm_id
            self.registry.index(held)
        self.port.bind(trade, perm_id, client_id, order_id)
        if not held.acknowledged:
            self._acknowledge(trade.order.orderRef)
        return trade

    def _acknowledge(self, order_ref: str) -> None:
        held = self.registry.find(0, order_ref)
        if held is not None and held.acknowledged:
            return
        if held is not None:
            held.acknowledged = True
        self.journal.resolve_pending(order_ref)

    def _trade_for(self, fill: Fill) -> Trade:
        """The Trade a fill belongs to; one built from the execution if nobody knows it."""
        e = fill.execution
        trade = self._bind(e.permId, e.orderRef, e.clientId, e.orderId)
        if trade is None:
            trade = trade_from_execution(fill)
            self.port.add_trade(trade)
        return trade

    def _adopt_orphans(self, trade: Trade) -> None:
        for fill in self._orphans.adopt(trade.order):
            self._deliver(trade, fill, recovered=False, announced=False)

    def _release_orphan(self, fill: Fill) -> None:
        """Nothing named the fill's order within the grace: deliver it with the Trade that
        can be found or built (an order placed elsewhere)."""
        self._deliver(self._trade_for(fill), fill, recovered=False, announced=False)

    # -------------------------------------------------------------- delivery

    def _deliver(self, trade: Trade, fill: Fill, *, recovered: bool, announced: bool) -> None:
        """Deliver once (the ledger decides). ``announced``: ib_async already appended the fill
        to ``trade.fills`` and fired its events."""
        self._hand_out(trade, fill, self._decide(fill, recovered=recovered), announced=announced)
        self.prune_if_due()  # (reconcile() asks once for all it hands out)

    def _decide(self, fill: Fill, *, recovered: bool) -> FillDecision[CommissionReport]:
        e = fill.execution
        return self.ledger.execution(e.execId, e.time.timestamp(), recovered=recovered)

    def _hand_out(
        self,
        trade: Trade,
        fill: Fill,
        decision: FillDecision[CommissionReport],
        *,
        announced: bool,
        listed: bool | None = None,
    ) -> None:
        """``listed``: whether the fill is on ``trade.fills`` already (None: look)."""
        if not decision.deliver:
            return
        e = fill.execution
        if listed is None:
            listed = any(f is fill for f in trade.fills)
        if not listed:
            append_fill(trade, fill)
        if decision.verdict.kind is FillKind.CORRECTION and decision.verdict.replaces:
            self._replace(trade, decision.verdict.replaces, e.execId)
        if not announced:
            self.port.announce_fill(trade, fill)
        self.registry.add(trade, self.session)
        self._deliver_fill(trade, fill)
        if decision.held_commission is not None:
            self._pass_commission(e.execId, decision.held_commission, trade)

    def _replace(self, trade: Trade, replaced: str, by: str) -> None:
        self.corrections[by] = replaced
        for i, old in enumerate(trade.fills):
            if old.execution.execId == replaced:
                self._replaced[replaced] = trade.fills.pop(i)
                break

    def _pass_commission(
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

    def _not_received(self, order_ref: str, trade: Trade | None) -> None:
        self.journal.resolve_pending(order_ref)
        self._log.warning("Order {} never reached the gateway; not re-sent", order_ref)
        if trade is None:
            return
        held = self.registry.get(trade)
        if held is not None:
            held.acknowledged = True
        mark_not_received(trade, self.port.last_time)

    def _placed(self) -> tuple[list[PlacedOrder], dict[str, Trade]]:
        """What reconcile() needs of the held Trades (and of pending orders of an earlier
        process, from the journal), and the Trade of each placed order's ref."""
        placed: list[PlacedOrder] = []
        holders: dict[str, Trade] = {}
        for held in self.registry:
            order = held.trade.order
            ref = order.orderRef or f"v6-held-{id(held.trade)}"
            holders[ref] = held.trade
            placed.append(PlacedOrder(
                ref, order.clientId, order.orderId, held.session, order.permId,
                held.trade.orderStatus.status, unacknowledged=not held.acknowledged,
            ))  # fmt: skip
        here = self.endpoint()
        for pending in self.journal.pending_orders():
            if pending.order_ref not in holders and pending.endpoint == here:
                placed.append(PlacedOrder(pending.order_ref, pending.endpoint.client_id,
                                          pending.order_id, -1, unacknowledged=True))  # fmt: skip
        return placed, holders
