"""The Sans-I/O connection state machines (ServerCodec, ClientCodec)."""

from __future__ import annotations

import pytest

from v6.errors import V6Error
from v6.protocol import codec
from v6.protocol.codec import (
    MAGIC,
    BadFrame,
    BadHello,
    BadMagic,
    ClientCodec,
    CodecState,
    FrameTooLarge,
    Hello,
    Message,
    ProtocolError,
    ServerCodec,
    ServerHello,
)


def test_server_codec_handshake_across_byte_splits() -> None:
    data = codec.encode_hello(157, 178) + codec.encode_message(71, 2, 7, "")
    server = ServerCodec()
    events = []
    for i in range(len(data)):
        events += server.receive_data(data[i : i + 1])
    assert events == [Hello(157, 178), Message(71, ("71", "2", "7", ""))]
    assert server.state is CodecState.MESSAGES


def test_server_codec_everything_in_one_read() -> None:
    data = codec.encode_hello() + codec.encode_message(49, 1) + codec.encode_message(17, 1)
    events = ServerCodec().receive_data(data)
    assert events[1:] == [Message(49, ("49", "1")), Message(17, ("17", "1"))]


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"AP\x00", b"\x00\x00\x00\x05hello"])
def test_server_codec_bad_magic_fails_for_good(data: bytes) -> None:
    server = ServerCodec()
    with pytest.raises(BadMagic):
        server.receive_data(data)
    assert server.state is CodecState.FAILED
    with pytest.raises(ProtocolError):
        server.receive_data(codec.encode_hello())


def test_server_codec_waits_on_a_partial_magic() -> None:
    server = ServerCodec()
    assert server.receive_data(b"AP") == []
    assert server.receive_data(b"I\0") == []
    assert server.state is CodecState.AWAIT_HELLO


def test_server_codec_bad_hello() -> None:
    with pytest.raises(BadHello):
        ServerCodec().receive_data(MAGIC + codec.frame(b"hello"))


def test_server_codec_garbage_frames_are_events_not_failures() -> None:
    server = ServerCodec()
    server.receive_data(codec.encode_hello())
    events = server.receive_data(
        codec.frame(b"")
        + codec.frame(b"xyz\0")
        + codec.frame(b"49\x001")
        + codec.frame(b"\xff\0")
        + codec.encode_message(49, 1)
    )
    assert [type(e) for e in events] == [BadFrame] * 4 + [Message]
    assert server.state is CodecState.MESSAGES


def test_server_codec_oversized_frame_fails() -> None:
    server = ServerCodec(max_frame_size=100)
    server.receive_data(codec.encode_hello())
    with pytest.raises(FrameTooLarge):
        server.receive_data(b"\xff\xff\xff\xff")


def test_protocol_errors_are_v6_errors() -> None:
    assert issubclass(ProtocolError, V6Error)
    assert issubclass(ProtocolError, ValueError)


def test_client_codec_reads_server_hello_then_messages() -> None:
    client = ClientCodec()
    data = codec.encode_server_hello(178, "20261124 11:08:19 UTC") + codec.managed_accounts(["DU1"])
    events = client.receive_data(data[:5]) + client.receive_data(data[5:])
    assert events == [ServerHello(178, "20261124 11:08:19 UTC"), Message(15, ("15", "1", "DU1"))]


def test_client_codec_rejects_a_three_field_hello() -> None:
    client = ClientCodec()
    with pytest.raises(ProtocolError):
        client.receive_data(codec.encode_message(178, "t", "x"))
    assert client.state is CodecState.FAILED


@pytest.mark.parametrize("head", ["\u00b2", "\u0661", "1\u00b2", "-1", " 1", "1234567890"])
def test_server_codec_non_ascii_or_odd_message_ids_are_bad_frames(head: str) -> None:
    server = ServerCodec()
    server.receive_data(codec.encode_hello(157, 178))
    (event,) = server.receive_data(codec.frame(f"{head}\0".encode()))
    assert isinstance(event, BadFrame)


def test_client_codec_rejects_a_unicode_digit_version() -> None:
    with pytest.raises(ProtocolError):
        ClientCodec().receive_data(codec.frame("\u00b2\0now\0".encode()))


def test_server_codec_taken_one_event_at_a_time_or_dropped_unread() -> None:
    server = ServerCodec()
    server.feed(MAGIC[:2])
    assert server.in_handshake
    assert not server.frame_ready()
    server.feed(codec.encode_hello()[2:] + codec.encode_message(49, 1) * 3 + b"\1")
    assert server.skip_frames(5) == 0  # never the hello
    assert isinstance(server.next_event(), Hello)
    assert not server.in_handshake
    assert server.skip_frames(2) == 2
    assert server.next_event() == Message(49, ("49", "1"))
    assert server.next_event() is None
    server.feed(b"\0\0\0")  # a header of 16 MiB: too large
    with pytest.raises(FrameTooLarge):
        server.skip_frames(1)
    assert server.state is CodecState.FAILED
    with pytest.raises(ProtocolError):
        server.frame_ready()
