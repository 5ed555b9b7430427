"""Every runtime fault of the fake gateway, observed from real clients."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
from ib_async import IB

from tests.testing.helpers import RawClient, wait_until
from v6.errors import ConfigError
from v6.protocol.codec import ClientMessage, Message
from v6.testing import STARTUP_SYNC_REQUESTS, SYSTEM_MESSAGES, FakeGateway
from v6.testing.gateway.faults import (
    BrokenHandshake,
    Faults,
    HookVerdict,
    IgnoreRequests,
    Latency,
    Stall,
)

MakeGateway = Callable[..., Awaitable[FakeGateway]]
RawFactory = Callable[[int], Awaitable[RawClient]]
IBFactory = Callable[[], IB]


async def connect(ib: IB, port: int, client_id: int = 1, timeout: float = 2.0) -> IB:
    return await ib.connectAsync(
        "127.0.0.1", port, clientId=client_id, timeout=timeout, raiseSyncErrors=True
    )


async def test_stall_black_holes_requests_and_new_hellos(
    fake_gateway: FakeGateway, ib_client: IBFactory
) -> None:
    ib = ib_client()
    await connect(ib, fake_gateway.port)
    fake_gateway.stall()
    assert fake_gateway.stalled
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.2)
    assert ib.isConnected()  # the socket stays open
    assert fake_gateway.request_counts[ClientMessage.REQ_CURRENT_TIME] == 1  # received, unanswered

    newcomer = ib_client()
    with pytest.raises(TimeoutError):
        await connect(newcomer, fake_gateway.port, client_id=2, timeout=0.3)
    assert fake_gateway.connection_count == 2

    fake_gateway.unstall()
    assert await asyncio.wait_for(ib.reqCurrentTimeAsync(), 1)
    late = ib_client()
    await connect(late, fake_gateway.port, client_id=3)


async def test_stall_pauses_tick_streams(make_gateway: MakeGateway, raw_client: RawFactory) -> None:
    gw = await make_gateway(tick_rate=200.0)
    raw = await raw_client(gw.port)
    await raw.ready()
    raw.send(
        1, 11, 5, 0, "AAPL", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", 0, "", 0, 0, ""
    )
    assert len(await raw.messages(quiet=0.05, timeout=0.2)) > 10
    gw.stall()
    await raw.messages(quiet=0.05, timeout=0.2)  # whatever was in flight
    assert await raw.messages(quiet=0.15, timeout=0.3) == []
    gw.unstall()
    assert len(await raw.messages(quiet=0.05, timeout=0.2)) > 10


async def test_drop_all_closes_with_fin(
    fake_gateway: FakeGateway, ib_client: IBFactory, raw_client: RawFactory
) -> None:
    ib = ib_client()
    await connect(ib, fake_gateway.port)
    disconnected = asyncio.Event()
    ib.disconnectedEvent += disconnected.set
    raw = await raw_client(fake_gateway.port)
    await raw.ready(client_id=2)

    await fake_gateway.drop_all()
    await asyncio.wait_for(disconnected.wait(), 1)
    assert await raw.closed_by_peer()  # clean EOF, no reset
    assert fake_gateway.client_ids == frozenset()
    assert fake_gateway.clients == ()
    await connect(ib_client(), fake_gateway.port)  # still listening


async def test_drop_all_reset_sends_rst(fake_gateway: FakeGateway, raw_client: RawFactory) -> None:
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    await fake_gateway.drop_all(reset=True)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(raw.reader.read(100), 1)


async def test_stop_refuses_and_start_rebinds_the_same_port(
    fake_gateway: FakeGateway, ib_client: IBFactory
) -> None:
    port = fake_gateway.port
    ib = ib_client()
    await connect(ib, port)
    await fake_gateway.stop()
    assert not fake_gateway.is_serving
    await wait_until(lambda: not ib.isConnected(), what="client sees the stop")
    with pytest.raises(ConnectionRefusedError):
        await connect(ib_client(), port)

    await fake_gateway.start()
    assert fake_gateway.port == port
    await connect(ib_client(), port)


async def test_async_context_manager_binds_and_releases() -> None:
    async with FakeGateway(port=0) as gw:
        port = gw.port
        assert port > 0
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_handshake_fault_close(fake_gateway: FakeGateway, raw_client: RawFactory,
                                     ib_client: IBFactory) -> None:  # fmt: skip
    fake_gateway.handshake_fault("close")
    raw = await raw_client(fake_gateway.port)
    assert await raw.closed_by_peer(0.5)
    with pytest.raises(TimeoutError):
        await connect(ib_client(), fake_gateway.port, timeout=0.3)
    fake_gateway.handshake_fault(None)
    await connect(ib_client(), fake_gateway.port)


async def test_handshake_fault_silent(fake_gateway: FakeGateway, raw_client: RawFactory) -> None:
    fake_gateway.handshake_fault("silent")
    raw = await raw_client(fake_gateway.port)
    raw.hello()
    with pytest.raises(TimeoutError):
        await raw.next_event(timeout=0.2)
    assert not await raw.closed_by_peer(0.05)
    fake_gateway.handshake_fault(None)
    ok = await raw_client(fake_gateway.port)
    await ok.ready()


def test_handshake_fault_rejects_unknown_modes() -> None:
    with pytest.raises(ConfigError, match="handshake_fault"):
        FakeGateway().handshake_fault("explode")


@pytest.mark.parametrize("code", sorted(SYSTEM_MESSAGES))
async def test_broadcast_error_uses_tws_text(
    fake_gateway: FakeGateway, ib_client: IBFactory, code: int
) -> None:
    ibs = [ib_client(), ib_client()]
    for i, ib in enumerate(ibs):
        await connect(ib, fake_gateway.port, client_id=i)
    seen: list[list[tuple[int, int, str]]] = [[], []]
    for ib, log in zip(ibs, seen, strict=True):
        ib.errorEvent += lambda req_id, c, text, contract, log=log: log.append((req_id, c, text))
    assert fake_gateway.broadcast_error(code) == 2
    await wait_until(lambda: all(seen), what="broadcast")
    assert seen == [[(-1, code, SYSTEM_MESSAGES[code])]] * 2


async def test_broadcast_error_custom_text_and_unknown_code(
    fake_gateway: FakeGateway, raw_client: RawFactory
) -> None:
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    fake_gateway.broadcast_error(
        1300, "Socket port has been reset and this connection is being dropped."
    )
    [msg] = await raw.messages()
    assert msg.fields[2:4] == ("-1", "1300")
    with pytest.raises(ConfigError, match="text"):
        fake_gateway.broadcast_error(1300)


async def test_broadcast_skips_clients_before_start_api(
    fake_gateway: FakeGateway, raw_client: RawFactory
) -> None:
    raw = await raw_client(fake_gateway.port)
    raw.hello()
    await raw.next_event()
    assert fake_gateway.broadcast_error(1100) == 0


async def test_latency_delays_replies_and_keeps_order(
    fake_gateway: FakeGateway, raw_client: RawFactory
) -> None:
    raw = await raw_client(fake_gateway.port)
    await raw.ready()
    fake_gateway.set_latency(0.1)
    started = time.monotonic()
    raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
    first = await raw.next_event()
    assert time.monotonic() - started >= 0.09
    assert isinstance(first, Message)
    assert first.msg_id == 49
    for _ in range(3):
        raw.send(ClientMessage.REQ_IDS, 1, 1)
        raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
        fake_gateway.set_latency(0.0)  # shrinking the latency must not reorder
    replies = await raw.messages()
    assert [m.msg_id for m in replies] == [9, 49] * 3


@pytest.mark.parametrize("latency", [-0.1, float("inf"), float("nan")])
def test_latency_must_be_finite_and_non_negative(latency: float) -> None:
    with pytest.raises(ConfigError, match="latency"):
        FakeGateway().set_latency(latency)


async def test_send_garbage_reaches_every_client(
    fake_gateway: FakeGateway, raw_client: RawFactory
) -> None:
    clients = [await raw_client(fake_gateway.port) for _ in range(2)]
    for i, raw in enumerate(clients):
        await raw.ready(client_id=i)
    assert await fake_gateway.send_garbage(b"\x00\x00\x00\x03abc") == 2
    for raw in clients:
        bad = await raw.next_event()
        assert getattr(bad, "payload", None) == b"abc"  # a BadFrame: not NUL-terminated


async def test_sync_never_completes_when_startup_requests_are_ignored(
    fake_gateway: FakeGateway, ib_client: IBFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="ib_async")
    fake_gateway.ignore_requests(STARTUP_SYNC_REQUESTS)
    with pytest.raises(ConnectionError, match="timed out"):
        await connect(ib_client(), fake_gateway.port, timeout=0.2)
    assert "positions request timed out" in caplog.text
    fake_gateway.ignore_requests()
    await connect(ib_client(), fake_gateway.port, client_id=2)


async def test_counts_accepts_and_reset(raw_client: RawFactory) -> None:
    stamps: list[float] = []
    async with FakeGateway(port=0, on_accept=stamps.append) as gw:
        before = time.monotonic()
        for client_id in (1, 2):
            raw = await raw_client(gw.port)
            await raw.ready(client_id)
            raw.send(ClientMessage.REQ_CURRENT_TIME, 1)
            await raw.messages()
        assert gw.connection_count == 2
        assert gw.request_counts == {ClientMessage.START_API: 2, ClientMessage.REQ_CURRENT_TIME: 2}
        assert len(gw.accept_times) == 2
        assert all(before <= t <= time.monotonic() for t in gw.accept_times)
        assert list(gw.accept_times) == stamps
        assert sorted(c.client_id for c in gw.clients if c.client_id is not None) == [1, 2]
        gw.reset_counts()
        assert (gw.connection_count, gw.request_counts, gw.accept_times) == (0, {}, ())


async def test_max_clients_closes_the_extra_socket(
    make_gateway: MakeGateway, raw_client: RawFactory
) -> None:
    gw = await make_gateway(max_clients=2)
    first, second = await raw_client(gw.port), await raw_client(gw.port)
    await first.ready(1)
    await second.ready(2)
    extra = await raw_client(gw.port)
    assert await extra.closed_by_peer()
    assert gw.connection_count == 3
    await first.close()
    await wait_until(lambda: len(gw.clients) == 1, what="first released")
    again = await raw_client(gw.port)
    await again.ready(3)


async def test_default_limit_is_32_simultaneous_clients(
    fake_gateway: FakeGateway, raw_client: RawFactory
) -> None:
    clients = [await raw_client(fake_gateway.port) for _ in range(32)]
    await asyncio.gather(*(raw.ready(client_id=i) for i, raw in enumerate(clients)))
    assert fake_gateway.client_ids == set(range(32))
    extra = await raw_client(fake_gateway.port)
    assert await extra.closed_by_peer()
    assert len(fake_gateway.clients) == 32


# ----------------------------------------------------------------------- fault objects, no sockets


def test_fault_verdicts_combine_by_severity_whatever_the_order() -> None:
    faults = Faults()
    faults.switch_on(IgnoreRequests([49]))
    assert faults.on_request(49) is HookVerdict.DROP
    assert faults.on_request(8) is HookVerdict.PASS
    faults.switch_on(Stall())
    assert faults.on_request(49) is HookVerdict.SILENCE  # a frozen TWS does not even pace it
    assert faults.on_hello() is HookVerdict.SILENCE
    assert faults.output_held()
    faults.switch_off(Stall)
    assert not faults.output_held()
    assert faults.on_request(49) is HookVerdict.DROP


def test_one_fault_per_kind_and_change_notifications() -> None:
    changes: list[str] = []
    faults = Faults(on_change=lambda: changes.append(repr(faults)))
    faults.switch_on(Latency(0.5))
    faults.switch_on(Latency(0.25))
    faults.switch_on(BrokenHandshake("close"))
    assert faults.send_delay() == 0.25
    assert faults.on_accept() is HookVerdict.CLOSE
    faults.switch_off(Stall)  # not on: no change
    assert changes == [
        "[Latency(0.5)]",
        "[Latency(0.25)]",
        "[Latency(0.25), BrokenHandshake('close')]",
    ]
    assert BrokenHandshake("silent").on_accept() is HookVerdict.SILENCE


async def test_output_released_wakes_waiters_when_the_stall_ends() -> None:
    faults = Faults()
    faults.switch_on(Stall())
    waiter = asyncio.ensure_future(faults.output_released())
    await asyncio.sleep(0)
    assert not waiter.done()
    faults.switch_off(Stall)
    await asyncio.wait_for(waiter, 1)


# ------------------------------------------------------------------------------ listening addresses


async def test_all_interfaces_share_one_port_and_every_address_is_reported() -> None:
    """Issue 11 item 5: host "" listened on IPv4 and IPv6 on two different ports; gw.port read
    the first socket only."""
    async with FakeGateway(host="", port=0) as gw:
        families = {":" in address for address, _ in gw.addresses}
        assert {port for _, port in gw.addresses} == {gw.port}
        for host in ["127.0.0.1", "::1"] if families == {False, True} else ["127.0.0.1"]:
            _, writer = await asyncio.open_connection(host, gw.port)
            writer.close()
            await writer.wait_closed()
    assert gw.addresses == ()


async def test_addresses_of_the_default_host() -> None:
    async with FakeGateway(port=0) as gw:
        assert gw.addresses == (("127.0.0.1", gw.port),)
