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
) -> None:
    """A completed order's final status, which ib_async never applies to a bound Trade; its
    events fire as ib_async fires them for an orderStatus (``announce``: ``ib.orderStatusEvent``
    first)."""
    current = trade.orderStatus
    if current.status == status or not status:
        return
    current.status = status
    if filled is not None:
        current.filled = float(filled)
        current.remaining = max(0.0, float(trade.order.totalQuantity) - float(filled))
    trade.log.append(TradeLogEntry(when, status, "v6: completed order"))
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


def append_fill(trade: Trade, fill: Fill) -> None:
    """Put a fill on ``trade.fills`` with the log line ib_async writes for one."""
    e = fill.execution
    trade.fills.append(fill)
    status = trade.orderStatus.status
    trade.log.append(TradeLogEntry(fill.time, status, f"Fill {e.shares}@{e.price}"))


def trade_from_execution(fill: Fill) -> Trade:
    """A Trade for a fill whose order nobody knows (placed by an earlier process, say)."""
    e = fill.execution
    action = "BUY" if e.side == "BOT" else "SELL"
    order = Order(orderId=e.orderId, clientId=e.clientId, permId=e.permId,
                  orderRef=e.orderRef, action=action)  # fmt: skip
    return Trade(fill.contract, order, OrderStatus(orderId=e.orderId, permId=e.permId))


def is_late(current: OrderStatus, status: str, filled: float) -> bool:
    """An orderStatus older than what the Trade shows: fewer shares filled, or not done after
    done (TWS never reopens a filled or cancelled order)."""
    if float(filled) < float(current.filled):
        return True
    return current.status in OrderStatus.DoneStates and status not in OrderStatus.DoneStates


def reported_execution(e: Execution) -> ReportedExecution:
    return ReportedExecution(e.execId, e.permId, e.clientId, e.orderId, e.orderRef,
                             e.time.timestamp())  # fmt: skip


def reported_order(order: Order, status: str) -> ReportedOrder:
    return ReportedOrder(order.permId, order.clientId, order.orderId, order.orderRef, status)
