"""Byte-level tests of the Sans-I/O TWS codec."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from v6.errors import V6Error
from v6.protocol import codec
from v6.protocol.codec import (
    MAGIC,
    BadFrame,
    BadHello,
    BadMagic,
    Bar,
    ClientCodec,
    ClientMessage,
    CodecState,
    ContractSpec,
    FrameBuffer,
    FrameTooLarge,
    Hello,
    MalformedRequest,
    Message,
    NoCommonVersion,
    ProtocolError,
    ServerCodec,
    ServerHello,
    ServerMessage,
)


def fields_of(data: bytes) -> list[str]:
    """Decode exactly one framed message into its fields."""
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    assert data.endswith(b"\0")
    return data[4:-1].decode().split("\0")


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


# ----------------------------------------------------------------------------------------- requests


def request(*fields: object) -> Message:
    payload = codec.encode_fields(*fields)
    decoded = codec.decode_fields(payload)
    return Message(int(decoded[0]), decoded)


IB_ASYNC_CONTRACT = ("265598", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "")


def test_parse_start_api() -> None:
    assert codec.parse_request(request(71, 2, 12, "")) == codec.StartApi(12, "")
    assert codec.parse_request(request(71, 2, 3)) == codec.StartApi(3, "")


def test_parse_sync_requests_as_ib_async_sends_them() -> None:
    assert codec.parse_request(request(61, 1)) == codec.ReqPositions()
    assert codec.parse_request(request(5, 1)) == codec.ReqOpenOrders(all_clients=False)
    assert codec.parse_request(request(99, 0)) == codec.ReqCompletedOrders(api_only=False)
    assert codec.parse_request(request(6, 2, 1, "DU1")) == codec.ReqAccountUpdates(True, "DU1")
    assert codec.parse_request(request(76, 1, 4, "DU1", "", 0)) == codec.ReqAccountUpdatesMulti(
        4, "DU1", "", False
    )
    assert codec.parse_request(request(7, 3, 9, 0, "", "", "", "", "", "")) == codec.ReqExecutions(
        9
    )


def test_parse_account_summary() -> None:
    msg = request(62, 1, 5, "All", "NetLiquidation,BuyingPower")
    assert codec.parse_request(msg) == codec.ReqAccountSummary(
        5, "All", ("NetLiquidation", "BuyingPower")
    )
    assert codec.parse_request(request(63, 1, 5)) == codec.CancelAccountSummary(5)


def test_parse_mkt_data_ib_async_layout() -> None:
    msg = request(1, 11, 7, *IB_ASYNC_CONTRACT, 0, "", 0, 0, "")
    parsed = codec.parse_request(msg)
    assert isinstance(parsed, codec.ReqMktData)
    assert parsed.req_id == 7
    assert parsed.contract.con_id == 265598
    assert parsed.contract.symbol == "AAPL"
    assert parsed.contract.exchange == "SMART"
    assert parsed.snapshot is False


def test_parse_mkt_data_skips_bag_legs_and_delta_neutral() -> None:
    contract = ("0", "SPY", "BAG", "", "0.0", "", "", "SMART", "", "USD", "", "")
    msg = request(1, 11, 3, *contract, 2, 1, 1, "BUY", "SMART", 2, 1, "SELL", "SMART",
                  1, 5, 0.5, 100.0, "233", 1, 0, "")  # fmt: skip
    parsed = codec.parse_request(msg)
    assert isinstance(parsed, codec.ReqMktData)
    assert (parsed.generic_ticks, parsed.snapshot) == ("233", True)


def test_parse_historical_data_ib_async_layout() -> None:
    contract = ("0", "EURUSD", "CASH", "", "0.0", "", "", "IDEALPRO", "", "USD", "", "")
    msg = request(20, 4, *contract, 0, "", "5 secs", "30 S", 0, "MIDPOINT", 1, 0, "")
    assert codec.parse_request(msg) == codec.ReqHistoricalData(
        4,
        ContractSpec(symbol="EURUSD", sec_type="CASH", exchange="IDEALPRO", currency="USD"),
        "",
        "5 secs",
        "30 S",
        False,
        "MIDPOINT",
        1,
        False,
    )


def test_parse_unknown_and_unsupported_ids_give_none() -> None:
    assert codec.parse_request(request(999, 1)) is None
    assert codec.parse_request(request(ClientMessage.PLACE_ORDER, 1)) is None


@pytest.mark.parametrize(
    "msg",
    [request(71, 2), request(71, 2, "x"), request(62, 1, 5), request(8, 1, "many")],
)
def test_parse_malformed_requests(msg: Message) -> None:
    with pytest.raises(MalformedRequest):
        codec.parse_request(msg)


# ---------------------------------------------------------------------------------- server messages


def test_error_message_field_count_depends_on_version() -> None:
    assert fields_of(codec.error_message(178, -1, 2104, "ok")) == ["4", "2", "-1", "2104", "ok", ""]
    assert fields_of(codec.error_message(166, -1, 2104, "ok")) == ["4", "2", "-1", "2104", "ok", ""]
    # ibapi 9.81 at version 157: error(reqId, code, text) -> exactly 5 fields
    assert fields_of(codec.error_message(157, 3, 322, "max")) == ["4", "2", "3", "322", "max"]


def test_startup_message_layouts() -> None:
    assert fields_of(codec.managed_accounts(["DU1", "DU2"])) == ["15", "1", "DU1,DU2"]
    assert fields_of(codec.next_valid_id(1)) == ["9", "1", "1"]
    assert fields_of(codec.current_time(1795518499)) == ["49", "1", "1795518499"]
    assert fields_of(codec.position_end()) == ["62", "1"]
    assert fields_of(codec.open_order_end()) == ["53", "1"]
    assert fields_of(codec.completed_orders_end()) == ["102"]
    assert fields_of(codec.account_value("NetLiquidation", "1.00", "USD", "DU1")) == [
        "6", "2", "NetLiquidation", "1.00", "USD", "DU1",
    ]  # fmt: skip
    assert fields_of(codec.account_update_time("11:08")) == ["8", "1", "11:08"]
    assert fields_of(codec.account_download_end("DU1")) == ["54", "1", "DU1"]
    assert len(fields_of(codec.account_update_multi(1, "DU1", "", "k", "v", "USD"))) == 8
    assert fields_of(codec.account_update_multi_end(1)) == ["74", "1", "1"]
    assert fields_of(codec.exec_details_end(2)) == ["55", "1", "2"]
    assert fields_of(codec.account_summary(1, "DU1", "T", "V", "USD")) == [
        "63", "1", "1", "DU1", "T", "V", "USD",
    ]  # fmt: skip
    assert fields_of(codec.account_summary_end(1)) == ["64", "1", "1"]


AAPL = ContractSpec(265598, "AAPL", "STK", exchange="NASDAQ", primary_exchange="NASDAQ",
                    currency="USD", local_symbol="AAPL", trading_class="NMS")  # fmt: skip


def test_position_has_exactly_16_fields() -> None:
    f = fields_of(codec.position_data("DU1", AAPL, 100.0, 150.5))
    assert len(f) == 16
    assert f[:6] == ["61", "3", "DU1", "265598", "AAPL", "STK"]
    assert f[10] == "NASDAQ"  # exchange, not primary exchange
    assert f[-2:] == ["100.0", "150.5"]


def test_portfolio_value_has_exactly_20_fields() -> None:
    f = fields_of(codec.portfolio_value("DU1", AAPL, 100.0, 151.0, 15100.0, 150.5, 50.0, 0.0))
    assert len(f) == 20
    assert f[:2] == ["7", "8"]
    assert f[9] == "NASDAQ"  # primary exchange
    assert f[-1] == "DU1"


def test_ticks_have_exact_field_counts() -> None:
    assert fields_of(codec.tick_price(5, 1, 101.25, 300)) == [
        "1",
        "6",
        "5",
        "1",
        "101.25",
        "300",
        "0",
    ]
    assert fields_of(codec.tick_size(5, 8, 1200)) == ["2", "6", "5", "8", "1200"]


def test_historical_data_layout() -> None:
    bars = [
        Bar("20261124 11:08:00 UTC", 1.0, 2.0, 0.5, 1.5, 100, 1.25, 7),
        Bar("20261124 11:08:05 UTC", 1.5, 2.5, 1.0, 2.0, 200, 1.75, 8),
    ]
    f = fields_of(codec.historical_data(3, "s", "e", bars))
    assert f[:5] == ["17", "3", "s", "e", "2"]
    assert len(f) == 5 + 8 * 2
    assert f[5:13] == ["20261124 11:08:00 UTC", "1.0", "2.0", "0.5", "1.5", "100", "1.25", "7"]
