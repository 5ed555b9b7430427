"""Malformed input: the offending client is closed or its message ignored, as TWS does, and the
gateway keeps serving everyone else. After each bad client a good ib_async client connects."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Iterator

import pytest
from ib_async import IB

from tests.helpers import log_lines
from tests.testing.helpers import RawClient, wait_until
from v6.errors import ConfigError
from v6.protocol import codec
from v6.protocol.codec import MAGIC, ClientMessage, Message
from v6.testing import FakeGateway
from v6.testing.gateway import market

MakeGateway = Callable[..., Awaitable[FakeGateway]]
RawFactory = Callable[[int], Awaitable[RawClient]]
IBFactory = Callable[[], IB]

CLOSING_INPUTS = {
    "http request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad magic": b"APX\0" + codec.frame(b"v157..178"),
    "hello not a range": MAGIC + codec.frame(b"hello"),
    "no common version (too new)": codec.encode_hello(179, 200),
    "no common version (too old)": codec.encode_hello(1, 50),
    "oversized frame": codec.encode_hello() + b"\xff\xff\xff\xff",
    "random bytes": random.Random(7).randbytes(256),
}


async def served(ib: IB, port: int, client_id: int) -> None:
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=2, raiseSyncErrors=True)
    assert await ib.reqCurrentTimeAsync()
    ib.disconnect()


@pytest.mark.parametrize("data", list(CLOSING_INPUTS.values()), ids=list(CLOSING_INPUTS))
async def test_bad_input_closes_only_that_client(
    fake_gateway: FakeGateway, raw_client: RawFactory, ib_client: IBFactory, data: bytes
) -> None:
    bystander = await raw_client(fake_gateway.port)
    await bystander.ready(client_id=50)

    bad = await raw_client(fake_gateway.port)
    bad.send_raw(data)
    assert await bad.closed_by_peer()
    assert bad.events == []  # not even a version answer

    await served(ib_client(), fake_gateway.port, 1)
    bystander.send(ClientMessage.REQ_CURRENT_TIME, 1)
    [reply] = await bystander.messages()
    assert reply.msg_id == 49


@pytest.mark.parametrize(
    "data",
    [
        codec.frame(b"xyz\0"),  # non-numeric message id
        codec.frame(b""),  # empty frame
        codec.frame(b"49\x001"),  # not NUL-terminated
        codec.frame(b"\xff\xfe\0"),  # not UTF-8
        codec.encode_message(999, 1),  # unknown message id
        codec.encode_message(ClientMessage.REQ_ACCOUNT_SUMMARY, 1, 5),  # missing fields
        codec.encode_message(ClientMessage.REQ_IDS, 1, "many"),  # non-numeric field
        codec.encode_message(ClientMessage.REQ_MKT_DEPTH, 5, 1),  # known, not supported
    ],
    ids=["text id", "empty", "unterminated", "not utf-8", "unknown id", "missing", "nan", "unsup"],
)
async def test_bad_messages_are_ignored_and_the_client_kept(
    fake_gateway: FakeGateway, raw_client: RawFactory, ib_client: IBFactory, data: bytes
) -> None:
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    raw.send_raw(data)
    raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    replies = await raw.messages()
    assert [m.msg_id for m in replies] == [49]
    assert fake_gateway.client_ids == {1}
    await served(ib_client(), fake_gateway.port, 2)


async def test_unknown_ids_are_counted(fake_gateway: FakeGateway, raw_client: RawFactory) -> None:
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    raw.send(999, 1)
    raw.send(999, 1)
    raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    await raw.messages()
    assert fake_gateway.request_counts[999] == 2


async def test_requests_before_start_api_are_ignored(
    fake_gateway: FakeGateway, raw_client: RawFactory
) -> None:
    raw = await raw_client(fake_gateway.port)
    raw.hello()
    await raw.next_event()
    raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    assert await raw.messages() == []
    raw.send(71, 2, 4, "")
    startup = await raw.messages()
    assert startup[0].msg_id == 15


async def test_byte_by_byte_and_merged_input(
    fake_gateway: FakeGateway, raw_client: RawFactory
) -> None:
    raw = await raw_client(fake_gateway.port)
    data = codec.encode_hello() + codec.encode_message(71, 2, 1, "")
    for i in range(len(data)):
        raw.send_raw(data[i : i + 1])
        await raw.writer.drain()
    hello = await raw.next_event()
    assert isinstance(hello, codec.ServerHello)
    assert hello.version == 178
    await raw.messages()
    raw.send_raw(codec.encode_message(49, 1) * 3)
    assert [m.msg_id for m in await raw.messages()] == [49, 49, 49]


async def test_peer_vanishing_mid_frame(
    fake_gateway: FakeGateway, raw_client: RawFactory, ib_client: IBFactory
) -> None:
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    raw.send_raw(codec.encode_message(62, 1, 3, "All", "NetLiquidation")[:9])
    await raw.close()
    await served(ib_client(), fake_gateway.port, 1)  # the id was released


async def test_handler_exception_closes_only_that_client(
    fake_gateway: FakeGateway,
    raw_client: RawFactory,
    monkeypatch: pytest.MonkeyPatch,
    ib_client: IBFactory,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("handler bug")

    monkeypatch.setattr(market.HistoryCache, "reply", explode)
    bystander = await raw_client(fake_gateway.port)
    await bystander.ready(client_id=2)
    victim = await raw_client(fake_gateway.port)
    await victim.ready(client_id=1)
    contract = ("0", "EUR", "CASH", "", "0.0", "", "", "IDEALPRO", "", "USD", "", "")
    victim.send(20, 3, *contract, 0, "", "5 secs", "30 S", 0, "MIDPOINT", 1, 0, "")
    try:
        closed = await victim.closed_by_peer()
    except ConnectionResetError:
        closed = True
    assert closed
    bystander.send(ClientMessage.REQ_CURRENT_TIME, 1)
    assert [m.msg_id for m in await bystander.messages()] == [49]
    await served(ib_client(), fake_gateway.port, 3)


async def test_pacing_drops_excess_and_reports_100_once_per_second(
    make_gateway: MakeGateway, raw_client: RawFactory
) -> None:
    gw = await make_gateway(pacing_limit=10)
    raw = await raw_client(gw.port)
    await raw.ready()  # startApi is message 1 of this second
    for _ in range(20):
        raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    replies: list[Message] = await raw.messages()
    assert [m.msg_id for m in replies].count(49) == 9
    errors = [m.fields for m in replies if m.msg_id == 4]
    assert len(errors) == 1
    assert errors[0][2:4] == ("-1", "100")
    assert gw.request_counts[49] == 9  # the excess was dropped unread (framed, not decoded)
    assert gw.frames_dropped == 11


@pytest.mark.parametrize("head", ["\u00b2", "\u0661", "1\u00b2", "\u0663"])
async def test_unicode_digit_message_ids_are_garbage_frames(
    fake_gateway: FakeGateway, raw_client: RawFactory, head: str
) -> None:
    """Issue 11 item 6: superscript two passes str.isdigit() but not int(); Arabic-Indic one must
    not become message id 1."""
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    fake_gateway.reset_counts()
    raw.send(head, 1)
    raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    assert [m.msg_id for m in await raw.messages()] == [49]
    assert fake_gateway.request_counts == {49: 1}


@pytest.mark.parametrize("value", ["\u0661", "\u00b2", " 5", "1_0", "+-1"])
async def test_unicode_or_odd_integer_fields_are_malformed(
    fake_gateway: FakeGateway, raw_client: RawFactory, value: str
) -> None:
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    raw.send(ClientMessage.REQ_EXECUTIONS, 3, value, 0, "", "", "", "", "", "")
    raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    assert [m.msg_id for m in await raw.messages()] == [49]  # no execDetailsEnd for a bad id


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    """Messages the gateway logs at WARNING or above while the test runs."""
    with log_lines("WARNING") as lines:
        yield lines


async def test_garbage_frames_count_toward_pacing_and_are_logged_once_per_second(
    make_gateway: MakeGateway, raw_client: RawFactory, warnings_logged: list[str]
) -> None:
    """Issue 11 item 3: a flood of zero-length frames wrote one WARNING per frame and skipped
    the pacing limit."""
    gw = await make_gateway(pacing_limit=10)
    raw = await raw_client(gw.port)
    await raw.ready()  # startApi is message 1 of this second
    raw.send_raw(b"\0\0\0\0" * 200)
    raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    replies = await raw.messages()
    assert [m.fields[2:4] for m in replies] == [("-1", "100")]  # paced out, reported once
    garbage = [line for line in warnings_logged if "garbage" in line]
    assert len(garbage) == 1
    assert "1 garbage frame" in garbage[0]
    assert gw.frames_dropped == 192  # over the limit: dropped unread, not even decoded
    await raw.close()
    await wait_until(lambda: not gw.clients, what="client gone")
    garbage = [line for line in warnings_logged if "garbage" in line]
    assert len(garbage) == 2  # the rest are summed up when the client leaves
    assert "8 garbage frame" in garbage[1]


async def test_a_socket_that_never_completes_the_handshake_is_closed(
    make_gateway: MakeGateway, raw_client: RawFactory
) -> None:
    """Issue 11 item 4: no handshake timeout; idle sockets stayed forever."""
    gw = await make_gateway(handshake_timeout=0.2)
    mute = await raw_client(gw.port)  # connects, never sends the hello
    half = await raw_client(gw.port)
    half.hello()  # answered, but startApi never follows
    ready = await raw_client(gw.port)
    await ready.ready()
    assert await mute.closed_by_peer(timeout=2.0)
    assert await half.closed_by_peer(timeout=2.0)
    assert not await ready.closed_by_peer(timeout=0.1)
    assert [c.client_id for c in gw.clients] == [1]


async def test_idle_handshakes_do_not_lock_out_real_clients(
    make_gateway: MakeGateway, raw_client: RawFactory, ib_client: IBFactory
) -> None:
    """Sockets that never send the hello used to count toward max_clients until they left."""
    gw = await make_gateway(max_clients=2)
    idle = [await raw_client(gw.port) for _ in range(2)]
    await wait_until(lambda: len(gw.clients) == 2, what="idle sockets accepted")
    first = await raw_client(gw.port)
    await first.ready(client_id=1)  # evicts the oldest unfinished handshake
    assert await idle[0].closed_by_peer()
    second = await raw_client(gw.port)
    await second.ready(client_id=2)  # and the other one
    assert await idle[1].closed_by_peer()
    extra = await raw_client(gw.port)
    assert await extra.closed_by_peer()  # every slot holds an API client: refused as before
    await first.close()
    await wait_until(lambda: len(gw.clients) == 1, what="first released")
    await served(ib_client(), gw.port, 3)


@pytest.mark.parametrize("value", [0, -1, True, math.nan, "5"])
def test_handshake_timeout_is_validated(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^handshake_timeout must be"):
        FakeGateway(handshake_timeout=value)  # type: ignore[arg-type]


async def test_a_stalled_gateway_does_not_time_handshakes_out(
    make_gateway: MakeGateway, raw_client: RawFactory
) -> None:
    gw = await make_gateway(handshake_timeout=0.1)
    raw = await raw_client(gw.port)
    await raw.handshake()
    gw.stall()  # the startApi just sent is never read
    assert not await raw.closed_by_peer(timeout=0.3)
    gw.unstall()
    assert await raw.closed_by_peer(timeout=2.0)
