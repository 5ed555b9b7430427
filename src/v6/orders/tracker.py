"""Trading state's decisions: every fill delivered once, every held Trade kept alive.

The tracker never touches ib_async's internals: it hears order messages through
:class:`~v6.orders.ib_adapter.OrderMessages` (the wrapper patches of
:mod:`v6.orders.ib_adapter`, which call it while ib_async's decoder runs) and acts through
:class:`~v6.orders.ib_adapter.OrderPort`. What it decides:

* at each handshake (before any later message is decoded) held Trades and their Fills go back
  into ib_async's tables, so the new session's openOrder / orderStatus / execDetails update the
  SAME objects and the start-up sync does not append a fill twice; the order-id floor is raised
  (never an id already sent);
* a message about an order binds it to the held Trade with the same permId, else ib_async's
  Trade of its (client id, order id), else the one held Trade with its orderRef (the orderRef
  rule of :mod:`v6.orders.registry`); a late orderStatus (fewer shares filled than known, or
  "working" after done) is dropped; a held Trade's events outlive the socket;
* a live execution is delivered at once when its Trade is known (else when its openOrder or
  orderStatus arrives, or after the orphan grace); executions from a sync are kept off
  ``trade.fills`` until :meth:`FillTracker.reconcile` has decided them (settlement, in
  :mod:`v6.orders.settlement`), and handed out when the session is live
  (:mod:`v6.orders.delivery`);
* a commission report is passed on once per execution, after the execution (held until then).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ib_async import CommissionReport, Fill, Order, OrderStatus, Trade

from v6.connection.lifecycle import Endpoint, SessionStart
from v6.orders.delivery import CommissionCallback, DeliverFill, FillDelivery
from v6.orders.ib_adapter import OrderPort
from v6.orders.ids import OrderIdAllocator
from v6.orders.journal import Journal
from v6.orders.orphans import DEFAULT_ORPHAN_GRACE, Orphans
from v6.orders.registry import Held, TradeRegistry
from v6.orders.retention import PruneSchedule, forget_expired
from v6.orders.settlement import Settlement
from v6.orders.trade_updates import (
    NOT_RECEIVED,
    apply_final_status,
    is_late,
    reported_order,
    trade_from_execution,
)

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["NOT_RECEIVED", "CommissionCallback", "DeliverFill", "FillTracker"]


class FillTracker:
    """Exactly-once fills and surviving Trades for one ``IB`` (see the module docstring)."""

    def __init__(
        self,
        port: OrderPort,
        journal: Journal,
        *,
        deliver_fill: DeliverFill,
        deliver_commission: CommissionCallback,
        log: Logger,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        orphan_grace: float = DEFAULT_ORPHAN_GRACE,
    ) -> None:
        self.port = port
        self.journal = journal
        self.registry = TradeRegistry()
        self.delivery = FillDelivery(
            port, journal, self.registry, deliver_fill=deliver_fill,
            deliver_commission=deliver_commission, trade_for=self.trade_for, log=log,
        )  # fmt: skip
        self.ledger = self.delivery.ledger
        self.corrections = self.delivery.corrections
        self.allocator = OrderIdAllocator()
        self.session = 0  # API sessions so far (apiStart count)
        self.sync = 0  # syncs begun: an order placed after a sync began is not judged by it
        self.settlement = Settlement(self, log)
        self._log = log
        self.clock = clock
        self._wall_clock = wall_clock
        self._prune = PruneSchedule(wall_clock)
        self._orphans = Orphans(self._release_orphan, orphan_grace)  # Trade not known yet
        self.forget_expired()

    # ------------------------------------------------------------------ public

    def health(self) -> dict[str, Any]:
        counters = self.ledger.counters
        seconds = self.settlement.last_seconds
        return {
            "open_orders": self.open_orders(),
            "fills_delivered": counters.delivered,
            "fills_recovered": counters.recovered,
            "fills_redelivered": counters.redelivered,
            "last_reconcile_seconds": None if seconds is None else round(seconds, 6),
        }

    def open_orders(self) -> int:
        """Held working or UNKNOWN orders, and those the journal knows that no Trade holds
        (sent by an earlier process, not reconciled yet)."""
        held = {(h.trade.order.clientId, h.trade.order.orderId) for h in self.registry}
        host, port = self.endpoint()[:2]
        rows = sum(1 for row in self.journal.orders()
                   if (row.endpoint.host, row.endpoint.port) == (host, port)
                   and (row.endpoint.client_id, row.order_id) not in held)  # fmt: skip
        return self.registry.working() + rows

    def endpoint(self) -> Endpoint:
        """Where this session's order ids live (TWS numbers orders per host, port, client id)."""
        return self.port.endpoint

    def endpoint_of(self, trade: Trade) -> Endpoint:
        host, port, _ = self.port.endpoint
        return Endpoint(host, port, trade.order.clientId)

    def begin_sync(self) -> None:
        """A sync starts: what it reports is collected afresh."""
        self.sync += 1
        self.settlement.begin()

    def reconcile(self) -> None:
        """After a COMPLETE sync: decide every fill not yet delivered, settle orders."""
        self.settlement.reconcile()
        self.prune_if_due()

    def go_live(self) -> None:
        """The session is live (CONNECTED): hand out the recovered fills."""
        self.delivery.go_live()

    def prune_if_due(self) -> None:
        """Forget what has passed its retention (:mod:`v6.orders.retention`), at most hourly;
        called wherever state is added."""
        if self._prune.due() is not None:
            self.forget_expired()

    def forget_expired(self) -> None:
        """Retention judged on the gateway's time: the newest execution time TWS reported, never
        a local clock that may run days ahead (it may only make pruning later)."""
        newest = self.journal.last_execution_time()
        if newest is None:
            return
        now = min(self._wall_clock(), newest)
        trades, fills = forget_expired(
            now, self.registry, self.journal, self.corrections, self.delivery.replaced
        )
        if trades or fills:
            self._log.info("Forgot {} done Trade(s) and {} old fill(s)", trades, fills)

    def close(self) -> None:
        """The manager stops: end the held Trades' events (as ib_async would have)."""
        self._orphans.clear()
        self.delivery.close()
        for held in self.registry:
            for name in Trade.events:
                getattr(held.trade, name).set_done()

    # ----------------------------------------------------------- session start

    def session_started(self, session: SessionStart) -> None:
        """An API session started (before its start-up sync is decoded): held Trades go back
        into ib_async's tables, the order-id floor is raised."""
        self.session = self.delivery.session = session.number
        self.delivery.live = False
        self.begin_sync()
        port = self.port
        self.allocator = OrderIdAllocator(self.journal.highest_order_id(session.endpoint))
        self.allocator.observe_next_valid_id(port.next_valid_id())  # snooped nextValidId
        if self.allocator.rollbacks:
            self._log.warning("nextValidId {} went backwards: ids continue from {}",
                              port.next_valid_id(), self.allocator.next_id())  # fmt: skip
        port.raise_next_order_id(self.allocator.next_id())
        if self.registry or self.delivery.replaced:
            port.restore((held.trade for held in self.registry), self.delivery.replaced.values())

    def placed(self, trade: Trade) -> None:
        """The order gate sent a new order."""
        self.registry.add(trade, self.session, acknowledged=False, sync=self.sync)
        self.prune_if_due()

    # ------------------------------------------------------ order messages (OrderMessages)

    def is_held(self, trade: Trade) -> bool:
        return self.registry.get(trade) is not None

    def order_named(
        self, perm_id: int, order_ref: str, client_id: int, order_id: int
    ) -> Trade | None:
        return self._bind(perm_id, order_ref, client_id, order_id)

    def is_late(self, trade: Trade, status: str, filled: float) -> bool:
        held = self.registry.get(trade)
        if held is not None and held.built:
            return False  # v6's guess from an execution: the order's own status wins
        if is_late(trade.orderStatus, status, filled):
            self._log.debug("Late orderStatus {} for order {} dropped", status, trade.order.orderId)
            return True
        return False

    def open_order(self, order: Order, status: str, trade: Trade | None) -> None:
        self.settlement.reported_open(reported_order(order, status))
        if trade is not None:
            if order.clientId == self.endpoint().client_id and not self.is_held(trade):
                self.registry.add(trade, self.session)  # ours to manage: held like ours
            self._adopt_orphans(trade)

    def order_status(self, trade: Trade) -> None:
        held = self.registry.get(trade)
        if held is not None:
            held.built = False
        self._adopt_orphans(trade)
        self.order_changed(trade)

    def completed_order(
        self, order: Order, status: str, filled: float | None, trade: Trade | None
    ) -> None:
        self.settlement.reported_completed(reported_order(order, status, filled))
        if trade is None:
            trade = self.port.trade(order.clientId, order.orderId, order.permId)
        if trade is not None:
            self.settlement.complete(trade, order, status, filled)

    def execution(self, fill: Fill, trade: Trade | None, *, live: bool, new: bool) -> None:
        if not live:
            if new and trade is not None:
                self.settlement.hold_off(trade, fill)  # decided by reconcile(), not ib_async
            return
        if trade is None:
            self._orphans.hold(fill)
            return
        self.delivery.deliver(trade, fill, recovered=False, announced=new)
        self.prune_if_due()

    def commission(self, report: CommissionReport) -> None:
        self.delivery.commission(report)

    # --------------------------------------------------------------- binding

    def _bind(self, perm_id: int, order_ref: str, client_id: int, order_id: int) -> Trade | None:
        """The Trade of this order; a held Trade takes the place of any other ib_async has."""
        held = self.registry.find(perm_id, "")
        if held is not None and held.acknowledged and self.port.is_bound(held.trade, perm_id):
            return held.trade  # (every later message of a bound order: nothing to do)
        if held is None:
            found = self.port.trade(client_id, order_id, perm_id)
            if found is not None:
                held = self.registry.get(found)
                if held is None:
                    return found
            else:
                held = self.registry.find(perm_id, order_ref)
                if held is None or held.trade.order.orderId not in (0, order_id):
                    return None
        trade = held.trade
        if perm_id and not trade.order.permId:
            trade.order.permId = perm_id
            self.registry.index(held)
        self.port.bind(trade, perm_id, client_id, order_id)
        self.acknowledge(held)
        return trade

    def acknowledge(self, held: Held) -> None:
        held.acknowledged = True
        order = held.trade.order
        self.journal.acknowledge_order(self.endpoint_of(held.trade), order.orderId, order.permId)

    def order_changed(self, trade: Trade) -> None:
        """A done order has nothing left to recover: its journal row goes."""
        if trade.orderStatus.status in OrderStatus.DoneStates:
            self.journal.forget_order(self.endpoint_of(trade), trade.order.orderId)

    def trade_for(self, fill: Fill) -> Trade:
        """The Trade a fill belongs to; one built from the execution if nobody knows it."""
        e = fill.execution
        trade = self._bind(e.permId, e.orderRef, e.clientId, e.orderId)
        if trade is None:
            trade = trade_from_execution(fill)
            self.port.add_trade(trade)
            self.registry.add(trade, self.session, built=True)
        return trade

    def _adopt_orphans(self, trade: Trade) -> None:
        for fill in self._orphans.adopt(trade.order):
            self.delivery.deliver(trade, fill, recovered=False, announced=False)

    def _release_orphan(self, fill: Fill) -> None:
        """Nothing named the fill's order within the grace: deliver it with the Trade that
        can be found or built (an order placed elsewhere)."""
        self.delivery.deliver(self.trade_for(fill), fill, recovered=False, announced=False)

    def clear_orphans(self) -> None:
        self._orphans.clear()

    def final_status(self, trade: Trade, status: str, filled: float | None, why: str) -> None:
        """A final status from a completed order or a settlement, through ib_async's events."""
        apply_final_status(trade, status, filled, self.port.last_time, self.port.announce_status,
                           why)  # fmt: skip
        self.order_changed(trade)
