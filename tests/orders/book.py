"""A scripted order book behind a real FakeGateway (tests only).

The gateway of this branch does not trade yet (issue 12), so these tests script what a trading
TWS would send: the gateway's own application answers every other request, and this book (a fake
of OUR gateway's app seam, not of IB) answers reqOpenOrders / reqCompletedOrders /
reqExecutions and pushes live openOrder / orderStatus / execDetails / commissionReport frames to
connected clients, all through the real socket and ib_async's real decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ib_async import Trade

from v6.protocol import messages
from v6.protocol.orders_messages import (
    CommissionSpec,
    ExecutionSpec,
    OrderSpec,
    OrderStatusSpec,
    commission_report,
    completed_order,
    exec_details,
    open_order,
    order_status,
)
from v6.protocol.requests import ContractSpec
from v6.testing import FakeGateway
from v6.testing.gateway import Phase

CONTRACT = ContractSpec(con_id=265598, symbol="AAPL", sec_type="STK", exchange="SMART",
                        currency="USD", local_symbol="AAPL", trading_class="NMS")  # fmt: skip
ACCOUNT = "DU123456"


@dataclass
class Booked:
    spec: OrderSpec
    filled: float = 0.0
    status: str = "Submitted"

    @property
    def done(self) -> bool:
        return self.status in ("Filled", "Cancelled")

    def status_spec(self, last_price: float = 0.0) -> OrderStatusSpec:
        s = self.spec
        return OrderStatusSpec(s.order_id, self.status, self.filled,
                               s.total_quantity - self.filled, last_price, s.perm_id, 0,
                               last_price, s.client_id)  # fmt: skip


class Book:
    """The orders and executions of the day, as the scripted gateway reports them."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.orders: dict[int, Booked] = {}  # perm id -> order
        self.executions: list[ExecutionSpec] = []
        self.commissions: dict[str, CommissionSpec] = {}
        self.withhold_commissions: set[str] = set()  # never reported (lost)
        self._perm = 9000
        self._count = 0
        ctx: Any = gateway._ctx  # our own gateway's seam
        self._ctx = ctx
        self._handle = ctx.app.handle
        ctx.app.handle = self._answer

    # -------------------------------------------------------------- scripting

    def ack(self, trade: Trade, *, live: bool = True) -> Booked:
        """The gateway accepted the order (Submitted)."""
        o = trade.order
        self._perm += 1
        spec = OrderSpec(o.orderId, o.clientId, self._perm, CONTRACT, o.action,
                         float(o.totalQuantity), o.orderType, account=ACCOUNT,
                         order_ref=o.orderRef)  # fmt: skip
        booked = self.orders[spec.perm_id] = Booked(spec)
        if live:
            self.push(open_order(spec, booked.status), order_status(booked.status_spec()))
        return booked

    def fill(self, booked: Booked, shares: float, price: float = 100.0, *,
             live: bool = True) -> str:  # fmt: skip
        self._count += 1
        booked.filled += shares
        if booked.filled >= booked.spec.total_quantity:
            booked.status = "Filled"
        s = booked.spec
        execution = ExecutionSpec(
            f"0000e0d5.{self._count:08x}.01.01", s.order_id, s.client_id, s.perm_id, CONTRACT,
            datetime.now(UTC), ACCOUNT, "ISLAND", "BOT" if s.action == "BUY" else "SLD",
            shares, price, booked.filled, price, order_ref=s.order_ref,
        )  # fmt: skip
        self._record(execution)
        if live:
            self.push(order_status(booked.status_spec(price)), exec_details(-1, execution))
            self._push_commission(execution.exec_id)
        return execution.exec_id

    def correct(self, exec_id: str, *, price: float, live: bool = True) -> str:
        original = next(e for e in self.executions if e.exec_id == exec_id)
        stem, _, suffix = exec_id.rpartition(".")
        corrected = replace(original, exec_id=f"{stem}.{int(suffix) + 1:02d}", price=price)
        self._record(corrected)
        if live:
            self.push(exec_details(-1, corrected))
            self._push_commission(corrected.exec_id)
        return corrected.exec_id

    def push(self, *frames: bytes) -> int:
        """Send frames to every API-ready client now; returns how many clients."""
        ready = [s for s in self._ctx.sessions if s.phase is Phase.READY]
        for session in ready:
            for frame in frames:
                session.send(frame)
        return len(ready)

    # -------------------------------------------------------------- internals

    def _record(self, execution: ExecutionSpec) -> None:
        self.executions.append(execution)
        self.commissions[execution.exec_id] = CommissionSpec(execution.exec_id, 1.0)

    def _push_commission(self, exec_id: str) -> None:
        if exec_id not in self.withhold_commissions:
            self.push(commission_report(self.commissions[exec_id]))

    def _answer(self, client: Any, request: Any) -> list[bytes]:
        name = type(request).__name__
        if name == "ReqOpenOrders":
            working = [b for b in self.orders.values() if not b.done]
            out = [f for b in working for f in (open_order(b.spec, b.status),
                                                 order_status(b.status_spec()))]  # fmt: skip
            return [*out, messages.open_order_end()]
        if name == "ReqCompletedOrders":
            out = [completed_order(b.spec, b.status, b.filled, "20240102 10:00:00", "")
                   for b in self.orders.values() if b.done]  # fmt: skip
            return [*out, messages.completed_orders_end()]
        if name == "ReqExecutions":
            out = []
            for e in self.executions:
                out.append(exec_details(request.req_id, e))
                if e.exec_id not in self.withhold_commissions:
                    out.append(commission_report(self.commissions[e.exec_id]))
            return [*out, messages.exec_details_end(request.req_id)]
        result: list[bytes] = self._handle(client, request)
        return result
