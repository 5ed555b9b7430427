"""``ib.placeOrder`` through v6: no order half-exists, no order id is used twice.

:class:`OrderGate` is ``placeOrder`` on the manager's ``IB`` (routed there by
:class:`~v6.orders.ib_adapter.IbAsyncOrders`); in order, it:

1. refuses at once with :class:`~v6.errors.NotConnected` (a ``ConnectionError``) when the socket
   is down, or while the manager is CONNECTING (socket up, reconciliation not finished: the
   Trades are being re-bound and an order now could race its own recovery). Nothing reaches the
   gateway or the journal. While DEGRADED (1100) orders go through: TWS queues them;
2. stamps an ``orderRef`` (``v6-<session>-<n>``) on an order that has none;
3. for a NEW order, takes the id from ib_async's sequence (raised at each handshake above every
   id already sent) and refuses one at or below an id already sent
   (:class:`~v6.errors.OrderIdReused`); then records it in the journal as sent and pending
   (UNKNOWN until the gateway acknowledges it) BEFORE ib_async writes the bytes; if the journal
   cannot record it (disk full, read-only file), :class:`~v6.errors.JournalWriteFailed` is
   raised and nothing is sent: an order the journal does not know could not be recovered;
4. calls ib_async's own ``placeOrder`` and registers the Trade it returns (a modify of a known
   order goes straight to step 4).

The orderRef rule: an application's own orderRef is kept as it is, and may repeat (a strategy
tag); v6 finds orders by permId and (client id, order id), and by orderRef only when exactly one
held order has it (:mod:`v6.orders.registry`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ib_async import Contract, Order, Trade

from v6.errors import NotConnected
from v6.orders.ids import OrderRefs
from v6.orders.tracker import FillTracker

#: Why an order is refused now (None: it may go out).
Refusal = Callable[[], str | None]


class OrderGate:
    """The manager's ``ib.placeOrder`` (see the module docstring)."""

    def __init__(
        self,
        tracker: FillTracker,
        refusal: Refusal,
        rng: random.Random,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._tracker = tracker
        self._refusal = refusal
        self._wall_clock = wall_clock
        self.refs = OrderRefs(rng)

    def place_order(self, contract: Contract, order: Order) -> Trade:
        why = self._refusal()
        if why is not None:
            raise NotConnected(f"order not sent: {why}")
        self.refs.stamp(order)
        tracker = self._tracker
        port = tracker.port
        if order.orderId and port.is_known_order(order):
            return port.place_order(contract, order)  # a modify: ib_async's rules
        order_id = order.orderId or port.take_order_id()
        tracker.allocator.note_sent(order_id)
        tracker.journal.record_order_sent(  # raises JournalWriteFailed: nothing sent
            tracker.endpoint(), order_id, order.orderRef, self._wall_clock()
        )
        order.orderId = order_id
        trade = port.place_order(contract, order)
        tracker.placed(trade)
        return trade
