"""The trading room of the fake gateway's TWS application: order requests, the start-up sync of
orders, executions and positions, account figures merged with the broker's, and broker events as
wire messages.

No sockets and no event loop: requests and the :class:`~v6.testing.broker.Broker` in, framed
replies out. The broker lives at "IB" (one per gateway, surviving stop / start); what it reports
to other clients than the requester (fills, copies for client 0) leaves through
:func:`encode_event`, routed by the gateway's context.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import assert_never

from loguru import logger

from v6.protocol import codec
from v6.protocol.codec import (
    CancelOrder,
    CancelPositions,
    PlaceOrder,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqExecutions,
    ReqGlobalCancel,
    ReqOpenOrders,
    ReqPositions,
)
from v6.protocol.codes import ErrorCode, rejected_text
from v6.protocol.orders_messages import (
    ExecutionSpec,
    commission_report,
    completed_order,
    exec_details,
    open_order,
    order_status,
    time_text,
)
from v6.protocol.orders_requests import ORDER_SERVER_VERSION
from v6.testing.broker import (
    AccountState,
    AccountValue,
    Broker,
    BrokerEvent,
    CommissionReportEvent,
    ErrorEvent,
    ExecDetailsEvent,
    OpenOrderEvent,
    OrderRecord,
    OrderStatusEvent,
    Position,
)
from v6.testing.gateway.clients import ClientState
from v6.testing.gateway.config import GatewaySettings

TradingRequest = (
    PlaceOrder
    | CancelOrder
    | ReqGlobalCancel
    | ReqOpenOrders
    | ReqAutoOpenOrders
    | ReqCompletedOrders
    | ReqExecutions
    | ReqPositions
    | CancelPositions
)
_Replies = list[bytes]
TEXT_BAD_FILTER = "Error validating request:-'bE' : cause - invalid execution filter time"
TEXT_OLD_VERSION = f"server version below {ORDER_SERVER_VERSION} is not simulated"


def new_broker(settings: GatewaySettings) -> Broker:
    """The gateway's broker, configured from its settings; times in UTC from ``wall_clock``."""
    return Broker(
        clock=lambda: datetime.fromtimestamp(settings.wall_clock(), UTC),
        seed=settings.seed, fill_size=settings.fill_size,
        account=settings.account_state.accounts[0],
        commission_per_share=settings.commission_per_share,
        min_commission=settings.min_commission, next_order_id=max(1, settings.next_order_id),
    )  # fmt: skip


class Trading:
    """Order and position requests of one client -> its direct replies (events go separately)."""

    def __init__(self, settings: GatewaySettings, broker: Broker) -> None:
        self.settings = settings
        self.broker = broker

    def handle(self, client: ClientState, request: TradingRequest) -> _Replies:
        broker, client_id = self.broker, client.client_id
        match request:
            case PlaceOrder():
                if client.server_version < ORDER_SERVER_VERSION:
                    return [client.error(request.order_id, ErrorCode.ORDER_REJECTED,
                                         rejected_text(TEXT_OLD_VERSION))]  # fmt: skip
                broker.place(client_id, request)
            case CancelOrder(order_id=order_id):
                broker.cancel(client_id, order_id)
            case ReqGlobalCancel():
                broker.global_cancel()
            case ReqAutoOpenOrders(auto_bind=auto_bind):
                broker.set_auto_open_orders(client_id, auto_bind)
            case ReqOpenOrders(all_clients=all_clients):
                records = broker.open_orders(None if all_clients else client_id)
                return [*_order_messages(records), codec.open_order_end()]
            case ReqCompletedOrders():
                return [*self._completed(client_id), codec.completed_orders_end()]
            case ReqExecutions():
                return self._executions(client, request)
            case ReqPositions() | CancelPositions():
                return self._positions(client, request)
            case _:
                assert_never(request)
        return []

    def _positions(self, client: ClientState, request: ReqPositions | CancelPositions) -> _Replies:
        client.positions_subscribed = isinstance(request, ReqPositions)
        if not client.positions_subscribed:
            return []
        out = [codec.position_data(p.account, p.contract, p.quantity, p.avg_cost)
               for p in positions(self.settings.account_state, self.broker)]  # fmt: skip
        return [*out, codec.position_end()]

    def _completed(self, client_id: int) -> _Replies:
        now = time_text(self.broker.now())
        return [
            completed_order(r.spec, r.status, r.filled, now, r.status)
            for r in self.broker.completed_orders()
            if not client_id or r.client_id == client_id
        ]

    def _executions(self, client: ClientState, request: ReqExecutions) -> _Replies:
        try:
            found = self.broker.executions_for(client.client_id, request.filter)
        except ValueError as exc:
            logger.info("fake gateway: {} bad execution filter: {}", client.peer, exc)
            return [client.error(request.req_id, ErrorCode.VALIDATION_ERROR, TEXT_BAD_FILTER)]
        out = []
        for execution, commission in found:
            out.append(exec_details(request.req_id, execution))
            out.append(commission_report(commission))
        return [*out, codec.exec_details_end(request.req_id)]


def _order_messages(records: list[OrderRecord]) -> _Replies:
    out = []
    for record in records:
        out.append(open_order(record.spec, record.status))
        out.append(order_status(record.status_spec()))
    return out


def encode_event(event: BrokerEvent, server_version: int) -> bytes:
    """One broker event as the message TWS sends for it."""
    match event:
        case OpenOrderEvent(order=order, status=status):
            return open_order(order, status)
        case OrderStatusEvent(status=status):
            return order_status(status)
        case ExecDetailsEvent(execution=execution):
            return exec_details(codec.NO_REQUEST_ID, execution)
        case CommissionReportEvent(commission=commission):
            return commission_report(commission)
        case ErrorEvent(req_id=req_id, code=code, text=text):
            return codec.error_message(server_version, req_id, code, text)
        case _:
            assert_never(event)


def position_updates(broker: Broker, client: ClientState, execution: ExecutionSpec) -> _Replies:
    """What a client subscribed to positions / account updates gets after ``execution``."""
    position = broker.position(execution)
    if position is None:
        return []
    out = []
    if client.positions_subscribed:
        out.append(codec.position_data(position.account, position.contract, position.quantity,
                                       position.avg_cost))  # fmt: skip
    if client.account_updates == position.account:
        p = position
        out.append(codec.portfolio_value(p.account, p.contract, p.quantity, p.price,
                                         p.market_value, p.avg_cost, p.unrealized_pnl,
                                         p.realized_pnl))  # fmt: skip
        out += [codec.account_value(v.key, v.value, v.currency, p.account)
                for v in broker.account_values()]  # fmt: skip
    return out


# ---- account figures: the configured AccountState, with the broker's fills merged over it


def _key(p: Position) -> tuple[str, int, str]:
    return (p.account, p.con_id, p.symbol)


def positions(state: AccountState, broker: Broker) -> tuple[Position, ...]:
    """Configured positions, replaced by the broker's where it traded the same contract."""
    traded = broker.positions()
    keys = {_key(p) for p in traded}
    return tuple(p for p in state.positions if _key(p) not in keys) + traded


def positions_for(state: AccountState, broker: Broker, account: str) -> tuple[Position, ...]:
    return tuple(p for p in positions(state, broker) if p.account == account)


def values_for(state: AccountState, broker: Broker, account: str) -> tuple[AccountValue, ...]:
    """The account's values; once the broker has filled anything, its cash, NetLiquidation and
    GrossPositionValue replace the configured ones for the broker's account."""
    values = state.values_for(account)
    if account != broker.account or not broker.executions:
        return values
    merged = {v.key: v for v in values}
    merged.update((v.key, v) for v in broker.account_values())
    return tuple(merged.values())
