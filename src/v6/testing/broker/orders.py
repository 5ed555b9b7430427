"""Orders at the simulated broker: their states, the record kept of each, and how a placeOrder
becomes one (the checks, the first state, the order as TWS reports it). Pure data and functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from v6.protocol.orders_messages import OrderSpec, OrderStatusSpec
from v6.protocol.orders_requests import PlaceOrder


class OrderState(Enum):
    """TWS order statuses the broker uses (their ``value`` is TWS's text)."""

    INACTIVE = "Inactive"
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    FILLED = "Filled"
    CANCELLED = "Cancelled"

    @property
    def done(self) -> bool:
        return self in _DONE


_DONE: Final = frozenset({OrderState.FILLED, OrderState.CANCELLED})

TRANSITIONS: Final[dict[OrderState, frozenset[OrderState]]] = {
    OrderState.INACTIVE: frozenset(
        {OrderState.PRE_SUBMITTED, OrderState.SUBMITTED, OrderState.CANCELLED}
    ),
    OrderState.PRE_SUBMITTED: frozenset(
        {OrderState.SUBMITTED, OrderState.FILLED, OrderState.CANCELLED}
    ),
    OrderState.SUBMITTED: frozenset({OrderState.FILLED, OrderState.CANCELLED}),
    OrderState.FILLED: frozenset(),
    OrderState.CANCELLED: frozenset(),
}
"""Allowed status changes (a status may also stay where it is: a modify or a partial fill)."""


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order at "IB": a snapshot; the broker replaces it on every change."""

    spec: OrderSpec
    state: OrderState
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    triggered: bool = False
    """A stop order whose stop price was touched (it now fills as a market order)."""

    @property
    def order_id(self) -> int:
        return self.spec.order_id

    @property
    def client_id(self) -> int:
        return self.spec.client_id

    @property
    def perm_id(self) -> int:
        return self.spec.perm_id

    @property
    def status(self) -> str:
        return self.state.value

    @property
    def remaining(self) -> float:
        return self.spec.total_quantity - self.filled

    def status_spec(self) -> OrderStatusSpec:
        return OrderStatusSpec(
            self.order_id, self.status, self.filled, self.remaining, self.avg_fill_price,
            self.perm_id, self.spec.parent_id, self.last_fill_price, self.client_id,
        )  # fmt: skip


# ---- placeOrder -> order: the checks and the record the broker keeps

ORDER_TYPES: Final = frozenset({"MKT", "LMT", "STP"})
TIFS: Final = frozenset({"", "DAY", "GTC"})
ACTIONS: Final = frozenset({"BUY", "SELL"})


def reject_reason(request: PlaceOrder) -> str:
    checks = (
        (
            request.order_type.upper() in ORDER_TYPES,
            f"unsupported order type {request.order_type!r}",
        ),
        (request.action.upper() in ACTIONS, f"unknown action {request.action!r}"),
        (request.tif.upper() in TIFS, f"unsupported time in force {request.tif!r}"),
        (request.total_quantity > 0, "order quantity must be positive"),
        (
            request.order_type.upper() != "LMT" or request.lmt_price is not None,
            "limit price missing",
        ),
        (
            request.order_type.upper() != "STP" or request.aux_price is not None,
            "stop price missing",
        ),
        (not request.what_if, "what-if orders are not simulated"),
    )
    return next((reason for ok, reason in checks if not ok), "")


def initial_state(request: PlaceOrder) -> OrderState:
    if not request.transmit:
        return OrderState.INACTIVE
    return OrderState.PRE_SUBMITTED if request.order_type.upper() == "STP" else OrderState.SUBMITTED


def order_spec(request: PlaceOrder, client_id: int, perm_id: int, account: str) -> OrderSpec:
    return OrderSpec(
        order_id=request.order_id, client_id=client_id, perm_id=perm_id,
        contract=request.contract, action=request.action.upper(),
        total_quantity=request.total_quantity, order_type=request.order_type.upper(),
        lmt_price=request.lmt_price, aux_price=request.aux_price, tif=request.tif or "DAY",
        account=account, order_ref=request.order_ref, oca_group=request.oca_group,
        parent_id=request.parent_id, outside_rth=request.outside_rth,
    )  # fmt: skip
