"""What the simulated broker tells its clients: one typed event per message, addressed to a
client id. Pure data.

:class:`~v6.testing.broker.simulator.Broker` queues these; the gateway turns each into the message
TWS sends for it and writes it to ``event.client_id``'s socket, if that client is connected.
"""

from __future__ import annotations

from dataclasses import dataclass

from v6.protocol.orders_messages import CommissionSpec, ExecutionSpec, OrderSpec, OrderStatusSpec


@dataclass(frozen=True, slots=True)
class OpenOrderEvent:
    client_id: int
    order: OrderSpec
    status: str


@dataclass(frozen=True, slots=True)
class OrderStatusEvent:
    client_id: int
    status: OrderStatusSpec


@dataclass(frozen=True, slots=True)
class ExecDetailsEvent:
    """Sent as execDetails with request id -1 (unsolicited)."""

    client_id: int
    execution: ExecutionSpec


@dataclass(frozen=True, slots=True)
class CommissionReportEvent:
    client_id: int
    commission: CommissionSpec


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """TWS error ``code`` for request / order id ``req_id``."""

    client_id: int
    req_id: int
    code: int
    text: str


BrokerEvent = (
    OpenOrderEvent | OrderStatusEvent | ExecDetailsEvent | CommissionReportEvent | ErrorEvent
)
