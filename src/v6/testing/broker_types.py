"""The simulated broker's vocabulary: order states, records, the events it emits and TWS's texts.

Pure data. :mod:`v6.testing.broker` produces these; the gateway turns each event into a message
with :mod:`v6.protocol.orders_messages` and sends it to ``event.client_id``'s socket, if connected.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import Enum
from typing import Final
from zoneinfo import ZoneInfo

from v6.protocol.codec import ContractSpec
from v6.protocol.codes import ErrorCode
from v6.protocol.codes import cancel_finished_text as _cancel_finished_text
from v6.protocol.orders_messages import CommissionSpec, ExecutionSpec, OrderSpec, OrderStatusSpec
from v6.protocol.orders_requests import ExecutionFilter


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


def cancel_finished_text(order_id: int, state: OrderState) -> str:
    return _cancel_finished_text(order_id, state.value)


ORDER_ERROR_CODES: Final = frozenset(
    {
        ErrorCode.DUPLICATE_ORDER_ID,
        ErrorCode.PRICE_NOT_ON_TICK,
        ErrorCode.ORDER_REJECTED,
        ErrorCode.ORDER_CANCELLED,
        ErrorCode.CANCEL_UNKNOWN_ORDER,
        ErrorCode.CANCEL_FINISHED_ORDER,
    }
)


def instrument_id(contract: ContractSpec) -> int:
    """The contract id, or a stable stand-in for an unqualified contract (``con_id`` 0), so that
    ``Stock("AAPL", "SMART", "USD")`` trades against one quote."""
    if contract.con_id:
        return contract.con_id
    key = f"{contract.symbol}|{contract.sec_type}|{contract.currency}".upper()
    return -(zlib.crc32(key.encode()) or 1)


_FILTER_TIME_RE: Final = re.compile(r"(\d{8})[ -](\d{2}:\d{2}(?::\d{2})?)(?: (\S+))?")


def parse_filter_time(text: str, default_tz: tzinfo) -> datetime:
    """``yyyymmdd hh:mm:ss`` or ``yyyymmdd-hh:mm:ss`` (seconds optional), then an optional zone
    name; without a zone, in ``default_tz``. Raises :class:`ValueError` for anything else."""
    match = _FILTER_TIME_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"execution filter time {text!r} is not 'yyyymmdd hh:mm:ss'")
    day, clock, zone = match.groups()
    fmt = "%Y%m%d %H:%M:%S" if clock.count(":") == 2 else "%Y%m%d %H:%M"
    naive = datetime.strptime(f"{day} {clock}", fmt)
    return naive.replace(tzinfo=ZoneInfo(zone) if zone else default_tz)


def execution_matches(
    execution: ExecutionSpec, flt: ExecutionFilter, since: datetime | None
) -> bool:
    """TWS's ExecutionFilter: every non-empty field must match (``side`` BUY/SELL vs BOT/SLD)."""
    contract = execution.contract
    side = {"BUY": "BOT", "SELL": "SLD"}.get(flt.side.upper(), flt.side.upper())
    checks = (
        not flt.client_id or execution.client_id == flt.client_id,
        not flt.acct_code or execution.account.upper() == flt.acct_code.upper(),
        not flt.symbol or contract.symbol.upper() == flt.symbol.upper(),
        not flt.sec_type or contract.sec_type.upper() == flt.sec_type.upper(),
        not flt.exchange or execution.exchange.upper() == flt.exchange.upper(),
        not side or execution.side == side,
        since is None or execution.time >= since,
    )
    return all(checks)
