"""Supervision against a real FakeGateway (issue 4): reconnects, IB's 11xx messages, hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from ib_async import IB, Stock

from tests.helpers import HeldBackReconnect, T, assert_no_leaks, manager_tasks, wait_until
from v6.connection import ConnectionState
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

Factory = Callable[..., IBConnectionManager]
S = ConnectionState
MSG_REQ_ACCOUNT_SUMMARY = 62
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


def record_states(manager: IBConnectionManager) -> list[ConnectionState]:
    seen: list[ConnectionState] = []
    manager.on_state_change(lambda old, new, reason: seen.append(new))
    return seen


async def test_reconnects_on_drop_without_caller_action(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    reconnects: list[bool] = []
    reasons: list[str] = []
    manager.on_connected(reconnects.append)
    manager.on_disconnected(reasons.append)
    loop = asyncio.get_running_loop()
    left_connected: list[float] = []
    manager.on_state_change(
        lambda old, new, why: left_connected.append(loop.time()) if old is S.CONNECTED else None
    )
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    dropped_at = loop.time()
    await gateway.drop_all()
    await wait_until(lambda: manager.stats.reconnects == 1)
    assert left_connected[0] - dropped_at < manager.heartbeat_interval  # event-driven, no probe
    assert manager.stats.probes_sent == 0
    assert manager.is_connected
    assert reconnects == [False, True]
    assert reasons == ["gateway closed the connection"]


@pytest.mark.parametrize("reset", [False, True])
async def test_reconnects_after_fin_and_rst(
    make_manager: Factory, gateway: FakeGateway, reset: bool
) -> None:
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    await gateway.drop_all(reset=reset)
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected)


async def test_one_reconnect_loop_when_everything_fires_together(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager(heartbeat_interval=T, heartbeat_timeout=T)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    accepted = gateway.connection_count
    gateway.stall()  # the heartbeat is about to time out ...
    await asyncio.sleep(1.5 * T)
    gateway.broadcast_error(1100)  # ... while TWS says it is cut off ...
    gateway.unstall()
    await gateway.drop_all()  # ... and the socket drops.
    await wait_until(lambda: manager.stats.reconnects >= 1 and manager.is_connected)
    await asyncio.sleep(6 * T)
    supervisors = [t for t in manager_tasks() if t.get_name() == "v6-ib-supervisor"]
    assert len(supervisors) == 1
    assert manager.stats.reconnects == 1
    assert gateway.connection_count == accepted + 1
    assert len(gateway.client_ids) == 1


async def test_1100_degrades_and_1102_restores_without_reconnect(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    resubscribed: list[int] = []
    manager.add_resubscribe(lambda: resubscribed.append(1))
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    accepted = gateway.connection_count
    gateway.broadcast_error(1100)
    await wait_until(lambda: manager.state is S.DEGRADED)
    health = await manager.connection_health()
    assert health["state"] == "degraded"
    assert not health["healthy"]
    assert health["connected"]
    gateway.broadcast_error(1102)
    await wait_until(lambda: manager.state is S.CONNECTED)
    await asyncio.sleep(4 * T)
    assert gateway.connection_count == accepted
    assert manager.stats.reconnects == 0
    assert resubscribed == []


async def test_2110_degrades_too(make_manager: Factory, gateway: FakeGateway) -> None:
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    gateway.broadcast_error(2110)
    await wait_until(lambda: manager.state is S.DEGRADED)


async def test_degraded_past_grace_reconnects(make_manager: Factory, gateway: FakeGateway) -> None:
    manager = make_manager(degraded_grace=3 * T)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    gateway.broadcast_error(1100)
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.state is S.CONNECTED)
    assert "cut off" in (manager.last_error or "")


async def test_resubscribe_fires_once_after_1101_and_once_after_reconnect(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    calls: list[str] = []
    ticks: list[float] = []

    def resubscribe() -> None:
        calls.append(manager.state.name)
        manager.ib.reqMktData(AAPL)

    manager.add_resubscribe(resubscribe)
    manager.ib.pendingTickersEvent += lambda tickers: ticks.append(
        asyncio.get_running_loop().time()
    )
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    manager.ib.reqMktData(AAPL)
    await wait_until(lambda: len(ticks) > 0)

    gateway.broadcast_error(1100)
    await wait_until(lambda: manager.state is S.DEGRADED)
    gateway.broadcast_error(1101)
    await wait_until(lambda: len(calls) == 1)
    assert manager.state is S.CONNECTED

    await gateway.drop_all()
    await wait_until(lambda: manager.stats.reconnects == 1 and len(calls) == 2)
    resumed_from = len(ticks)
    await wait_until(lambda: len(ticks) > resumed_from)  # the stream resumed after reconnect
    await asyncio.sleep(4 * T)
    assert len(calls) == 2


async def test_1100_1102_cycles_do_not_exhaust_account_summaries(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    for _ in range(3):
        gateway.broadcast_error(1100)
        await wait_until(lambda: manager.state is S.DEGRADED)
        gateway.broadcast_error(1102)
        await wait_until(lambda: manager.state is S.CONNECTED)
    await asyncio.sleep(2 * T)
    assert gateway.active_account_summaries <= 2
    assert gateway.request_counts[MSG_REQ_ACCOUNT_SUMMARY] == 0


async def test_raw_ib_async_does_exhaust_them(gateway: FakeGateway) -> None:
    """The baseline the test above guards against: ib_async alone, same cycles."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=9)
    try:
        for _ in range(3):
            gateway.broadcast_error(1100)
            gateway.broadcast_error(1102)
        await wait_until(lambda: gateway.request_counts[MSG_REQ_ACCOUNT_SUMMARY] >= 3)
        assert gateway.active_account_summaries == 2  # the third got error 322
    finally:
        ib.disconnect()


async def test_supervised_326_rotates_client_ids(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager(client_id=[11, 12], backoff=HeldBackReconnect(T, 4 * T, 0.0))
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    await gateway.drop_all()
    holder = IB()
    try:
        await wait_until(lambda: 11 not in gateway.client_ids)
        await holder.connectAsync("127.0.0.1", gateway.port, clientId=11)
        await wait_until(lambda: manager.is_connected and manager.client_id == 12, timeout=100 * T)
        assert manager.stats.attempts.get("client_id_in_use", 0) >= 1
    finally:
        holder.disconnect()


async def test_raising_callbacks_do_not_stop_supervision(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()

    def bad_sync(*args: Any) -> None:
        raise RuntimeError("user bug")

    async def bad_async(*args: Any) -> None:
        raise RuntimeError("async user bug")

    for register in (manager.on_connected, manager.on_disconnected, manager.on_state_change):
        register(bad_sync)
        register(bad_async)
    manager.add_resubscribe(bad_sync)
    manager.add_resubscribe(bad_async)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    for expected in (1, 2):
        await gateway.drop_all()
        await wait_until(lambda n=expected: manager.stats.reconnects == n and manager.is_connected)


async def test_async_callbacks_are_awaited(make_manager: Factory, gateway: FakeGateway) -> None:
    manager = make_manager()
    done = asyncio.Event()

    async def on_connected(reconnect: bool) -> None:
        await asyncio.sleep(0)
        done.set()

    manager.on_connected(on_connected)
    await manager.start()
    await asyncio.wait_for(done.wait(), 40 * T)


async def test_waits_out_a_down_gateway_through_the_breaker(gateway: FakeGateway) -> None:
    from v6.connection import CircuitBreaker, CircuitState

    breaker = CircuitBreaker(failure_threshold=2, timeout=4 * T)
    manager = IBConnectionManager(
        port=gateway.port,
        circuit_breaker=breaker,
        retry_delay=T,
        max_delay=2 * T,
        heartbeat_interval=2 * T,
        heartbeat_timeout=2 * T,
        connect_timeout=20 * T,
        jitter=0,
    )
    states = record_states(manager)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    await gateway.stop()
    await wait_until(lambda: S.CIRCUIT_OPEN in states, timeout=100 * T)
    assert breaker.state in (CircuitState.OPEN, CircuitState.HALF_OPEN)
    await gateway.start()
    await manager.wait_connected(timeout=100 * T)
    assert breaker.state is CircuitState.CLOSED
    await manager.stop()


async def test_farm_notices_are_tracked_not_acted_on(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    gateway.broadcast_error(2103, "Market data farm connection is broken:usfarm")
    await wait_until(lambda: manager.health().farms.get("market_data:usfarm") == "broken")
    health = await manager.connection_health()
    assert health["farms"]["market_data:usfarm"] == "broken"
    assert manager.state is S.CONNECTED
    assert manager.stats.reconnects == 0
    gateway.broadcast_error(2104, "Market data farm connection is OK:usfarm")
    await wait_until(lambda: manager.health().farms.get("market_data:usfarm") == "ok")


async def test_wait_connected_times_out(make_manager: Factory, gateway: FakeGateway) -> None:
    await gateway.stop()
    manager = make_manager()
    await manager.start()
    with pytest.raises(TimeoutError):
        await manager.wait_connected(timeout=3 * T)


async def test_stop_leaves_no_task_or_socket(make_manager: Factory, gateway: FakeGateway) -> None:
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    gateway.handshake_fault("silent")  # the reconnect's attempt hangs in the handshake ...
    await gateway.drop_all()
    await wait_until(lambda: manager.state is S.CONNECTING and gateway.connection_count == 2)
    await manager.stop()  # ... so this stop lands in the middle of reconnecting
    assert manager.state is S.STOPPED
    await assert_no_leaks(manager, gateway)


async def test_supervise_flag_in_async_with(gateway: FakeGateway) -> None:
    from tests.helpers import fast_settings

    async with IBConnectionManager(port=gateway.port, supervise=True, **fast_settings()) as m:
        await gateway.drop_all()
        await wait_until(lambda: m.stats.reconnects == 1 and m.is_connected)
    assert m.state is S.STOPPED


async def test_async_callbacks_fired_by_stop_run_and_leave_no_task(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    seen: list[str] = []

    async def on_disconnected(reason: str) -> None:
        await asyncio.sleep(0)
        seen.append(reason)

    manager.on_disconnected(on_disconnected)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    await manager.stop()
    assert seen == ["stopped by the user"]
    assert len(manager.connection.hooks.registry.tasks) == 0


@pytest.mark.parametrize("gap", [0, 1, 2, 3])
async def test_stop_right_after_a_wake_returns_at_once(
    make_manager: Factory, gateway: FakeGateway, gap: int
) -> None:
    """A wake (socket closed, 11xx, ...) just before stop() must not eat stop()'s cancel."""
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    await asyncio.sleep(T / 5)
    manager.connection._heartbeat.wake()
    for _ in range(gap):
        await asyncio.sleep(0)
    async with asyncio.timeout(20 * T):
        await manager.stop()
    assert manager.state is S.STOPPED
    assert not [t for t in manager_tasks() if t.get_name() == "v6-ib-supervisor"]


async def test_cancelling_the_caller_of_stop_is_not_swallowed(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)

    async def stop_then_mark() -> str:
        await manager.stop()
        await asyncio.sleep(0)  # a cancelled caller never gets here
        return "finished"

    stopping = asyncio.create_task(stop_then_mark())
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
