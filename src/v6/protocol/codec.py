"""Sans-I/O codec for the TWS API socket protocol (text protocol, server versions below 201).

Pure functions and small state machines: bytes in, events out, and back. Nothing here touches a
socket, a clock or an event loop, so the fake gateway, test clients and traffic inspectors share it
and it is tested byte by byte.

This module holds the per-connection state machines (:class:`ServerCodec`, :class:`ClientCodec`)
and re-exports the protocol's everyday names, so ``from v6.protocol import codec; codec.X``
reaches them:

* :mod:`v6.protocol.framing`: fields, frames, the version handshake (wire format described there);
* :mod:`v6.protocol.ids`: message ids (:class:`ClientMessage`, :class:`ServerMessage`), tick types;
* :mod:`v6.protocol.requests`: every client request type and :func:`parse_request`;
* :mod:`v6.protocol.messages`: encoders of server messages.

Order messages (:mod:`v6.protocol.orders_messages`), live-data and contract-details messages
(:mod:`v6.protocol.data_messages`) and TWS's codes (:mod:`v6.protocol.codes`) are imported from
their modules.
"""

from __future__ import annotations

from enum import Enum
from typing import NoReturn

from v6.errors import (
    BadHello,
    BadMagic,
    FrameTooLarge,
    MalformedRequest,
    NoCommonVersion,
    ProtocolError,
)
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
from v6.protocol.contract import ContractSpec
from v6.protocol.framing import (
    MAGIC,
    MAX_FRAME_SIZE,
    MAX_SERVER_VERSION,
    MIN_SERVER_VERSION,
    NO_REQUEST_ID,
    VERSION_ADVANCED_ORDER_REJECT,
    BadFrame,
    FrameBuffer,
    Hello,
    Message,
    ServerHello,
    decode_fields,
    encode_fields,
    encode_hello,
    encode_message,
    encode_server_hello,
    format_field,
    frame,
    frame_parts,
    negotiate_version,
    parse_hello,
    parse_server_hello,
    to_message,
)
from v6.protocol.ids import ClientMessage, ServerMessage, TickType
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
from v6.protocol.messages import (
    Bar,
    account_download_end,
    account_summary,
    account_summary_end,
    account_update_multi,
    account_update_multi_end,
    account_update_time,
    account_value,
    completed_orders_end,
    current_time,
    error_message,
    exec_details_end,
    historical_data,
    managed_accounts,
    next_valid_id,
    open_order_end,
    portfolio_value,
    position_data,
    position_end,
    tick_price,
    tick_size,
    tick_snapshot_end,
)
from v6.protocol.orders_requests import (
    CancelOrder,
    ExecutionFilter,
    PlaceOrder,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqExecutions,
    ReqGlobalCancel,
    ReqOpenOrders,
)
from v6.protocol.requests import Request, parse_request
from v6.protocol.session_requests import ReqCurrentTime, ReqIds, ReqManagedAccounts, StartApi

__all__ = [
    "MAGIC",
    "MAX_FRAME_SIZE",
    "MAX_SERVER_VERSION",
    "MIN_SERVER_VERSION",
    "NO_REQUEST_ID",
    "VERSION_ADVANCED_ORDER_REJECT",
    "BadFrame",
    "BadHello",
    "BadMagic",
    "Bar",
    "CancelAccountSummary",
    "CancelAccountUpdatesMulti",
    "CancelHistoricalData",
    "CancelMktData",
    "CancelOrder",
    "CancelPnL",
    "CancelPnLSingle",
    "CancelPositions",
    "CancelRealTimeBars",
    "CancelTickByTickData",
    "ClientCodec",
    "ClientEvent",
    "ClientMessage",
    "CodecState",
    "ContractSpec",
    "ExecutionFilter",
    "FrameBuffer",
    "FrameTooLarge",
    "Hello",
    "MalformedRequest",
    "Message",
    "NoCommonVersion",
    "PlaceOrder",
    "ProtocolError",
    "ReqAccountSummary",
    "ReqAccountUpdates",
    "ReqAccountUpdatesMulti",
    "ReqAutoOpenOrders",
    "ReqCompletedOrders",
    "ReqContractDetails",
    "ReqCurrentTime",
    "ReqExecutions",
    "ReqGlobalCancel",
    "ReqHistoricalData",
    "ReqIds",
    "ReqManagedAccounts",
    "ReqMktData",
    "ReqOpenOrders",
    "ReqPnL",
    "ReqPnLSingle",
    "ReqPositions",
    "ReqRealTimeBars",
    "ReqTickByTickData",
    "Request",
    "ServerCodec",
    "ServerEvent",
    "ServerHello",
    "ServerMessage",
    "StartApi",
    "TickType",
    "account_download_end",
    "account_summary",
    "account_summary_end",
    "account_update_multi",
    "account_update_multi_end",
    "account_update_time",
    "account_value",
    "completed_orders_end",
    "current_time",
    "decode_fields",
    "encode_fields",
    "encode_hello",
    "encode_message",
    "encode_server_hello",
    "error_message",
    "exec_details_end",
    "format_field",
    "frame",
    "frame_parts",
    "historical_data",
    "managed_accounts",
    "negotiate_version",
    "next_valid_id",
    "open_order_end",
    "parse_hello",
    "parse_request",
    "portfolio_value",
    "position_data",
    "position_end",
    "tick_price",
    "tick_size",
    "tick_snapshot_end",
]


class CodecState(Enum):
    """Where a connection is in the protocol."""

    AWAIT_MAGIC = "await_magic"
    AWAIT_HELLO = "await_hello"
    MESSAGES = "messages"
    FAILED = "failed"


ServerEvent = Hello | Message | BadFrame
ClientEvent = ServerHello | Message | BadFrame


class ServerCodec:
    """Server side of one connection: ``receive_data(bytes)`` -> :class:`Hello`, then messages.

    Or incrementally, so a server can bound its work per read and pace frames before decoding
    them: :meth:`feed` bytes, then take events one at a time (:meth:`next_event`), or drop the next
    frames unread (:meth:`skip_frames`).

    Raises :class:`ProtocolError` (and enters ``FAILED``, after which every call raises) on bad
    magic, a bad hello or an oversized frame; the connection must then be closed.
    """

    __slots__ = ("_frames", "_pending", "state")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.state = CodecState.AWAIT_MAGIC
        self._pending = b""
        self._frames = FrameBuffer(max_frame_size)

    def receive_data(self, data: bytes) -> list[ServerEvent]:
        """Feed ``data``; every event it completes."""
        self.feed(data)
        events: list[ServerEvent] = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data`` (the magic is checked at once); decode nothing yet."""
        self._check()
        if self.state is CodecState.AWAIT_MAGIC:
            data = self._pending + bytes(data)
            if MAGIC[: len(data)] != data[: len(MAGIC)]:
                self._fail(BadMagic(f"expected {MAGIC!r}, got {data[: len(MAGIC)]!r}"))
            if len(data) < len(MAGIC):
                self._pending = data
                return
            self._pending = b""
            data = data[len(MAGIC) :]
            self.state = CodecState.AWAIT_HELLO
        self._frames.append(data)

    @property
    def in_handshake(self) -> bool:
        """The hello has not been decoded yet."""
        return self.state in (CodecState.AWAIT_MAGIC, CodecState.AWAIT_HELLO)

    def frame_ready(self) -> bool:
        """True if a complete frame is buffered."""
        self._check()
        try:
            return self._frames.ready()
        except ProtocolError as exc:
            self._fail(exc)

    def next_event(self) -> ServerEvent | None:
        """The next complete frame, decoded; ``None`` if none is complete."""
        self._check()
        try:
            payload = self._frames.next_frame()
            if payload is None:
                return None
            if self.state is CodecState.AWAIT_HELLO:
                self.state = CodecState.MESSAGES
                return parse_hello(payload)
        except ProtocolError as exc:
            self._fail(exc)
        return to_message(payload)

    def skip_frames(self, limit: int) -> int:
        """Drop up to ``limit`` complete message frames unread; how many were dropped."""
        self._check()
        if self.state is not CodecState.MESSAGES:
            return 0
        try:
            return self._frames.skip(limit)
        except ProtocolError as exc:
            self._fail(exc)

    def _check(self) -> None:
        if self.state is CodecState.FAILED:
            raise ProtocolError("connection already failed")

    def _fail(self, exc: ProtocolError) -> NoReturn:
        self.state = CodecState.FAILED
        raise exc


class ClientCodec:
    """Client side of one connection, for tests and traffic readers.

    :func:`encode_hello` gives the opening bytes; ``receive_data`` yields one
    :class:`ServerHello`, then messages. Raises :class:`ProtocolError` if the first frame is not a
    two-field version answer.
    """

    __slots__ = ("_frames", "state")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.state = CodecState.AWAIT_HELLO
        self._frames = FrameBuffer(max_frame_size)

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        if self.state is CodecState.FAILED:
            raise ProtocolError("connection already failed")
        events: list[ClientEvent] = []
        try:
            for payload in self._frames.feed(data):
                if self.state is CodecState.AWAIT_HELLO:
                    events.append(parse_server_hello(payload))
                    self.state = CodecState.MESSAGES
                else:
                    events.append(to_message(payload))
        except ProtocolError:
            self.state = CodecState.FAILED
            raise
        return events

