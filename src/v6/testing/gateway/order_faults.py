"""The order faults: what a client may miss or see in the wrong order of the simulated broker's
events (``on_events``), and a socket that dies right after a placeOrder. Each is one
:class:`~.faults.Fault` subclass; ``FakeGateway``'s order-fault methods are shortcuts to them
(:mod:`.controls`)."""

from __future__ import annotations

from v6.protocol.ids import ClientMessage
from v6.testing.broker import (
    BrokerEvent,
    CommissionReportEvent,
    ExecDetailsEvent,
    OrderStatusEvent,
)
from v6.testing.gateway.faults import Fault, HookVerdict


class HoldOrderStatus(Fault):
    """orderStatus messages are held back; when the fault is removed each comes late, twice (a
    late and a repeated status, both seen from real gateways); ``newest_first``: in reverse
    order, so an older status (Submitted) arrives after a newer one (Filled)."""

    def __init__(self, *, newest_first: bool = False) -> None:
        self._held: list[BrokerEvent] = []
        self._newest_first = newest_first

    def __repr__(self) -> str:
        order = ", newest_first=True" if self._newest_first else ""
        return f"HoldOrderStatus(held={len(self._held)}{order})"

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        self._held += [e for e in events if isinstance(e, OrderStatusEvent)]
        return [e for e in events if not isinstance(e, OrderStatusEvent)]

    def release(self) -> list[BrokerEvent]:
        held, self._held = self._held, []
        if self._newest_first:
            held.reverse()
        return [event for event in held for _ in range(2)]


class DropCommissionReports(Fault):
    """Live executions come without their commissionReport (reqExecutions still sends it)."""

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        return [e for e in events if not isinstance(e, CommissionReportEvent)]


class DropExecutions(Fault):
    """Live execDetails and their commissionReports are lost (reqExecutions still sends them):
    what a client misses while TWS is cut off from IB (1100)."""

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        fills = (ExecDetailsEvent, CommissionReportEvent)
        return [e for e in events if not isinstance(e, fills)]


class ExecBeforeOpenOrder(Fault):
    """In each batch of broker events, executions (and their reports) go first: execDetails
    arrives before the order's openOrder / orderStatus."""

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        fills = (ExecDetailsEvent, CommissionReportEvent)
        return [e for e in events if isinstance(e, fills)] + [
            e for e in events if not isinstance(e, fills)
        ]


class CloseAfterPlaceOrder(Fault):
    """The socket dies right after a placeOrder is read: the order exists at the broker, its
    client never hears of it."""

    def on_handled(self, msg_id: int) -> HookVerdict:
        return HookVerdict.CLOSE if msg_id == ClientMessage.PLACE_ORDER else HookVerdict.PASS
