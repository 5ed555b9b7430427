"""Sans-I/O codec for the TWS API socket protocol (text protocol, server versions below 201).

Pure functions and small state machines: bytes in, events out, and back. Nothing here touches a
socket, a clock or an event loop, so the fake gateway, test clients and traffic inspectors share it
and it is tested byte by byte.

Wire format (see ``/work/shared/reference/tws-protocol.md``):

* every message is a 4-byte big-endian length N followed by N bytes of ``\\0``-terminated text
  fields; field 0 is the message id in ASCII decimal;
* the client opens with the raw magic ``API\\0`` and ONE framed, unterminated string
  ``v<min>..<max>[ <options>]``;
* the server answers with one frame of exactly two fields: ``<serverVersion>\\0<connTime>\\0``.

Message ids are direction-specific: :class:`ClientMessage` for client -> server requests,
:class:`ServerMessage` for server -> client messages (``15`` is reqAutoOpenOrders one way and
managedAccounts the other).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Final

from v6.errors import (
    BadHello,
    BadMagic,
    FrameTooLarge,
    MalformedRequest,
    NoCommonVersion,
    ProtocolError,
)

# --------------------------------------------------------------------------------------------------
# Constants

MAGIC: Final = b"API\0"
"""Raw prefix a client sends before its version hello (no length prefix)."""

MAX_SERVER_VERSION: Final = 178
"""Highest server version this codec encodes for (ib_async 2.1.0's decoder is written for <= 178;
194, 196 and 201 change layouts this codec does not implement)."""

MIN_SERVER_VERSION: Final = 124
"""Lowest server version this codec encodes for (below 124 historical data carries extra fields)."""

VERSION_ADVANCED_ORDER_REJECT: Final = 166
"""From this server version on, error messages carry an ``advancedOrderRejectJson`` field."""

MAX_FRAME_SIZE: Final = 0xFFFFFF
"""Largest payload accepted (ibapi's ``MAX_MSG_LEN``); anything larger is a framing error."""

NO_REQUEST_ID: Final = -1
"""Request id of system messages (errors not tied to a request)."""

_HEADER: Final = struct.Struct(">I")
_HELLO_RE: Final = re.compile(r"v(\d{1,6})(?:\.\.(\d{1,6}))?(?: (.*))?", re.DOTALL)


class ClientMessage(IntEnum):
    """Client -> server message ids (ibapi's ``OUT``)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_MKT_DEPTH = 10
    CANCEL_MKT_DEPTH = 11
    REQ_NEWS_BULLETINS = 12
    CANCEL_NEWS_BULLETINS = 13
    SET_SERVER_LOGLEVEL = 14
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_FA = 18
    REPLACE_FA = 19
    REQ_HISTORICAL_DATA = 20
    EXERCISE_OPTIONS = 21
    REQ_SCANNER_SUBSCRIPTION = 22
    CANCEL_SCANNER_SUBSCRIPTION = 23
    REQ_SCANNER_PARAMETERS = 24
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    REQ_FUNDAMENTAL_DATA = 52
    CANCEL_FUNDAMENTAL_DATA = 53
    REQ_CALC_IMPLIED_VOLAT = 54
    REQ_CALC_OPTION_PRICE = 55
    CANCEL_CALC_IMPLIED_VOLAT = 56
    CANCEL_CALC_OPTION_PRICE = 57
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    VERIFY_REQUEST = 65
    VERIFY_MESSAGE = 66
    QUERY_DISPLAY_GROUPS = 67
    SUBSCRIBE_TO_GROUP_EVENTS = 68
    UPDATE_DISPLAY_GROUP = 69
    UNSUBSCRIBE_FROM_GROUP_EVENTS = 70
    START_API = 71
    VERIFY_AND_AUTH_REQUEST = 72
    VERIFY_AND_AUTH_MESSAGE = 73
    REQ_POSITIONS_MULTI = 74
    CANCEL_POSITIONS_MULTI = 75
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_SOFT_DOLLAR_TIERS = 79
    REQ_FAMILY_CODES = 80
    REQ_MATCHING_SYMBOLS = 81
    REQ_MKT_DEPTH_EXCHANGES = 82
    REQ_SMART_COMPONENTS = 83
    REQ_NEWS_ARTICLE = 84
    REQ_NEWS_PROVIDERS = 85
    REQ_HISTORICAL_NEWS = 86
    REQ_HEAD_TIMESTAMP = 87
    REQ_HISTOGRAM_DATA = 88
    CANCEL_HISTOGRAM_DATA = 89
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_MARKET_RULE = 91
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_HISTORICAL_TICKS = 96
    REQ_TICK_BY_TICK_DATA = 97
    CANCEL_TICK_BY_TICK_DATA = 98
    REQ_COMPLETED_ORDERS = 99


class ServerMessage(IntEnum):
    """Server -> client message ids (ibapi's ``IN``), the subset this codec encodes or names."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    COMPLETED_ORDERS_END = 102


class TickType(IntEnum):
    """The tick types the fake gateway streams."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9


# --------------------------------------------------------------------------------------------------
# Fields and frames


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    return _HEADER.pack(len(payload)) + payload


def format_field(value: object) -> str:
    """Text of one field: ``None`` -> empty, ``bool`` -> ``1``/``0``, ``float`` -> shortest repr.

    Raises :class:`ValueError` for text containing ``\\0`` (it would end the field early).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))  # int() also strips IntEnum members to their value
    if isinstance(value, float):
        return repr(value)
    text = value if isinstance(value, str) else str(value)
    if "\0" in text:
        raise ValueError(f"field contains NUL: {text!r}")
    return text


def encode_fields(*fields: object) -> bytes:
    """Payload (without length prefix) for ``fields``: each field followed by ``\\0``."""
    return "".join([format_field(f) + "\0" for f in fields]).encode()


def encode_message(*fields: object) -> bytes:
    """One framed message: length prefix plus ``\\0``-terminated fields."""
    return frame(encode_fields(*fields))


def decode_fields(payload: bytes) -> tuple[str, ...]:
    """Split a message payload into its text fields.

    Raises :class:`ValueError` if the payload is empty, not UTF-8 or not ``\\0``-terminated.
    """
    if not payload or payload[-1] != 0:
        raise ValueError("payload is empty or not NUL-terminated")
    return tuple(payload[:-1].decode("utf-8").split("\0"))


class FrameBuffer:
    """Exact-length framing: feed arbitrary TCP chunks, get back complete payloads in order.

    A frame split across reads is held until complete; several frames in one read come out
    together. A length above ``max_frame_size`` raises :class:`FrameTooLarge`.
    """

    __slots__ = ("_buf", "max_frame_size")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self.max_frame_size = max_frame_size

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every payload completed by it (possibly none)."""
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        offset = 0
        end_of_data = len(buf)
        while end_of_data - offset >= 4:
            size = int.from_bytes(buf[offset : offset + 4], "big")
            if size > self.max_frame_size:
                raise FrameTooLarge(f"frame of {size} bytes exceeds {self.max_frame_size}")
            end = offset + 4 + size
            if end > end_of_data:
                break
            frames.append(bytes(buf[offset + 4 : end]))
            offset = end
        if offset:
            del buf[:offset]
        return frames


# --------------------------------------------------------------------------------------------------
# Handshake


@dataclass(frozen=True, slots=True)
class Hello:
    """The client's version hello: ``v<min_version>..<max_version>[ <options>]``."""

    min_version: int
    max_version: int
    options: str = ""


@dataclass(frozen=True, slots=True)
class ServerHello:
    """The server's handshake answer."""

    version: int
    connection_time: str


def parse_hello(payload: bytes) -> Hello:
    """Parse the framed hello text (``v157..178``, ``v100..157 +PACEAPI``, or ``v176``)."""
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadHello(f"hello is not ASCII: {payload[:40]!r}") from exc
    match = _HELLO_RE.fullmatch(text)
    if match is None:
        raise BadHello(f"hello is not 'v<min>..<max>': {text[:40]!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > high:
        raise BadHello(f"hello range is empty: {text[:40]!r}")
    return Hello(low, high, match.group(3) or "")


def encode_hello(
    min_version: int = MIN_SERVER_VERSION, max_version: int = MAX_SERVER_VERSION, options: str = ""
) -> bytes:
    """Bytes a client sends to open a session: magic plus the framed version range."""
    text = f"v{min_version}..{max_version}" + (f" {options}" if options else "")
    return MAGIC + frame(text.encode("ascii"))


def negotiate_version(
    hello: Hello,
    server_max: int = MAX_SERVER_VERSION,
    server_min: int = MIN_SERVER_VERSION,
) -> int:
    """The version a real TWS picks: ``min(server_max, client_max)``.

    Raises :class:`NoCommonVersion` when that is below the client's minimum or the server's.
    """
    version = min(server_max, hello.max_version)
    if version < hello.min_version or version < server_min:
        raise NoCommonVersion(
            f"client v{hello.min_version}..{hello.max_version}, "
            f"server v{server_min}..{server_max}: no common version"
        )
    return version


def encode_server_hello(version: int, connection_time: str) -> bytes:
    """The server's handshake answer: exactly two fields."""
    return encode_message(version, connection_time)


# --------------------------------------------------------------------------------------------------
# Connection state machines (Sans-I/O)


@dataclass(frozen=True, slots=True)
class Message:
    """One well-framed message; ``fields[0]`` is the message id as text."""

    msg_id: int
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A complete frame that is not a message (empty, unterminated, not UTF-8, non-numeric id).

    Framing is intact after it, so a server may log and ignore it.
    """

    payload: bytes
    reason: str


def _to_message(payload: bytes) -> Message | BadFrame:
    try:
        fields = decode_fields(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return BadFrame(payload, str(exc))
    head = fields[0]
    if not head.isdigit() or len(head) > 9:
        return BadFrame(payload, f"message id is not a decimal number: {head[:20]!r}")
    return Message(int(head), fields)


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

    Raises :class:`ProtocolError` (and enters ``FAILED``, after which every call raises) on bad
    magic, a bad hello or an oversized frame; the connection must then be closed.
    """

    __slots__ = ("_frames", "_pending", "state")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.state = CodecState.AWAIT_MAGIC
        self._pending = b""
        self._frames = FrameBuffer(max_frame_size)

    def receive_data(self, data: bytes) -> list[ServerEvent]:
        if self.state is CodecState.FAILED:
            raise ProtocolError("connection already failed")
        try:
            return self._receive(data)
        except ProtocolError:
            self.state = CodecState.FAILED
            raise

    def _receive(self, data: bytes) -> list[ServerEvent]:
        if self.state is CodecState.AWAIT_MAGIC:
            data = self._pending + data
            if MAGIC[: len(data)] != data[: len(MAGIC)]:
                raise BadMagic(f"expected {MAGIC!r}, got {data[: len(MAGIC)]!r}")
            if len(data) < len(MAGIC):
                self._pending = data
                return []
            self._pending = b""
            data = data[len(MAGIC) :]
            self.state = CodecState.AWAIT_HELLO
        events: list[ServerEvent] = []
        for payload in self._frames.feed(data):
            if self.state is CodecState.AWAIT_HELLO:
                events.append(parse_hello(payload))
                self.state = CodecState.MESSAGES
            else:
                events.append(_to_message(payload))
        return events


class ClientCodec:
    """Client side of one connection, for tests and traffic readers.

    :meth:`hello` gives the opening bytes; ``receive_data`` yields one :class:`ServerHello`, then
    messages. Raises :class:`ProtocolError` if the first frame is not a two-field version answer.
    """

    __slots__ = ("_frames", "state")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.state = CodecState.AWAIT_HELLO
        self._frames = FrameBuffer(max_frame_size)

    @staticmethod
    def hello(
        min_version: int = MIN_SERVER_VERSION,
        max_version: int = MAX_SERVER_VERSION,
        options: str = "",
    ) -> bytes:
        return encode_hello(min_version, max_version, options)

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        if self.state is CodecState.FAILED:
            raise ProtocolError("connection already failed")
        events: list[ClientEvent] = []
        try:
            for payload in self._frames.feed(data):
                if self.state is CodecState.AWAIT_HELLO:
                    events.append(_parse_server_hello(payload))
                    self.state = CodecState.MESSAGES
                else:
                    events.append(_to_message(payload))
        except ProtocolError:
            self.state = CodecState.FAILED
            raise
        return events


def _parse_server_hello(payload: bytes) -> ServerHello:
    try:
        fields = decode_fields(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad server hello: {payload[:40]!r}") from exc
    if len(fields) != 2 or not fields[0].isdigit():
        raise ProtocolError(f"server hello must be '<version>\\0<time>\\0': {fields!r}")
    return ServerHello(int(fields[0]), fields[1])


# --------------------------------------------------------------------------------------------------
# Client requests (client -> server), decoded into typed values


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The twelve contract fields every request and position message carries, in wire order
    (``exchange`` is ``primaryExchange``'s neighbour; portfolio messages omit ``exchange``)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


@dataclass(frozen=True, slots=True)
class StartApi:
    client_id: int
    optional_capabilities: str = ""


@dataclass(frozen=True, slots=True)
class ReqIds:
    num_ids: int


@dataclass(frozen=True, slots=True)
class ReqCurrentTime:
    pass


@dataclass(frozen=True, slots=True)
class ReqManagedAccounts:
    pass


@dataclass(frozen=True, slots=True)
class ReqPositions:
    pass


@dataclass(frozen=True, slots=True)
class CancelPositions:
    pass


@dataclass(frozen=True, slots=True)
class ReqOpenOrders:
    """reqOpenOrders or reqAllOpenOrders: both end with openOrderEnd."""

    all_clients: bool = False


@dataclass(frozen=True, slots=True)
class ReqAutoOpenOrders:
    auto_bind: bool


@dataclass(frozen=True, slots=True)
class ReqCompletedOrders:
    api_only: bool


@dataclass(frozen=True, slots=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(frozen=True, slots=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


@dataclass(frozen=True, slots=True)
class CancelAccountUpdatesMulti:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqExecutions:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CancelAccountSummary:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqMktData:
    req_id: int
    contract: ContractSpec
    generic_ticks: str = ""
    snapshot: bool = False


@dataclass(frozen=True, slots=True)
class CancelMktData:
    req_id: int


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


@dataclass(frozen=True, slots=True)
class CancelHistoricalData:
    req_id: int


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
    | ReqAccountSummary
    | CancelAccountSummary
    | ReqMktData
    | CancelMktData
    | ReqHistoricalData
    | CancelHistoricalData
)


@dataclass(slots=True)
class _Fields:
    """Cursor over a message's fields that raises :class:`MalformedRequest` on misuse."""

    fields: tuple[str, ...]
    pos: int = 1
    name: str = field(default="")

    def skip(self, n: int = 1) -> None:
        self.pos += n

    def text(self) -> str:
        if self.pos >= len(self.fields):
            raise MalformedRequest(f"{self.name}: missing field {self.pos}")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def integer(self) -> int:
        raw = self.text()
        try:
            return int(raw or 0)
        except ValueError:
            raise MalformedRequest(
                f"{self.name}: field {self.pos - 1} not an int: {raw!r}"
            ) from None

    def number(self) -> float:
        raw = self.text()
        try:
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


def _parse_mkt_data(f: _Fields) -> ReqMktData:
    f.skip()  # version
    req_id = f.integer()
    contract = f.contract()
    f.combo_legs(contract)
    if f.flag():  # delta-neutral contract: conId, delta, price
        f.skip(3)
    generic_ticks = f.text()
    snapshot = f.flag()
    return ReqMktData(req_id, contract, generic_ticks, snapshot)


def _parse_historical(f: _Fields) -> ReqHistoricalData:
    # No version field at server version >= 124 (MIN_SERVER_VERSION).
    req_id = f.integer()
    contract = f.contract()
    f.skip()  # includeExpired
    end, bar_size, duration = f.text(), f.text(), f.text()
    use_rth = f.flag()
    what_to_show = f.text()
    format_date = f.integer()
    f.combo_legs(contract)
    keep_up_to_date = f.flag() if f.pos < len(f.fields) else False
    return ReqHistoricalData(
        req_id,
        contract,
        end,
        bar_size,
        duration,
        use_rth,
        what_to_show,
        format_date,
        keep_up_to_date,
    )


def _parse_start_api(f: _Fields) -> StartApi:
    f.skip()  # version
    client_id = f.integer()
    capabilities = f.text() if f.pos < len(f.fields) else ""
    return StartApi(client_id, capabilities)


def _versioned(build: Callable[[_Fields], Request]) -> Callable[[_Fields], Request]:
    def parse(f: _Fields) -> Request:
        f.skip()  # version
        return build(f)

    return parse


_PARSERS: Final[dict[int, Callable[[_Fields], Request]]] = {
    ClientMessage.START_API: _parse_start_api,
    ClientMessage.REQ_IDS: _versioned(lambda f: ReqIds(f.integer())),
    ClientMessage.REQ_CURRENT_TIME: lambda f: ReqCurrentTime(),
    ClientMessage.REQ_MANAGED_ACCTS: lambda f: ReqManagedAccounts(),
    ClientMessage.REQ_POSITIONS: lambda f: ReqPositions(),
    ClientMessage.CANCEL_POSITIONS: lambda f: CancelPositions(),
    ClientMessage.REQ_OPEN_ORDERS: lambda f: ReqOpenOrders(all_clients=False),
    ClientMessage.REQ_ALL_OPEN_ORDERS: lambda f: ReqOpenOrders(all_clients=True),
    ClientMessage.REQ_AUTO_OPEN_ORDERS: _versioned(lambda f: ReqAutoOpenOrders(f.flag())),
    # reqCompletedOrders has NO version field.
    ClientMessage.REQ_COMPLETED_ORDERS: lambda f: ReqCompletedOrders(f.flag()),
    ClientMessage.REQ_ACCOUNT_UPDATES: _versioned(
        lambda f: ReqAccountUpdates(f.flag(), f.text() if f.pos < len(f.fields) else "")
    ),
    ClientMessage.REQ_ACCOUNT_UPDATES_MULTI: _versioned(
        lambda f: ReqAccountUpdatesMulti(f.integer(), f.text(), f.text(), f.flag())
    ),
    ClientMessage.CANCEL_ACCOUNT_UPDATES_MULTI: _versioned(
        lambda f: CancelAccountUpdatesMulti(f.integer())
    ),
    ClientMessage.REQ_EXECUTIONS: _versioned(lambda f: ReqExecutions(f.integer())),
    ClientMessage.REQ_ACCOUNT_SUMMARY: _versioned(
        lambda f: ReqAccountSummary(
            f.integer(), f.text(), tuple(t for t in f.text().split(",") if t)
        )
    ),
    ClientMessage.CANCEL_ACCOUNT_SUMMARY: _versioned(lambda f: CancelAccountSummary(f.integer())),
    ClientMessage.REQ_MKT_DATA: _parse_mkt_data,
    ClientMessage.CANCEL_MKT_DATA: _versioned(lambda f: CancelMktData(f.integer())),
    ClientMessage.REQ_HISTORICAL_DATA: _parse_historical,
    ClientMessage.CANCEL_HISTORICAL_DATA: _versioned(lambda f: CancelHistoricalData(f.integer())),
}

SUPPORTED_REQUESTS: Final = frozenset(_PARSERS)
"""Client message ids :func:`parse_request` understands."""


def parse_request(message: Message) -> Request | None:
    """Typed request for ``message``; ``None`` for an id this codec does not decode.

    Raises :class:`MalformedRequest` if a field is missing or not numeric where it must be.
    """
    parser = _PARSERS.get(message.msg_id)
    if parser is None:
        return None
    name = _message_name(message.msg_id)
    return parser(_Fields(message.fields, name=name))


def _message_name(msg_id: int) -> str:
    try:
        return ClientMessage(msg_id).name
    except ValueError:
        return f"message {msg_id}"


# --------------------------------------------------------------------------------------------------
# Server messages (server -> client). Field counts are exact: ibapi drops a message whose field
# count differs from its handler's signature by one.


def managed_accounts(accounts: Sequence[str]) -> bytes:
    """``15,1,<a,b,...>``."""
    return encode_message(ServerMessage.MANAGED_ACCTS, 1, ",".join(accounts))


def next_valid_id(order_id: int) -> bytes:
    """``9,1,<id>``."""
    return encode_message(ServerMessage.NEXT_VALID_ID, 1, order_id)


def error_message(
    server_version: int, req_id: int, code: int, text: str, advanced_order_reject_json: str = ""
) -> bytes:
    """``4,2,<id>,<code>,<text>`` plus ``advancedOrderRejectJson`` from version 166 on."""
    if server_version >= VERSION_ADVANCED_ORDER_REJECT:
        return encode_message(
            ServerMessage.ERR_MSG, 2, req_id, code, text, advanced_order_reject_json
        )
    return encode_message(ServerMessage.ERR_MSG, 2, req_id, code, text)


def current_time(epoch_seconds: int) -> bytes:
    """``49,1,<epoch seconds>``."""
    return encode_message(ServerMessage.CURRENT_TIME, 1, epoch_seconds)


def position_data(account: str, contract: ContractSpec, position: float, avg_cost: float) -> bytes:
    """``61,3,account,<11 contract fields without primaryExchange>,position,avgCost`` (16)."""
    c = contract
    return encode_message(
        ServerMessage.POSITION_DATA, 3, account, c.con_id, c.symbol, c.sec_type,
        c.last_trade_date, c.strike, c.right, c.multiplier, c.exchange, c.currency,
        c.local_symbol, c.trading_class, position, avg_cost,
    )  # fmt: skip


def position_end() -> bytes:
    """``62,1``."""
    return encode_message(ServerMessage.POSITION_END, 1)


def open_order_end() -> bytes:
    """``53,1``."""
    return encode_message(ServerMessage.OPEN_ORDER_END, 1)


def completed_orders_end() -> bytes:
    """``102`` (no version field)."""
    return encode_message(ServerMessage.COMPLETED_ORDERS_END)


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    """``6,2,key,value,currency,account``."""
    return encode_message(ServerMessage.ACCT_VALUE, 2, key, value, currency, account)


def portfolio_value(
    account: str,
    contract: ContractSpec,
    position: float,
    market_price: float,
    market_value: float,
    avg_cost: float,
    unrealized_pnl: float,
    realized_pnl: float,
) -> bytes:
    """``7,8,<11 contract fields without exchange>,position,price,value,cost,uPnL,rPnL,account``
    (exactly 20 fields)."""
    c = contract
    return encode_message(
        ServerMessage.PORTFOLIO_VALUE, 8, c.con_id, c.symbol, c.sec_type, c.last_trade_date,
        c.strike, c.right, c.multiplier, c.primary_exchange, c.currency, c.local_symbol,
        c.trading_class, position, market_price, market_value, avg_cost, unrealized_pnl,
        realized_pnl, account,
    )  # fmt: skip


def account_update_time(hh_mm: str) -> bytes:
    """``8,1,HH:MM``."""
    return encode_message(ServerMessage.ACCT_UPDATE_TIME, 1, hh_mm)


def account_download_end(account: str) -> bytes:
    """``54,1,account``."""
    return encode_message(ServerMessage.ACCT_DOWNLOAD_END, 1, account)


def account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> bytes:
    """``73,1,reqId,account,modelCode,key,value,currency``."""
    return encode_message(
        ServerMessage.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency
    )


def account_update_multi_end(req_id: int) -> bytes:
    """``74,1,reqId``."""
    return encode_message(ServerMessage.ACCOUNT_UPDATE_MULTI_END, 1, req_id)


def exec_details_end(req_id: int) -> bytes:
    """``55,1,reqId``."""
    return encode_message(ServerMessage.EXECUTION_DATA_END, 1, req_id)


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    """``63,1,reqId,account,tag,value,currency``."""
    return encode_message(ServerMessage.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency)


def account_summary_end(req_id: int) -> bytes:
    """``64,1,reqId``."""
    return encode_message(ServerMessage.ACCOUNT_SUMMARY_END, 1, req_id)


def tick_price(req_id: int, tick_type: int, price: float, size: int, attr_mask: int = 0) -> bytes:
    """``1,6,reqId,tickType,price,size,attrMask`` (exactly 7; ``size`` integral for ibapi 9.81)."""
    payload = f"1\x006\x00{req_id}\x00{tick_type}\x00{price!r}\x00{size}\x00{attr_mask}\x00"
    data = payload.encode()
    return _HEADER.pack(len(data)) + data


def tick_size(req_id: int, tick_type: int, size: int) -> bytes:
    """``2,6,reqId,tickType,size``."""
    data = f"2\x006\x00{req_id}\x00{tick_type}\x00{size}\x00".encode()
    return _HEADER.pack(len(data)) + data


def tick_snapshot_end(req_id: int) -> bytes:
    """``57,1,reqId``."""
    return encode_message(ServerMessage.TICK_SNAPSHOT_END, 1, req_id)


@dataclass(frozen=True, slots=True)
class Bar:
    """One historical bar. ``volume`` is integral: ibapi 9.81 parses it with ``int()``."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    bar_count: int


def historical_data(req_id: int, start: str, end: str, bars: Iterable[Bar]) -> bytes:
    """``17,reqId,start,end,n,{date,open,high,low,close,volume,wap,barCount}*n`` (no version,
    server versions 124..195)."""
    bar_list = list(bars)
    fields: list[object] = [ServerMessage.HISTORICAL_DATA, req_id, start, end, len(bar_list)]
    for b in bar_list:
        fields += [b.date, b.open, b.high, b.low, b.close, b.volume, b.wap, b.bar_count]
    return encode_message(*fields)
