"""IBConnectionManager against a real FakeGateway over 127.0.0.1 (issue 3)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from ib_async import IB

from tests.helpers import FakeClock, T, assert_no_leaks, fast_settings, manager_tasks, wait_until
from v6.connection import CircuitBreaker, CircuitState, ConnectionState
from v6.errors import (
    CircuitOpenError,
    ClientIdInUse,
    ConnectFailed,
    ConnectTimeout,
    HandshakeFailed,
)
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

MSG_REQ_CURRENT_TIME = 49
MSG_REQ_ACCOUNT_SUMMARY = 62

Factory = Callable[..., IBConnectionManager]


async def test_connects_and_reports_health(make_manager: Factory, gateway: FakeGateway) -> None:
    manager = make_manager()
    await manager.connect()
    assert manager.is_connected
    assert manager.state is ConnectionState.CONNECTED
    assert gateway.client_ids == {1}
    health = await manager.connection_health()
    assert health["connected"] is True
    assert health["healthy"] is True
    assert health["circuit_breaker_state"] == "closed"
    assert health["state"] == "connected"
    assert 0 <= health["last_heartbeat_age_seconds"] < 1
    for key in ("last_rtt_seconds", "consecutive_failures", "reconnect_count", "last_error"):
        assert key in health
    assert manager.last_heartbeat is not None


async def test_disconnect_clears_connected_and_closes_socket(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.connect()
    await manager.disconnect()
    assert not manager.is_connected
    assert manager.state is ConnectionState.STOPPED
    await assert_no_leaks(manager, gateway)


async def test_refused_then_recovering_gateway(make_manager: Factory, gateway: FakeGateway) -> None:
    await gateway.stop()
    manager = make_manager(max_retries=10)
    connecting = asyncio.create_task(manager.connect())
    await wait_until(lambda: manager.stats.attempts.get("refused", 0) >= 2)
    await gateway.start()
    await connecting
    assert manager.is_connected
    assert manager.circuit_breaker.state is CircuitState.CLOSED
    assert manager.circuit_breaker.failure_count == 0


async def test_exact_backoff_schedule_on_injected_clock(gateway: FakeGateway) -> None:
    """The plan's 2 s, 4 s, 8 s with jitter=0, measured without waiting."""
    port = gateway.port
    await gateway.stop()
    clock = FakeClock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    manager = IBConnectionManager(
        port=port,
        jitter=0,
        clock=clock,
        sleep=fake_sleep,
        connect_timeout=20 * T,
        readiness_interval=None,  # the plain schedule (probing splits the waits)
    )
    with pytest.raises(ConnectFailed, match="refused") as info:
        await manager.connect()
    assert isinstance(info.value, ConnectionError)  # the plan's `except ConnectionError` works
    assert slept == [2.0, 4.0, 8.0]
    assert manager.stats.attempts == {"refused": 4}
    assert manager.state is ConnectionState.DISCONNECTED


async def test_jittered_schedule_stays_within_bounds(gateway: FakeGateway) -> None:
    port = gateway.port
    await gateway.stop()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    manager = IBConnectionManager(
        port=port,
        max_retries=6,
        max_delay=20,
        sleep=fake_sleep,
        readiness_interval=None,  # the plain schedule (probing splits the waits)
        rng=random.Random(7),
        circuit_breaker=CircuitBreaker(failure_threshold=100),
    )
    with pytest.raises(ConnectFailed):
        await manager.connect()
    nominal = [2, 4, 8, 16, 20, 20]
    assert len(slept) == len(nominal)
    for delay, base in zip(slept, nominal, strict=True):
        assert base * 0.8 <= delay <= min(20, base * 1.2)
    assert slept != [float(n) for n in nominal]


async def test_breaker_opening_mid_loop_stops_it_and_then_blocks_without_network(
    gateway: FakeGateway,
) -> None:
    gateway.handshake_fault("close")
    clock = FakeClock()

    async def no_sleep(seconds: float) -> None:
        clock.advance(seconds)

    breaker = CircuitBreaker(failure_threshold=2, timeout=60, clock=clock)
    manager = IBConnectionManager(
        port=gateway.port,
        max_retries=5,
        circuit_breaker=breaker,
        clock=clock,
        sleep=no_sleep,
        connect_timeout=20 * T,
        readiness_interval=None,  # counts accepted sockets: no readiness probes
    )
    with pytest.raises(CircuitOpenError) as info:
        await manager.connect()
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, HandshakeFailed)
    assert breaker.state is CircuitState.OPEN
    accepted = gateway.connection_count
    assert accepted == 2
    with pytest.raises(CircuitOpenError):
        await manager.connect()
    assert gateway.connection_count == accepted  # refused at once, nothing sent
    assert manager.state is ConnectionState.CIRCUIT_OPEN
    await manager.stop()


async def test_half_open_admits_one_concurrent_trial_then_closes(gateway: FakeGateway) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    managers = [
        IBConnectionManager(
            port=gateway.port,
            client_id=i,
            circuit_breaker=breaker,
            clock=clock,
            **fast_settings(),
        )
        for i in (1, 2, 3)
    ]
    results = await asyncio.gather(*(m.connect() for m in managers), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 2
    assert gateway.connection_count == 1
    assert breaker.state is CircuitState.CLOSED
    for manager in managers:
        await manager.stop()


async def test_failed_trial_in_half_open_reopens(gateway: FakeGateway) -> None:
    gateway.handshake_fault("close")
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    manager = IBConnectionManager(
        port=gateway.port, circuit_breaker=breaker, clock=clock, **fast_settings(max_retries=3)
    )
    with pytest.raises(CircuitOpenError):
        await manager.connect()
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == 5
    assert gateway.connection_count == 1
    await manager.stop()


async def test_accept_then_close_is_detected_at_once(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    gateway.handshake_fault("close")
    manager = make_manager(max_retries=0, connect_timeout=100 * T)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(HandshakeFailed):
        await manager.connect()
    assert loop.time() - started < 20 * T  # not the 100 T connect timeout
    assert manager.stats.attempts == {"handshake_failed": 1}
    await assert_no_leaks(manager, gateway)


async def test_silent_handshake_times_out(make_manager: Factory, gateway: FakeGateway) -> None:
    gateway.handshake_fault("silent")
    manager = make_manager(max_retries=1, connect_timeout=4 * T)
    with pytest.raises(ConnectTimeout) as info:
        await manager.connect()
    assert isinstance(info.value, TimeoutError)
    assert manager.stats.attempts == {"timeout": 2}
    await manager.stop()
    await wait_until(lambda: manager.ib.client.conn.transport is None)


async def test_client_id_in_use_is_recognised_at_once(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    holder = IB()
    await holder.connectAsync("127.0.0.1", gateway.port, clientId=1)
    try:
        manager = make_manager(max_retries=0, connect_timeout=100 * T)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ClientIdInUse) as info:
            await manager.connect()
        assert loop.time() - started < 20 * T  # raw ib_async waits the whole timeout
        assert info.value.client_id == 1
        assert isinstance(info.value, ConnectionError)
        assert manager.stats.attempts == {"client_id_in_use": 1}
    finally:
        holder.disconnect()


async def test_client_id_list_moves_on_from_an_id_in_use(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    holder = IB()
    await holder.connectAsync("127.0.0.1", gateway.port, clientId=5)
    try:
        manager = make_manager(client_id=[5, 6], max_retries=1)
        await manager.connect()
        assert manager.client_id == 6
        assert gateway.client_ids == {5, 6}
        assert manager.stats.attempts == {"client_id_in_use": 1, "ok": 1}
    finally:
        holder.disconnect()


async def test_single_id_in_use_backs_off_and_retries_until_freed(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    holder = IB()
    await holder.connectAsync("127.0.0.1", gateway.port, clientId=1)
    manager = make_manager(max_retries=20)
    connecting = asyncio.create_task(manager.connect())
    await wait_until(lambda: manager.stats.attempts.get("client_id_in_use", 0) >= 2)
    holder.disconnect()  # the stale session goes away
    await connecting
    assert manager.is_connected


async def test_heartbeat_detects_stall_and_reconnects(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.connect()
    await manager.start_heartbeat()
    loop = asyncio.get_running_loop()
    gateway.stall()
    stalled_at = loop.time()
    await wait_until(lambda: manager.state is not ConnectionState.CONNECTED)
    detected_after = loop.time() - stalled_at
    budget = manager.heartbeat_interval + manager.settings.heartbeat_timeout
    assert detected_after <= budget + 4 * T  # + scheduling slack
    assert manager.stats.probes_failed == 1
    assert "heartbeat" in (manager.last_error or "")
    gateway.unstall()
    await manager.wait_connected(timeout=100 * T)
    assert manager.stats.reconnects == 1
    health = await manager.connection_health()
    assert health["reconnect_count"] == 1
    assert health["healthy"]


async def test_heartbeat_uses_current_time_never_account_summary(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.connect()
    gateway.reset_counts()
    await manager.start_heartbeat()
    # Wait on what the gateway received: a probe the manager has sent may still be in flight.
    await wait_until(lambda: gateway.request_counts[MSG_REQ_CURRENT_TIME] >= 3)
    assert manager.stats.probes_sent >= 3
    assert gateway.request_counts[MSG_REQ_ACCOUNT_SUMMARY] == 0
    assert manager.last_heartbeat is not None
    health = await manager.connection_health()
    assert health["last_rtt_seconds"] is not None
    assert health["last_rtt_seconds"] < 2 * T


def manager_interval() -> float:
    return float(fast_settings()["heartbeat_interval"])


async def test_an_active_connection_is_not_probed(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    from ib_async import Stock

    gateway.set_tick_rate(20 / manager_interval())
    manager = make_manager()
    await manager.connect()
    manager.ib.reqMktData(Stock("AAPL", "SMART", "USD", conId=265598))
    await manager.start_heartbeat()
    gateway.reset_counts()
    await asyncio.sleep(8 * manager.heartbeat_interval)
    assert gateway.request_counts[MSG_REQ_CURRENT_TIME] == 0  # ticks were proof of life
    assert manager.state is ConnectionState.CONNECTED


async def test_context_manager_cleans_up_also_on_exceptions(gateway: FakeGateway) -> None:
    class Boom(Exception):
        pass

    manager = IBConnectionManager(port=gateway.port, supervise=True, **fast_settings())
    with pytest.raises(Boom):  # noqa: PT012 - the whole block is the subject
        async with manager as entered:
            assert entered is manager
            assert manager.is_connected
            await manager.start_heartbeat()
            assert manager_tasks()
            raise Boom
    assert manager.state is ConnectionState.STOPPED
    await assert_no_leaks(manager, gateway)


async def test_failed_aenter_leaves_nothing_behind(gateway: FakeGateway) -> None:
    gateway.handshake_fault("silent")
    manager = IBConnectionManager(
        port=gateway.port, **fast_settings(max_retries=0, connect_timeout=3 * T)
    )
    with pytest.raises(ConnectTimeout):
        async with manager:
            pytest.fail("entered a context that never connected")
    await assert_no_leaks(manager, gateway)


async def test_ensure_connected_reconnects_after_a_drop(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.connect()
    await gateway.drop_all()
    await wait_until(lambda: not manager.is_connected)
    await manager.ensure_connected()
    assert manager.is_connected


async def test_concurrent_callers_share_one_connection(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await asyncio.gather(*(manager.ensure_connected() for _ in range(5)))
    assert manager.is_connected
    assert gateway.connection_count == 1
    assert manager.stats.attempts == {"ok": 1}


async def test_undecodable_bytes_are_not_proof_of_life(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    """A garbage length prefix makes ib_async buffer every later byte; the tick stream that
    keeps arriving must not keep the connection 'alive'."""
    from ib_async import Stock

    gateway.set_tick_rate(20 / manager_interval())
    manager = make_manager()
    await manager.connect()
    manager.ib.reqMktData(Stock("AAPL", "SMART", "USD", conId=265598))
    await manager.start_heartbeat()
    await gateway.send_garbage(b"\x00\xff\xff\xff")  # "a 16 MiB frame follows"
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected)
    assert manager.stats.probes_failed == 1


async def test_326_with_a_free_id_left_does_not_feed_the_breaker(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    holder = IB()
    await holder.connectAsync("127.0.0.1", gateway.port, clientId=5)
    try:
        breaker = CircuitBreaker(failure_threshold=2)
        breaker.record_failure()  # one more failure would open it
        manager = make_manager(client_id=[5, 6], circuit_breaker=breaker, max_retries=0)
        await manager.connect()
        assert manager.client_id == 6
        assert breaker.state is CircuitState.CLOSED
    finally:
        holder.disconnect()


async def test_every_id_in_use_backs_off_and_counts(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    holders = [IB(), IB()]
    for holder, client_id in zip(holders, (5, 6), strict=True):
        await holder.connectAsync("127.0.0.1", gateway.port, clientId=client_id)
    try:
        manager = make_manager(client_id=[5, 6], max_retries=1)
        states = []
        manager.on_state_change(lambda old, new, why: states.append(new))
        with pytest.raises(ClientIdInUse):
            await manager.connect()
        assert manager.stats.attempts == {"client_id_in_use": 4}  # two rounds of two ids
        assert manager.circuit_breaker.failure_count == 2  # one per exhausted round
        assert states.count(ConnectionState.BACKING_OFF) == 1
    finally:
        for holder in holders:
            holder.disconnect()


async def test_stop_goes_straight_to_stopped(make_manager: Factory, gateway: FakeGateway) -> None:
    manager = make_manager()
    await manager.connect()
    states = []
    manager.on_state_change(lambda old, new, why: states.append(new))
    await manager.stop()
    assert states == [ConnectionState.STOPPED]
    assert manager.last_error is None
