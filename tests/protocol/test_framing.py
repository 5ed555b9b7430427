"""Byte-level tests of the TWS wire format: fields, frames, the version handshake."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from v6.protocol import codec
from v6.protocol.codec import (
    BadHello,
    FrameBuffer,
    FrameTooLarge,
    Hello,
    NoCommonVersion,
    ServerMessage,
)

# ---------------------------------------------------------------------------------------- framing


def test_encode_message_is_length_prefixed_nul_terminated_fields() -> None:
    assert codec.encode_message(49, 1) == b"\x00\x00\x00\x0549\x001\x00"


def test_format_field_rules() -> None:
    assert codec.format_field(None) == ""
    assert codec.format_field(True) == "1"
    assert codec.format_field(False) == "0"
    assert codec.format_field(1.5) == "1.5"
    assert codec.format_field(ServerMessage.MANAGED_ACCTS) == "15"
    assert codec.format_field("abc") == "abc"
    with pytest.raises(ValueError, match="NUL"):
        codec.format_field("a\0b")


class _NulText:
    def __str__(self) -> str:
        return "x\0y"


@pytest.mark.parametrize("bad", ["a\0b", "\0", _NulText()])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_encode_fields_rejects_a_nul_in_any_field(bad: object, position: int) -> None:
    fields: list[object] = [1, "x", 2.5]
    fields[position] = bad
    with pytest.raises(ValueError, match="NUL"):
        codec.encode_fields(*fields)
    assert codec.encode_fields() == b""
    assert codec.encode_fields("", None, "") == b"\0\0\0"


def test_frame_buffer_holds_partial_frames_until_complete() -> None:
    buf = FrameBuffer()
    data = codec.encode_message("a", "b") + codec.encode_message("c")
    assert buf.feed(data[:3]) == []
    assert buf.feed(data[3:7]) == []
    assert buf.buffered == 7
    assert buf.feed(data[7:]) == [b"a\0b\0", b"c\0"]
    assert buf.buffered == 0


def test_frame_buffer_zero_length_frame() -> None:
    assert FrameBuffer().feed(b"\0\0\0\0") == [b""]


def test_frame_buffer_rejects_oversized_length() -> None:
    buf = FrameBuffer(max_frame_size=10)
    with pytest.raises(FrameTooLarge):
        buf.feed(struct.pack(">I", 11))


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_frame_buffer_any_split_yields_the_same_frames(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(codec.frame(p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    buf = FrameBuffer()
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        out += buf.feed(stream[start:end])
    assert out == payloads
    assert buf.buffered == 0


@given(
    st.lists(
        st.text(
            alphabet=st.characters(exclude_characters="\0", exclude_categories=("Cs",)), max_size=20
        ),
        min_size=1,
    )
)
def test_fields_round_trip(fields: list[str]) -> None:
    payload = codec.encode_fields(*fields)
    assert codec.decode_fields(payload) == tuple(fields)


@pytest.mark.parametrize("payload", [b"", b"49\x001", b"\xff\xfe\0"])
def test_decode_fields_rejects_garbage(payload: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - UnicodeDecodeError is a ValueError too
        codec.decode_fields(payload)


# -------------------------------------------------------------------------------------- handshake


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"v157..178", Hello(157, 178, "")),
        (b"v100..157 +PACEAPI", Hello(100, 157, "+PACEAPI")),
        (b"v176", Hello(176, 176, "")),
    ],
)
def test_parse_hello(text: bytes, expected: Hello) -> None:
    assert codec.parse_hello(text) == expected


@pytest.mark.parametrize("text", [b"", b"157..178", b"v178..157", b"vX..Y", b"v1..2\xff", b"GET /"])
def test_parse_hello_rejects(text: bytes) -> None:
    with pytest.raises(BadHello):
        codec.parse_hello(text)


def test_encode_hello_matches_ib_async_bytes() -> None:
    assert codec.encode_hello(157, 178) == b"API\0\x00\x00\x00\x09v157..178"
    assert codec.encode_hello(100, 157, "+PACEAPI").endswith(b"v100..157 +PACEAPI")


@pytest.mark.parametrize(
    ("hello", "version"),
    [
        (Hello(157, 178), 178),
        (Hello(100, 157), 157),
        (Hello(100, 226), 178),
        (Hello(178, 178), 178),
    ],
)
def test_negotiate_version_is_min_of_maxima(hello: Hello, version: int) -> None:
    assert codec.negotiate_version(hello) == version


@pytest.mark.parametrize("hello", [Hello(179, 226), Hello(1, 50)])
def test_negotiate_version_without_overlap(hello: Hello) -> None:
    with pytest.raises(NoCommonVersion):
        codec.negotiate_version(hello)


def test_frames_taken_one_at_a_time_or_dropped_unread() -> None:
    buf = FrameBuffer(max_frame_size=10)
    buf.append(codec.frame(b"a") + codec.frame(b"") * 3 + codec.frame(b"bc") + b"\0\0")
    assert buf.ready()
    assert buf.next_frame() == b"a"
    assert buf.skip(2) == 2
    assert buf.skip(5) == 2  # one empty frame and "bc"; the partial header stays
    assert not buf.ready()
    assert buf.next_frame() is None
    assert buf.buffered == 2
    buf.append(b"\0\1x")
    assert buf.next_frame() == b"x"
    buf.append(b"\0\0\0\x0b")
    with pytest.raises(FrameTooLarge):
        buf.skip(1)
