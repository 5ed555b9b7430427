"""The TWS API wire protocol as a pure (Sans-I/O) codec; see :mod:`v6.protocol.codec`."""

from v6.errors import ProtocolError
from v6.protocol.codec import (
    MAGIC,
    MAX_SERVER_VERSION,
    MIN_SERVER_VERSION,
    BadFrame,
    ClientCodec,
    ClientMessage,
    FrameBuffer,
    Hello,
    Message,
    ServerCodec,
    ServerHello,
    ServerMessage,
    encode_hello,
    encode_message,
    parse_request,
)

__all__ = [
    "MAGIC",
    "MAX_SERVER_VERSION",
    "MIN_SERVER_VERSION",
    "BadFrame",
    "ClientCodec",
    "ClientMessage",
    "FrameBuffer",
    "Hello",
    "Message",
    "ProtocolError",
    "ServerCodec",
    "ServerHello",
    "ServerMessage",
    "encode_hello",
    "encode_message",
    "parse_request",
]
