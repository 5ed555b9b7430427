"""Client -> server requests: typed values, each registered with its parser in one place.

A request type is a frozen dataclass decorated with :func:`request`, naming the message id(s) it
decodes, with a ``parse`` classmethod that reads the fields after the id (and after the version
field unless ``versioned=False``). :data:`Request` is the union of every registered type; a test
keeps the two in step, and the fake gateway's dispatch ends in ``assert_never`` so mypy flags a
registered request it does not handle.

Adding a request: one dataclass here (plus its id in :class:`ClientMessage` if new) and one
``case`` in the gateway's application.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, Self, TypeVar

from v6.errors import MalformedRequest
from v6.protocol.contract import ContractSpec
from v6.protocol.framing import MAX_SERVER_VERSION
from v6.protocol.ids import ClientMessage
from v6.protocol.orders_requests import (
    MIN_ORDER_SERVER_VERSION,
    CancelOrder,
    PlaceOrder,
    ReqExecutions,
    ReqGlobalCancel,
    parse_cancel_order,
    parse_global_cancel,
    parse_place_order,
    parse_req_executions,
)

if TYPE_CHECKING:
    from v6.protocol.framing import Message


_INT_RE: Final = re.compile(r"-?[0-9]{1,18}")
"""An integer field as IB's clients write it: ASCII digits only (``int()`` also takes Arabic-Indic
digits, spaces and underscores)."""


@dataclass(slots=True)
class Fields:
    """Cursor over a message's fields (after the id) that raises :class:`MalformedRequest` on
    misuse."""

    fields: tuple[str, ...]
    msg_id: int = 0
    pos: int = 1
    name: str = field(default="")
    server_version: int = MAX_SERVER_VERSION
    """The session's negotiated version (placeOrder's layout depends on it)."""

    def skip(self, n: int = 1) -> None:
        self.pos += n

    def more(self) -> bool:
        """True while unread fields remain (optional trailing fields)."""
        return self.pos < len(self.fields)

    def text(self) -> str:
        if self.pos >= len(self.fields):
            raise MalformedRequest(f"{self.name}: missing field {self.pos}")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def integer(self) -> int:
        raw = self.text()
        if not raw:
            return 0
        if _INT_RE.fullmatch(raw) is None:
            raise MalformedRequest(f"{self.name}: field {self.pos - 1} not an int: {raw!r}")
        return int(raw)

    def number(self) -> float:
        raw = self.text()
        try:
            if not raw.isascii():  # float() reads Unicode digits too
                raise ValueError(raw)
            return float(raw or 0)
        except ValueError:
            raise MalformedRequest(
                f"{self.name}: field {self.pos - 1} not a number: {raw!r}"
            ) from None

    def flag(self) -> bool:
        return self.integer() != 0

    def contract(self) -> ContractSpec:
        return ContractSpec(
            con_id=self.integer(),
            symbol=self.text(),
            sec_type=self.text(),
            last_trade_date=self.text(),
            strike=self.number(),
            right=self.text(),
            multiplier=self.text(),
            exchange=self.text(),
            primary_exchange=self.text(),
            currency=self.text(),
            local_symbol=self.text(),
            trading_class=self.text(),
        )

    def combo_legs(self, contract: ContractSpec) -> None:
        if contract.sec_type == "BAG":
            self.skip(4 * self.integer())


# --------------------------------------------------------------------------------------------------
# The registry


class _Parsable(Protocol):
    @classmethod
    def parse(cls, f: Fields) -> Self: ...


_R = TypeVar("_R", bound=_Parsable)

_PARSERS: Final[dict[int, Callable[[Fields], _Parsable]]] = {}
REGISTERED: Final[list[type]] = []
"""Every registered request type, in registration order (kept in step with :data:`Request`)."""


def request(*msg_ids: ClientMessage, versioned: bool = True) -> Callable[[type[_R]], type[_R]]:
    """Class decorator: ``cls.parse`` decodes messages with these ids.

    With ``versioned`` (most requests), the version field after the id is skipped first.
    """

    def register(cls: type[_R]) -> type[_R]:
        def parse(f: Fields) -> _Parsable:
            if versioned:
                f.skip()
            return cls.parse(f)

        for msg_id in msg_ids:
            if msg_id in _PARSERS:
                raise RuntimeError(f"{msg_id!r} registered twice")  # a programming error
            _PARSERS[msg_id] = parse
        REGISTERED.append(cls)
        return cls

    return register


def parse_request(message: Message, server_version: int = MAX_SERVER_VERSION) -> Request | None:
    """Typed request for ``message`` as written at ``server_version``; ``None`` for an id this
    codec does not decode.

    Raises :class:`MalformedRequest` if a field is missing or not numeric where it must be
    (placeOrder / cancelOrder: :class:`~v6.errors.MalformedOrder`, with the order id if read).
    """
    parser = _PARSERS.get(message.msg_id)
    if parser is None:
        return None
    f = Fields(message.fields, message.msg_id, name=_message_name(message.msg_id))
    f.server_version = server_version
    parsed = parser(f)
    return parsed  # type: ignore[return-value]  # every registered type is in Request (tested)


def _message_name(msg_id: int) -> str:
    try:
        return ClientMessage(msg_id).name
    except ValueError:
        return f"message {msg_id}"


# --------------------------------------------------------------------------------------------------
# Requests


class _NoFields:
    """A request with nothing after its version field."""

    __slots__ = ()

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls()


@request(ClientMessage.START_API)
@dataclass(frozen=True, slots=True)
class StartApi:
    client_id: int
    optional_capabilities: str = ""

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text() if f.more() else "")


@request(ClientMessage.REQ_IDS)
@dataclass(frozen=True, slots=True)
class ReqIds:
    num_ids: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer())


@request(ClientMessage.REQ_CURRENT_TIME)
@dataclass(frozen=True, slots=True)
class ReqCurrentTime(_NoFields):
    pass


@request(ClientMessage.REQ_MANAGED_ACCTS)
@dataclass(frozen=True, slots=True)
class ReqManagedAccounts(_NoFields):
    pass


@request(ClientMessage.REQ_POSITIONS)
@dataclass(frozen=True, slots=True)
class ReqPositions(_NoFields):
    pass


@request(ClientMessage.CANCEL_POSITIONS)
@dataclass(frozen=True, slots=True)
class CancelPositions(_NoFields):
    pass


@request(ClientMessage.REQ_OPEN_ORDERS, ClientMessage.REQ_ALL_OPEN_ORDERS)
@dataclass(frozen=True, slots=True)
class ReqOpenOrders:
    """reqOpenOrders or reqAllOpenOrders: both end with openOrderEnd."""

    all_clients: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(all_clients=f.msg_id == ClientMessage.REQ_ALL_OPEN_ORDERS)


@request(ClientMessage.REQ_AUTO_OPEN_ORDERS)
@dataclass(frozen=True, slots=True)
class ReqAutoOpenOrders:
    auto_bind: bool

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.flag())


@request(ClientMessage.REQ_COMPLETED_ORDERS, versioned=False)
@dataclass(frozen=True, slots=True)
class ReqCompletedOrders:
    api_only: bool

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.flag())


@request(ClientMessage.REQ_ACCOUNT_UPDATES)
@dataclass(frozen=True, slots=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.flag(), f.text() if f.more() else "")


@request(ClientMessage.REQ_ACCOUNT_UPDATES_MULTI)
@dataclass(frozen=True, slots=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text(), f.text(), f.flag())


@request(ClientMessage.CANCEL_ACCOUNT_UPDATES_MULTI)
@dataclass(frozen=True, slots=True)
class CancelAccountUpdatesMulti:
    req_id: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer())


@request(ClientMessage.REQ_ACCOUNT_SUMMARY)
@dataclass(frozen=True, slots=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: tuple[str, ...]

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text(), tuple(t for t in f.text().split(",") if t))


@request(ClientMessage.CANCEL_ACCOUNT_SUMMARY)
@dataclass(frozen=True, slots=True)
class CancelAccountSummary:
    req_id: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer())


@request(ClientMessage.REQ_MKT_DATA)
@dataclass(frozen=True, slots=True)
class ReqMktData:
    req_id: int
    contract: ContractSpec
    generic_ticks: str = ""
    snapshot: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        req_id = f.integer()
        contract = f.contract()
        f.combo_legs(contract)
        if f.flag():  # delta-neutral contract: conId, delta, price
            f.skip(3)
        generic_ticks = f.text()
        return cls(req_id, contract, generic_ticks, f.flag())


@request(ClientMessage.CANCEL_MKT_DATA)
@dataclass(frozen=True, slots=True)
class CancelMktData:
    req_id: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer())


# No version field at server version >= 124 (MIN_SERVER_VERSION).
@request(ClientMessage.REQ_HISTORICAL_DATA, versioned=False)
@dataclass(frozen=True, slots=True)
class ReqHistoricalData:
    req_id: int
    contract: ContractSpec
    end_date_time: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        req_id = f.integer()
        contract = f.contract()
        f.skip()  # includeExpired
        end, bar_size, duration = f.text(), f.text(), f.text()
        use_rth = f.flag()
        what_to_show = f.text()
        format_date = f.integer()
        f.combo_legs(contract)
        keep_up_to_date = f.flag() if f.more() else False
        return cls(req_id, contract, end, bar_size, duration, use_rth, what_to_show, format_date,
                   keep_up_to_date)  # fmt: skip


@request(ClientMessage.CANCEL_HISTORICAL_DATA)
@dataclass(frozen=True, slots=True)
class CancelHistoricalData:
    req_id: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer())


# Order requests: parsed by v6.protocol.orders_requests (whole messages, exact field counts).


def _register_whole(msg_id: ClientMessage, cls: type, parse: Callable[[Fields], object]) -> None:
    if msg_id in _PARSERS:
        raise RuntimeError(f"{msg_id!r} registered twice")
    _PARSERS[msg_id] = parse  # type: ignore[assignment]  # returns an order request
    REGISTERED.append(cls)


def _place_order(f: Fields) -> PlaceOrder:
    if f.server_version < MIN_ORDER_SERVER_VERSION:
        raise MalformedRequest(f"placeOrder below server version {MIN_ORDER_SERVER_VERSION}")
    return parse_place_order(f.fields, f.server_version)


def _cancel_order(f: Fields) -> CancelOrder:
    return parse_cancel_order(f.fields, max(f.server_version, MIN_ORDER_SERVER_VERSION))


_register_whole(ClientMessage.PLACE_ORDER, PlaceOrder, _place_order)
_register_whole(ClientMessage.CANCEL_ORDER, CancelOrder, _cancel_order)
_register_whole(ClientMessage.REQ_EXECUTIONS, ReqExecutions,
                lambda f: parse_req_executions(f.fields))  # fmt: skip
_register_whole(ClientMessage.REQ_GLOBAL_CANCEL, ReqGlobalCancel,
                lambda f: parse_global_cancel(f.fields))  # fmt: skip


Request = (
    StartApi
    | ReqIds
    | ReqCurrentTime
    | ReqManagedAccounts
    | ReqPositions
    | CancelPositions
    | ReqOpenOrders
    | ReqAutoOpenOrders
    | ReqCompletedOrders
    | ReqAccountUpdates
    | ReqAccountUpdatesMulti
    | CancelAccountUpdatesMulti
    | ReqExecutions
    | PlaceOrder
    | CancelOrder
    | ReqGlobalCancel
    | ReqAccountSummary
    | CancelAccountSummary
    | ReqMktData
    | CancelMktData
    | ReqHistoricalData
    | CancelHistoricalData
)
"""Every request type :func:`parse_request` returns (a test checks it matches the registry)."""
