"""TWS API wire format: fields, length-prefixed frames and the version handshake.

Pure functions, no I/O (see the README's fake-gateway section and the ib_async / ibapi sources):

* every message is a 4-byte big-endian length N followed by N bytes of ``\\0``-terminated text
  fields; field 0 is the message id in ASCII decimal;
* the client opens with the raw magic ``API\\0`` and ONE framed, unterminated string
  ``v<min>..<max>[ <options>]``;
* the server answers with one frame of exactly two fields: ``<serverVersion>\\0<connTime>\\0``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from v6.errors import BadHello, FrameTooLarge, NoCommonVersion, ProtocolError

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

UNSET_INTEGER_TEXT: Final = "2147483647"
"""An unset int field as TWS writes it (``Integer.MAX_VALUE``, the clients' ``UNSET_INTEGER``)."""
UNSET_DOUBLE_TEXT: Final = "1.7976931348623157E308"
"""An unset double field as TWS writes it (``Double.MAX_VALUE``, the clients' ``UNSET_DOUBLE``)."""
INFINITY_TEXT: Final = "Infinite"
"""An infinite double field, as TWS and both clients write it (ibapi's ``INFINITY_STR``)."""

_HEADER: Final = struct.Struct(">I")
# [0-9], never \d or str.isdigit(): those accept Unicode digits (superscripts, Arabic-Indic) that
# int() rejects or reads as another number.
_HELLO_RE: Final = re.compile(r"v([0-9]{1,6})(?:\.\.([0-9]{1,6}))?(?: (.*))?", re.DOTALL)
_MESSAGE_ID_RE: Final = re.compile(r"[0-9]{1,9}")
_VERSION_RE: Final = re.compile(r"[0-9]{1,9}")


# --------------------------------------------------------------------------------------------------
# Fields and frames


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    return _HEADER.pack(len(payload)) + payload


def frame_parts(*parts: bytes) -> bytes:
    """:func:`frame` of the concatenated ``parts``, copying each once (for large payloads)."""
    return b"".join([_HEADER.pack(sum(map(len, parts))), *parts])


def format_field(value: object) -> str:
    """Text of one field: ``None`` -> empty, ``bool`` -> ``1``/``0``, ``float`` -> shortest repr.

    Raises :class:`ValueError` for text containing ``\\0`` (it would end the field early).
    """
    if type(value) is str:  # the common case first: order messages are mostly text fields
        if "\0" in value:
            raise ValueError(f"field contains NUL: {value!r}")
        return value
    return _format_other(value)


def _format_other(value: object) -> str:
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


# Exact types only (a bool is an int, an IntEnum's str() is its name): others go the long way.
_FAST_FORMAT: Final[dict[type, Callable[[Any], str]]] = {
    int: int.__repr__,
    float: float.__repr__,
    bool: lambda value: "1" if value else "0",
    type(None): lambda value: "",
}


def encode_fields(*fields: object) -> bytes:
    """Payload (without length prefix) for ``fields``: each field followed by ``\\0``."""
    # The hot path of every server message: text fields pass through without a call, and one
    # count over the joined text finds a NUL inside any field.
    fast = _FAST_FORMAT.get
    texts = [f if type(f) is str else fast(type(f), _format_other)(f) for f in fields]
    if not texts:
        return b""
    joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:
        for text in texts:
            format_field(text)  # raises for the field holding the NUL
    return (joined + "\0").encode()


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
    together (:meth:`feed`) or one at a time (:meth:`append`, then :meth:`next_frame` or
    :meth:`skip`, so a server can bound the work it does per read). A length above
    ``max_frame_size`` raises :class:`FrameTooLarge`.
    """

    __slots__ = ("_buf", "_pos", "max_frame_size")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_frame_size = max_frame_size

    @property
    def buffered(self) -> int:
        """Bytes held that have not been taken as frames yet."""
        return len(self._buf) - self._pos

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data`` without framing it yet."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def _end_of_next(self) -> int:
        """Where the next frame ends, or -1 if it is not complete yet."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 4:
            return -1
        size = int.from_bytes(buf[pos : pos + 4], "big")
        if size > self.max_frame_size:
            raise FrameTooLarge(f"frame of {size} bytes exceeds {self.max_frame_size}")
        end = pos + 4 + size
        return end if end <= len(buf) else -1

    def ready(self) -> bool:
        """True if a complete frame is buffered."""
        return self._end_of_next() >= 0

    def next_frame(self) -> bytes | None:
        """The next complete payload, or ``None``."""
        end = self._end_of_next()
        if end < 0:
            return None
        payload = bytes(self._buf[self._pos + 4 : end])
        self._pos = end
        return payload

    def skip(self, limit: int = 1) -> int:
        """Drop up to ``limit`` complete frames unread (no copy); how many were dropped."""
        buf, pos, size_of_data = self._buf, self._pos, len(self._buf)
        dropped = 0
        while dropped < limit and size_of_data - pos >= 4:  # one tight loop: a flood is cheap
            end = pos + 4 + int.from_bytes(buf[pos : pos + 4], "big")
            if end - pos - 4 > self.max_frame_size:
                self._pos = pos
                raise FrameTooLarge(f"frame of {end - pos - 4} bytes exceeds {self.max_frame_size}")
            if end > size_of_data:
                break
            pos = end
            dropped += 1
        self._pos = pos
        return dropped

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every payload completed by it (possibly none)."""
        self.append(data)
        frames: list[bytes] = []
        while (payload := self.next_frame()) is not None:
            frames.append(payload)
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
# Messages: a complete frame, decoded or not


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


def to_message(payload: bytes) -> Message | BadFrame:
    """The :class:`Message` in one frame's payload, or a :class:`BadFrame` saying why not."""
    try:
        fields = decode_fields(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return BadFrame(payload, str(exc))
    head = fields[0]
    if _MESSAGE_ID_RE.fullmatch(head) is None:
        return BadFrame(payload, f"message id is not a decimal number: {head[:20]!r}")
    return Message(int(head), fields)


def parse_server_hello(payload: bytes) -> ServerHello:
    """The server's handshake answer; raises :class:`ProtocolError` for anything else."""
    try:
        fields = decode_fields(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad server hello: {payload[:40]!r}") from exc
    if len(fields) != 2 or _VERSION_RE.fullmatch(fields[0]) is None:
        raise ProtocolError(f"server hello must be '<version>\\0<time>\\0': {fields!r}")
    return ServerHello(int(fields[0]), fields[1])

