"""Reconciliation's consequences: what a complete sync means for the held Trades and the journal.

:class:`Settlement` collects what a sync reports (open and completed orders, the executions
ib_async appended to a Trade, which are held off ``trade.fills`` until decided), runs the pure
:func:`~v6.orders.reconcile.reconcile`, then:

* decides every fill not yet delivered (marked handed out in the journal in one transaction)
  and gives them to :class:`~v6.orders.delivery.FillDelivery`, which hands them out when the
  session is live; a fill the sync re-reported that was delivered before goes back on its Trade
  if it is the latest revision (a restarted process's Trade shows what its order did);
* acknowledges the UNKNOWN orders it found and marks Inactive those it proves never arrived,
  judging only orders sent before the sync began (an order placed during a 1101 resync may be
  acknowledged after the resync's last answer: never "proven absent" by it);
* gives a held Trade whose order ended while the application was away its final status
  (Cancelled, Filled) through the normal events: from the completed order when the gateway
  reports one, else, for an acknowledged order of this client id that the gateway reports
  nowhere (open, completed or executed), Cancelled, or Filled if it had filled (a DAY order
  that expired before TWS's nightly restart);
* forgets the journal's rows of orders that are done or proven absent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ib_async import CommissionReport, Fill, Order, OrderStatus, Trade

from v6.connection.lifecycle import Endpoint
from v6.orders.delivery import Decided, FillDelivery
from v6.orders.ib_adapter import OrderPort
from v6.orders.journal import Journal, JournalOrder
from v6.orders.ledger import FillLedger, split_exec_id
from v6.orders.reconcile import GatewayReport, PlacedOrder, RecoveredFill, ReportedOrder, reconcile
from v6.orders.registry import Held, TradeRegistry
from v6.orders.trade_updates import (
    adopt_ids,
    fill_quantities,
    mark_not_received,
    reported_execution,
)

if TYPE_CHECKING:
    from loguru import Logger

VANISHED = "v6: reported nowhere by the gateway (ended while away: expired or cancelled)"
COMPLETED = "v6: completed order"


class Tracker(Protocol):
    """What settling needs of the :class:`~v6.orders.tracker.FillTracker`."""

    port: OrderPort
    journal: Journal
    registry: TradeRegistry
    delivery: FillDelivery
    ledger: FillLedger[CommissionReport]
    session: int
    sync: int
    clock: Callable[[], float]

    def endpoint(self) -> Endpoint: ...

    def endpoint_of(self, trade: Trade) -> Endpoint: ...

    def acknowledge(self, held: Held) -> None: ...

    def clear_orphans(self) -> None: ...

    def trade_for(self, fill: Fill) -> Trade: ...

    def final_status(self, trade: Trade, status: str, filled: float | None, why: str) -> None: ...


class Settlement:
    """What one complete sync settles (see the module docstring)."""

    def __init__(self, tracker: Tracker, log: Logger) -> None:
        self._tracker = tracker
        self._log = log
        self.last_seconds: float | None = None
        self._open: list[ReportedOrder] = []
        self._completed: list[ReportedOrder] = []
        self._held_off: list[tuple[Trade, Fill]] = []

    def begin(self) -> None:
        self._open, self._completed, self._held_off = [], [], []

    def reported_open(self, order: ReportedOrder) -> None:
        self._open.append(order)

    def reported_completed(self, order: ReportedOrder) -> None:
        self._completed.append(order)

    def hold_off(self, trade: Trade, fill: Fill) -> None:
        """ib_async appended a sync's execution to ``trade.fills`` (and logged it): taken off
        when the sync is complete, until decided."""
        self._held_off.append((trade, fill))

    def _take_off(self) -> None:
        """The sync's fills off their Trades (one pass per Trade); the ones handed out now go
        back on as they are handed out, without a second log line."""
        off = {id(fill) for _, fill in self._held_off}
        for trade in {id(t): t for t, _ in self._held_off}.values():
            trade.fills[:] = [f for f in trade.fills if id(f) not in off]
        self._tracker.delivery.logged.update(off)

    def complete(self, trade: Trade, order: Order, status: str, filled: float | None) -> None:
        """A completed order for ``trade``: its final status and quantities (ib_async builds
        a new Trade for it with ``filled`` 0, and never updates a bound one)."""
        if not trade.order.orderId:  # TWS's completedOrder has no order id: the journal's
            row = self._tracker.journal.find_order(
                self._tracker.endpoint_of(trade), 0, order.permId
            )
            if row is not None:
                trade.order.orderId = trade.orderStatus.orderId = row.order_id
                trade.order.clientId = row.endpoint.client_id
        self._tracker.final_status(trade, status, filled, COMPLETED)

    # --------------------------------------------------------------- reconcile

    def reconcile(self) -> None:
        tracker = self._tracker
        started = tracker.clock()
        fills = tracker.port.fills()
        if not (tracker.registry or tracker.journal.has_orders() or fills or self._open
                or self._completed or self._held_off):  # fmt: skip
            self._nothing_to_settle(started)  # the usual connect: no order held or reported
            return
        placed, holders = self._placed()
        report = GatewayReport(
            session=tracker.session,
            open_orders=self._open,
            completed_orders=self._completed,
            executions=[reported_execution(f.execution) for f in fills],
        )
        result = reconcile(placed, report, tracker.journal)
        self._take_off()
        with tracker.journal.batch():  # marked handed out in one transaction
            decided = self._decide(result.fills, holders)
        self._put_back(decided)
        tracker.clear_orphans()
        for ident in result.found:
            held = tracker.registry.get(holders[ident]) if ident in holders else None
            if held is not None and not held.acknowledged:
                tracker.acknowledge(held)
        placed_by_ident = {p.ident: p for p in placed}
        for ident in result.absent:
            self._not_received(placed_by_ident[ident], holders.get(ident))
        for ident in result.vanished:
            self._vanished(placed_by_ident[ident], holders.get(ident))
        tracker.delivery.wait_for_live(decided)
        if tracker.delivery.live:  # a resync: the session is live already
            tracker.delivery.go_live()
        self.last_seconds = tracker.clock() - started
        if result.fills or result.absent or result.vanished:
            self._log.info(
                "Reconciled: {} fill(s) recovered, {} order(s) never received, {} ended away",
                len(result.fills), len(result.absent), len(result.vanished),
            )  # fmt: skip

    def _nothing_to_settle(self, started: float) -> None:
        """What :meth:`reconcile` does when nothing is held or reported, without its passes."""
        tracker = self._tracker
        tracker.clear_orphans()
        if tracker.delivery.live:  # a resync: hand out what a live fill left waiting
            tracker.delivery.go_live()
        self.last_seconds = tracker.clock() - started

    def _decide(
        self, recovered: Sequence[RecoveredFill], holders: dict[str, Trade]
    ) -> list[Decided]:
        """Each fill's Trade and decision, and whether it is on ``trade.fills`` already."""
        tracker = self._tracker
        decided: list[Decided] = []
        trades: dict[tuple[int, str, int, int], Trade] = {}  # one lookup per order, not per fill
        listed: dict[int, set[int]] = {}  # id(trade) -> ids of the fills on it
        for r in recovered:
            reported = r.execution
            fill = tracker.port.fill(reported.exec_id)
            assert fill is not None, "reconcile() reports only fills ib_async holds"
            trade = holders.get(r.placed or "")
            if trade is None:
                order = (reported.perm_id, reported.order_ref, reported.client_id,
                         reported.order_id)  # fmt: skip
                trade = trades.get(order) or trades.setdefault(order, tracker.trade_for(fill))
            if id(trade) not in listed:
                listed[id(trade)] = {id(f) for f in trade.fills}
            # reconcile() classified it against the journal as it is now, batch included
            decision = tracker.ledger.execution(
                reported.exec_id, reported.time, recovered=True, verdict=r.verdict
            )
            decided.append((trade, fill, decision, id(fill) in listed[id(trade)]))
        return decided

    def _put_back(self, decided: list[Decided]) -> None:
        """Held-off fills that were delivered before go back on their Trade, if they are the
        latest revision of their execution (the fills handed out now are appended then)."""
        now = {id(fill) for _, fill, _, _ in decided}
        journal = self._tracker.journal
        logged = self._tracker.delivery.logged
        for trade, fill in self._held_off:
            if id(fill) in now:
                continue
            logged.discard(id(fill))
            if any(f is fill for f in trade.fills):
                continue
            exec_id = fill.execution.execId
            latest = journal.latest_version(split_exec_id(exec_id)[0])
            if journal.is_delivered(exec_id) and latest is not None and latest[1] == exec_id:
                trade.fills.append(fill)
                adopt_ids(trade, fill)
                fill_quantities(trade)
            else:
                self._tracker.delivery.replaced[exec_id] = fill
        self._held_off = []

    # ------------------------------------------------------------- orders

    def _placed(self) -> tuple[list[PlacedOrder], dict[str, Trade]]:
        """What reconcile() needs of the held Trades placed before this sync began, and of the
        journal's orders of this endpoint no Trade holds; the Trade of each placed ident."""
        tracker = self._tracker
        placed: list[PlacedOrder] = []
        holders: dict[str, Trade] = {}
        held_ids: set[tuple[int, int]] = set()
        for held in tracker.registry:
            order = held.trade.order
            held_ids.add((order.clientId, order.orderId))
            if held.sync >= tracker.sync or held.built:
                continue  # placed during this sync (or not an order of ours): not judged
            ident = f"held-{id(held.trade)}"
            holders[ident] = held.trade
            placed.append(PlacedOrder(
                order.orderRef, order.clientId, order.orderId, held.session, order.permId,
                held.trade.orderStatus.status, unacknowledged=not held.acknowledged, key=ident,
            ))  # fmt: skip
        here = tracker.endpoint()
        for row in tracker.journal.orders():
            if row.endpoint == here and (here.client_id, row.order_id) not in held_ids:
                placed.append(self._journal_order(row))
        return placed, holders

    @staticmethod
    def _journal_order(row: JournalOrder) -> PlacedOrder:
        return PlacedOrder(
            row.order_ref, row.endpoint.client_id, row.order_id, -1, row.perm_id,
            unacknowledged=not row.acknowledged, key=f"journal-{row.order_id}",
        )  # fmt: skip

    def _not_received(self, placed: PlacedOrder, trade: Trade | None) -> None:
        tracker = self._tracker
        tracker.journal.forget_order(tracker.endpoint(), placed.order_id)
        self._log.warning("Order {} (id {}) never reached the gateway; not re-sent",
                          placed.order_ref, placed.order_id)  # fmt: skip
        if trade is None:
            return
        held = tracker.registry.get(trade)
        if held is not None:
            held.acknowledged = True
        mark_not_received(trade, tracker.port.last_time)

    def _vanished(self, placed: PlacedOrder, trade: Trade | None) -> None:
        """An acknowledged order of this client id the gateway reports nowhere: it ended while
        the application was away (and TWS forgot it, e.g. across its nightly restart)."""
        tracker = self._tracker
        if placed.client_id != tracker.endpoint().client_id:
            return  # another client id's order: this session cannot see it
        if trade is None:
            tracker.journal.forget_order(tracker.endpoint(), placed.order_id)
            return
        status = trade.orderStatus
        if status.status in OrderStatus.DoneStates:
            return
        total = float(trade.order.totalQuantity)
        final = OrderStatus.Filled if total and status.filled >= total else OrderStatus.Cancelled
        self._log.warning("Order {} (id {}) is reported nowhere by the gateway: {}",
                          placed.order_ref, placed.order_id, final)  # fmt: skip
        tracker.final_status(trade, final, None, VANISHED)

