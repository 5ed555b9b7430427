"""What ib_async would do to a ``Trade``, done by hand where it does not, and its objects read as
:mod:`v6.orders.reconcile`'s plain values.

The :class:`~v6.orders.tracker.FillTracker` decides *when*; these functions only say *how*: the
status, log entry and events of a completed or never-received order, a Trade built from an
execution nobody knows, and the conversions for reconciliation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ib_async import Execution, Fill, Order, OrderStatus, Trade, TradeLogEntry

from v6.orders.reconcile import ReportedExecution, ReportedOrder

#: Log message on the Trade of an order the gateway proved it never received.
NOT_RECEIVED = "v6: never reached the gateway (connection lost); not re-sent"


def apply_final_status(
    trade: Trade,
    status: str,
    filled: float | None,
    when: datetime,
    announce: Callable[[Trade], None],
    why: str = "v6: completed order",
) -> None:
    """A completed order's final status, which ib_async never applies to a bound Trade (and
    applies with ``filled`` 0 to the Trade it builds); its events fire as ib_async fires them
    for an orderStatus (``announce``: ``ib.orderStatusEvent`` first) when the status changes.
    The quantities are applied even when it does not."""
    current = trade.orderStatus
    if not status:
        return
    if filled is not None:
        current.filled = float(filled)
        current.remaining = max(0.0, float(trade.order.totalQuantity) - float(filled))
    fill_quantities(trade)
    if current.status == status:
        return
    current.status = status
    trade.log.append(TradeLogEntry(when, status, why))
    announce(trade)
    trade.statusEvent.emit(trade)
    if status == OrderStatus.Filled:
        trade.filledEvent.emit(trade)
    elif status == OrderStatus.Cancelled:
        trade.cancelledEvent.emit(trade)


def mark_not_received(trade: Trade, when: datetime) -> None:
    """The order never reached the gateway: Inactive, said so in its log, not re-sent."""
    trade.orderStatus.status = OrderStatus.Inactive
    trade.log.append(TradeLogEntry(when, OrderStatus.Inactive, NOT_RECEIVED))
    trade.statusEvent.emit(trade)


def append_fill(trade: Trade, fill: Fill, *, log: bool = True) -> None:
    """Put a fill on ``trade.fills`` with the log line ib_async writes for one (``log``: unless
    ib_async wrote it already)."""
    trade.fills.append(fill)
    if not log:
        return
    e = fill.execution
    status = trade.orderStatus.status
    trade.log.append(TradeLogEntry(fill.time, status, f"Fill {e.shares}@{e.price}"))


#: Log message on a Trade v6 built from an execution of an order nobody named.
BUILT = "v6: built from an execution; the order was placed elsewhere, its own status unknown"


def trade_from_execution(fill: Fill) -> Trade:
    """A Trade for a fill whose order nobody names (placed in TWS or by another client): what
    is known is that it traded, so it shows Filled with the execution's cumulative quantity
    (never "working"); the order's own orderStatus replaces this if it ever comes."""
    e = fill.execution
    action = "BUY" if e.side == "BOT" else "SELL"
    order = Order(orderId=e.orderId, clientId=e.clientId, permId=e.permId,
                  orderRef=e.orderRef, action=action, totalQuantity=e.cumQty)  # fmt: skip
    status = OrderStatus(
        orderId=e.orderId, status=OrderStatus.Filled, filled=e.cumQty, avgFillPrice=e.avgPrice,
        lastFillPrice=e.price, permId=e.permId,
    )  # fmt: skip
    trade = Trade(fill.contract, order, status)
    trade.log.append(TradeLogEntry(fill.time, OrderStatus.Filled, BUILT))
    return trade


def adopt_ids(trade: Trade, fill: Fill) -> None:
    """A Trade built from a completed order has no order id: its executions have it."""
    e = fill.execution
    if not trade.order.orderId and e.orderId:
        trade.order.orderId = trade.orderStatus.orderId = e.orderId
        trade.order.clientId = e.clientId


def grow_built(trade: Trade, fill: Fill) -> None:
    """A Trade built from executions learns of one more: its cumulative quantity."""
    e = fill.execution
    status = trade.orderStatus
    if float(e.cumQty) > float(status.filled):
        status.filled = float(e.cumQty)
        trade.order.totalQuantity = float(e.cumQty)
        status.avgFillPrice = float(e.avgPrice)
        status.lastFillPrice = float(e.price)


def fill_quantities(trade: Trade) -> None:
    """Quantities TWS did not send (a completed order has no average price, a built Trade
    learns of later fills) taken from ``trade.fills``; never lowers what TWS said."""
    fills = trade.fills
    shares = sum(float(f.execution.shares) for f in fills)
    status = trade.orderStatus
    if shares and shares > float(status.filled) and status.status == OrderStatus.Filled:
        status.filled = shares
    if shares and not status.avgFillPrice:
        status.avgFillPrice = sum(float(f.execution.shares) * f.execution.price
                                  for f in fills) / shares  # fmt: skip


def is_late(current: OrderStatus, status: str, filled: float) -> bool:
    """An orderStatus older than what the Trade shows: fewer shares filled, or not done after
    done (TWS never reopens a filled or cancelled order)."""
    if float(filled) < float(current.filled):
        return True
    return current.status in OrderStatus.DoneStates and status not in OrderStatus.DoneStates


def reported_execution(e: Execution) -> ReportedExecution:
    return ReportedExecution(e.execId, e.permId, e.clientId, e.orderId, e.orderRef,
                             e.time.timestamp())  # fmt: skip


def reported_order(order: Order, status: str, filled: float | None = None) -> ReportedOrder:
    return ReportedOrder(order.permId, order.clientId, order.orderId, order.orderRef, status,
                         filled or 0.0)  # fmt: skip
