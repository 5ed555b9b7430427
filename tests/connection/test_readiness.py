from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.helpers import TIME_UNIT, wait_until
from v6.connection.defaults import DEFAULT_READINESS_INTERVAL
from v6.connection.readiness import (
    IB_ASYNC_MAX_VERSION,
    ProbeAction,
    ProbeOutcome,
    ProbeResult,
    ReadinessSchedule,
    probe_readiness,
)
from v6.connection.state import ConnectionState
from v6.errors import ConfigError
from v6.protocol.codec import ClientMessage, encode_message
from v6.testing import FakeGateway

T = TIME_UNIT
HOST = "127.0.0.1"
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def assert_no_session_left(gw: FakeGateway) -> None:
    await wait_until(lambda: not gw.clients, timeout=40 * T)
    assert not gw.client_ids
    assert gw.request_counts[ClientMessage.START_API] == 0


async def test_running_gateway_answers_with_its_version(gateway: FakeGateway) -> None:
    result = await probe_readiness(HOST, gateway.port, timeout=40 * T)
    assert result.ready
    assert result.outcome is ProbeOutcome.ANSWERED
    assert result.server_version == IB_ASYNC_MAX_VERSION
    assert 0 < result.rtt < 40 * T
    assert gateway.connection_count == 1
    await assert_no_session_left(gateway)


async def test_probe_negotiates_like_ib_async() -> None:
    async with FakeGateway(port=0, server_version=160) as gw:
        result = await probe_readiness(HOST, gw.port, timeout=40 * T)
        assert (result.outcome, result.server_version) == (ProbeOutcome.ANSWERED, 160)
        assert "answered version 160" in str(result)
        await assert_no_session_left(gw)


async def test_stopped_gateway_refuses(gateway: FakeGateway) -> None:
    await gateway.stop()
    result = await probe_readiness(HOST, gateway.port, timeout=40 * T)
    assert result.outcome is ProbeOutcome.REFUSED
    assert not result.ready
    assert not result.outcome.accepted


async def test_accept_without_answer_is_not_ready(gateway: FakeGateway) -> None:
    gateway.handshake_fault("silent")
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe_readiness(HOST, gateway.port, timeout=4 * T)
    elapsed = loop.time() - started
    assert result.outcome is ProbeOutcome.SILENT
    assert result.outcome.accepted
    assert not result.ready
    assert 4 * T <= elapsed < 40 * T  # bounded by the timeout, not by the gateway
    await assert_no_session_left(gateway)


async def test_a_slow_tcp_connect_leaves_the_hello_only_the_rest_of_the_timeout(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect = asyncio.open_connection

    async def slow_connect(host: str, port: int) -> Streams:
        await asyncio.sleep(10 * T)  # a far host: the SYN's answer takes its time
        return await connect(host, port)

    monkeypatch.setattr(asyncio, "open_connection", slow_connect)
    gateway.handshake_fault("silent")
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe_readiness(HOST, gateway.port, timeout=12 * T)
    elapsed = loop.time() - started
    assert result.outcome is ProbeOutcome.SILENT
    assert 12 * T <= elapsed < 18 * T  # the total timeout, not 10 T + a fresh 12 T for the hello
    await assert_no_session_left(gateway)


async def test_accept_then_close_is_not_ready(gateway: FakeGateway) -> None:
    gateway.handshake_fault("close")
    result = await probe_readiness(HOST, gateway.port, timeout=40 * T)
    assert result.outcome is ProbeOutcome.CLOSED
    assert result.outcome.accepted
    assert not result.ready
    await assert_no_session_left(gateway)


async def test_gateway_back_after_restart_is_ready_again(gateway: FakeGateway) -> None:
    await gateway.stop()
    assert not (await probe_readiness(HOST, gateway.port, timeout=40 * T)).ready
    await gateway.start()
    assert (await probe_readiness(HOST, gateway.port, timeout=40 * T)).ready


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[bytes], Awaitable[int]]]:
    """A server that answers every connection with fixed bytes (an HTTP server, a bad proxy)."""
    servers: list[asyncio.Server] = []

    async def start(answer: bytes) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(answer)
            await writer.drain()
            await reader.read(100)  # until the probe closes
            writer.close()

        server = await asyncio.start_server(handle, HOST, 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 400 Bad Request\r\n\r\n",  # the length prefix reads as > 16 MB
        encode_message(178, "20240101 10:00:00 UTC", "extra"),  # three fields, not two
        encode_message("v178", "now"),  # a version that is not a number
    ],
)
async def test_something_else_on_the_port_is_garbage(
    raw_server: Callable[[bytes], Awaitable[int]], answer: bytes
) -> None:
    port = await raw_server(answer)
    result = await probe_readiness(HOST, port, timeout=40 * T)
    assert result.outcome is ProbeOutcome.GARBAGE
    assert result.detail
    assert not result.ready


async def test_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"readiness_timeout must be in \(0, inf\)"):
        await probe_readiness(HOST, 1, timeout=0)


# ---- schedule (pure)


def answered() -> ProbeResult:
    return ProbeResult(ProbeOutcome.ANSWERED, 0.001, 178)


def silent() -> ProbeResult:
    return ProbeResult(ProbeOutcome.SILENT, 2.0)


def test_probes_only_while_backing_off_or_circuit_open() -> None:
    probing = {s for s in ConnectionState if ReadinessSchedule.applies(s)}
    assert probing == {ConnectionState.BACKING_OFF, ConnectionState.CIRCUIT_OPEN}


def test_default_interval_and_jittered_delays_stay_in_bounds() -> None:
    schedule = ReadinessSchedule(rng=random.Random(7))
    assert schedule.interval == DEFAULT_READINESS_INTERVAL == 1.0
    delays = [schedule.delay() for _ in range(500)]
    assert all(0.8 <= d <= 1.0 for d in delays)  # never longer than the interval
    assert max(delays) - min(delays) > 0.15  # actually spread, not constant
    assert schedule.next_probe_at(100.0) == pytest.approx(100.0 + schedule.interval, abs=0.2)


def test_same_seed_same_delays_and_zero_jitter_is_exact() -> None:
    a = ReadinessSchedule(interval=0.5, rng=random.Random(1))
    b = ReadinessSchedule(interval=0.5, rng=random.Random(1))
    assert [a.delay() for _ in range(5)] == [b.delay() for _ in range(5)]
    exact = ReadinessSchedule(interval=0.5, jitter=0.0)
    assert exact.next_probe_at(10.0) == 10.5


def test_decide_attempts_at_once_when_ready_and_counts_probes() -> None:
    schedule = ReadinessSchedule(rng=random.Random(0))
    assert schedule.decide(ConnectionState.BACKING_OFF, silent()) is ProbeAction.WAIT
    assert schedule.decide(ConnectionState.CIRCUIT_OPEN, answered()) is ProbeAction.ATTEMPT_NOW
    assert schedule.decide(ConnectionState.CONNECTING, answered()) is ProbeAction.STOP
    assert schedule.probes == 3
    assert schedule.outcomes[ProbeOutcome.ANSWERED] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, r"readiness_interval must be in \(0, inf\)"),
        ({"interval": float("nan")}, "readiness_interval must be a number"),
        ({"jitter": 0.6}, r"readiness_jitter must be in \[0, 0.5\]"),
    ],
)
def test_invalid_schedule_names_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReadinessSchedule(**kwargs)  # type: ignore[arg-type]
