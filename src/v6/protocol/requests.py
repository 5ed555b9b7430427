"""Client -> server requests: the one registry, and the one function that parses any of them.

Every request type is a frozen dataclass deriving from :class:`~v6.protocol.fields.ClientRequest`,
in the module of its room (:mod:`~v6.protocol.session_requests`,
:mod:`~v6.protocol.account_requests`, :mod:`~v6.protocol.market_requests`,
:mod:`~v6.protocol.orders_requests`), and is listed once in :data:`Request`. That union is the
registry: :func:`parse_request` finds each message's type through it, and the fake gateway's
dispatch ends in ``assert_never`` over it, so mypy flags a listed request the gateway does not
handle.

Adding a request::

    @dataclass(frozen=True, slots=True)
    class ReqMatchingSymbols(ClientRequest):  # 81,reqId,pattern
        msg_ids = (ClientMessage.REQ_MATCHING_SYMBOLS,)
        versioned = False  # no version field after the id

        req_id: int
        pattern: str

        @classmethod
        def parse(cls, f: Fields) -> Self:
            return cls(f.integer(), f.text())

(a cancel whose one field is the request id derives from
:class:`~v6.protocol.fields.CancelRequest` and needs only its ``msg_ids``), then its name in
:data:`Request` (a test finds a request type left out) and one ``case`` in the gateway's
application.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Final, TypeVar

from v6.protocol.account_requests import (
    CancelAccountSummary,
    CancelAccountUpdatesMulti,
    CancelPnL,
    CancelPnLSingle,
    CancelPositions,
    ReqAccountSummary,
    ReqAccountUpdates,
    ReqAccountUpdatesMulti,
    ReqPnL,
    ReqPnLSingle,
    ReqPositions,
)
from v6.protocol.fields import ClientRequest, Fields
from v6.protocol.framing import MAX_SERVER_VERSION, Message
from v6.protocol.market_requests import (
    CancelHistoricalData,
    CancelMktData,
    CancelRealTimeBars,
    CancelTickByTickData,
    ReqContractDetails,
    ReqHistoricalData,
    ReqMktData,
    ReqRealTimeBars,
    ReqTickByTickData,
)
from v6.protocol.orders_requests import (
    CancelOrder,
    PlaceOrder,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqExecutions,
    ReqGlobalCancel,
    ReqOpenOrders,
)
from v6.protocol.session_requests import ReqCurrentTime, ReqIds, ReqManagedAccounts, StartApi

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
    | ReqRealTimeBars
    | CancelRealTimeBars
    | ReqTickByTickData
    | CancelTickByTickData
    | ReqContractDetails
    | ReqPnL
    | CancelPnL
    | ReqPnLSingle
    | CancelPnLSingle
)
"""Every request type :func:`parse_request` returns: the registry."""

REGISTERED: Final[tuple[type[Request], ...]] = typing.get_args(Request)
"""The registered request types, in :data:`Request`'s order."""

_T = TypeVar("_T", bound=type[ClientRequest])


def index_by_message_id(types: Iterable[_T]) -> dict[int, _T]:
    """Message id -> the type that decodes it. Raises :class:`RuntimeError` (a programming error)
    if two types claim one id."""
    by_id: dict[int, _T] = {}
    for cls in types:
        for msg_id in cls.msg_ids:
            if msg_id in by_id:
                raise RuntimeError(
                    f"{msg_id!r} registered twice: {by_id[msg_id].__name__}, {cls.__name__}"
                )
            by_id[msg_id] = cls
    return by_id


_PARSERS: Final = index_by_message_id(REGISTERED)
"""Message id -> the request type whose ``parse`` reads it."""


def parse_request(message: Message, server_version: int = MAX_SERVER_VERSION) -> Request | None:
    """Typed request for ``message`` as written at ``server_version``; ``None`` for an id this
    codec does not decode.

    Raises :class:`~v6.errors.MalformedRequest` if a field is missing or not numeric where it must
    be (placeOrder / cancelOrder: :class:`~v6.errors.MalformedOrder`, with the order id if read).
    """
    request_type = _PARSERS.get(message.msg_id)
    if request_type is None:
        return None
    f = Fields(message.fields, message.msg_id, server_version, request_type.for_order)
    if request_type.versioned:
        f.skip()
    return request_type.parse(f)
