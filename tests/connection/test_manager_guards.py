"""Behaviours a planted bug slipped past before (issue 11, "the tests ... let these through"):
each test here fails with its bug planted. Real sockets where the defect would be on the wire;
a FakeLink (our own seam) or an injected clock where it is logic."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from ib_async import IB

from tests.connection.fakes import FAKE_SETTINGS, FakeLink
from tests.helpers import FakeClock, T, fast_settings, manager_tasks, wait_until
from v6.connection import CircuitBreaker, CircuitState, ConnectionState
from v6.connection.supervisor import TASK_NAME
from v6.errors import CircuitOpenError, FatalConnectError
from v6.manager import IBConnectionManager
from v6.protocol.codec import ClientMessage
from v6.testing import FakeGateway

Factory = Callable[..., IBConnectionManager]
S = ConnectionState
NO_SUCH_HOST = socket.gaierror(socket.EAI_NONAME, "Name or service not known")


async def test_a_bad_host_is_not_retried_like_a_refused_port(fake_manager: Factory) -> None:
    link = FakeLink(NO_SUCH_HOST, NO_SUCH_HOST, NO_SUCH_HOST, NO_SUCH_HOST)
    manager = fake_manager(link, max_retries=3)
    with pytest.raises(FatalConnectError):
        await manager.connect()
    assert len(link.connects) == 1  # the FATAL verdict ends the loop at once
    assert manager.circuit_breaker.failure_count == 0
    assert manager.stats.attempts == {"fatal": 1}


async def test_supervisions_fatal_error_reaches_wait_connected_as_itself(
    fake_manager: Factory,
) -> None:
    link = FakeLink(NO_SUCH_HOST)
    manager = fake_manager(link)
    await manager.start()
    with pytest.raises(FatalConnectError) as info:
        await manager.wait_connected(timeout=1)
    assert isinstance(info.value.__cause__, socket.gaierror)


async def test_stop_heartbeat_keeps_the_connection(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.connect()
    await manager.start_heartbeat()
    await manager.stop_heartbeat()
    assert not [t for t in manager_tasks() if t.get_name() == TASK_NAME]
    assert manager.is_connected
    assert manager.state is S.CONNECTED
    await asyncio.sleep(2 * T)  # a close would reach the gateway by now
    assert gateway.client_ids == {manager.client_id}
    assert manager.ib.isConnected()


async def test_a_new_heartbeat_interval_applies_at_once(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager(heartbeat_interval=1000 * T)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    await asyncio.sleep(T)  # the watcher is asleep for 1000 T
    gateway.reset_counts()
    manager.heartbeat_interval = 2 * T
    await wait_until(lambda: gateway.request_counts[ClientMessage.REQ_CURRENT_TIME] >= 1, 20 * T)


async def test_connect_during_supervision_with_the_breaker_open_raises_at_once(
    gateway: FakeGateway,
) -> None:
    await gateway.stop()
    breaker = CircuitBreaker(failure_threshold=1, timeout=1000 * T)
    manager = IBConnectionManager(port=gateway.port, circuit_breaker=breaker, **fast_settings())
    try:
        await manager.start()
        await wait_until(lambda: breaker.state is CircuitState.OPEN)
        async with asyncio.timeout(10 * T):  # not a wait for the breaker's 1000 T
            with pytest.raises(CircuitOpenError):
                await manager.connect()
    finally:
        await manager.stop()


async def test_healthy_turns_false_with_a_stale_heartbeat_without_supervision(
    gateway: FakeGateway,
) -> None:
    clock = FakeClock()
    manager = IBConnectionManager(port=gateway.port, clock=clock, **fast_settings())
    try:
        await manager.connect()
        assert manager.health().healthy
        settings = manager.settings
        clock.advance(settings.heartbeat_interval + settings.heartbeat_timeout + 1)
        health = manager.health()
        assert health.connected
        assert not health.healthy
    finally:
        await manager.stop()


async def test_a_socket_closed_while_degraded_is_found_at_once(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager(heartbeat_interval=1000 * T, degraded_grace=1000 * T)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    gateway.broadcast_error(1100)
    await wait_until(lambda: manager.state is S.DEGRADED)
    left: list[ConnectionState] = []
    manager.on_state_change(lambda old, new, why: left.append(old))
    await gateway.drop_all()
    await wait_until(lambda: S.DEGRADED in left, timeout=10 * T)  # not at a probe 1000 T away
    assert manager.stats.probes_sent == 0


async def test_the_first_reconnect_after_a_loss_is_jittered(fake_manager: Factory) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    link = FakeLink()
    manager = fake_manager(link, jitter=0.5, sleep=sleep, rng=random.Random(3))
    await manager.start()
    await manager.wait_connected(timeout=1)
    link.drop()
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected)
    assert len(slept) == 1
    assert 0 < slept[0] <= FAKE_SETTINGS["retry_delay"]


async def test_a_stalled_gateway_holds_replies_queued_under_latency(gateway: FakeGateway) -> None:
    """The manager's stall detection relies on it: nothing comes out until unstall()."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=9)
    try:
        gateway.set_latency(3 * T)
        asking = asyncio.ensure_future(ib.reqCurrentTimeAsync())
        await wait_until(lambda: gateway.request_counts[ClientMessage.REQ_CURRENT_TIME] >= 1)
        gateway.stall()  # the reply is queued, due in 3 T
        await asyncio.sleep(6 * T)
        assert not asking.done()
        gateway.unstall()
        async with asyncio.timeout(20 * T):
            await asking
    finally:
        ib.disconnect()


async def test_last_heartbeat_is_the_time_of_the_last_proof_of_life(
    gateway: FakeGateway,
) -> None:
    clock = FakeClock()
    manager = IBConnectionManager(port=gateway.port, clock=clock, **fast_settings())
    try:
        await manager.connect()
        clock.advance(100.0)
        seen = manager.last_heartbeat
        assert seen is not None
        assert abs((datetime.now(UTC) - seen).total_seconds() - 100.0) < 1.0
        assert manager.last_heartbeat_age == 100.0
    finally:
        await manager.stop()


async def test_last_heartbeat_is_close_to_now_after_a_probe(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.connect()
    await manager.start_heartbeat()
    heartbeat = manager.connection._heartbeat
    await wait_until(lambda: manager.stats.probes_sent >= 1 and heartbeat.last_rtt)
    seen = manager.last_heartbeat
    assert seen is not None
    assert seen.tzinfo is UTC
    age = (datetime.now(UTC) - seen).total_seconds()
    assert 0 <= age < manager.heartbeat_interval + 2 * T


async def test_stop_in_the_middle_of_a_reconnect(fake_manager: Factory) -> None:
    """Driven, not hoped for: the reconnect's attempt is in flight when stop() lands."""

    class HangingLink(FakeLink):
        async def connect(self, client_id: int, settings: object) -> None:
            if self.connects:  # every attempt after the first hangs until cancelled
                self.connects.append(client_id)
                await asyncio.Event().wait()
            await super().connect(client_id, settings)  # type: ignore[arg-type]

    link = HangingLink()
    manager = fake_manager(link)
    await manager.start()
    await manager.wait_connected(timeout=1)
    link.drop()
    await wait_until(lambda: len(link.connects) == 2)
    assert manager.state is S.CONNECTING  # the precondition: mid-reconnect
    await manager.stop()
    assert manager.state is S.STOPPED
    assert not link.connected
    assert not manager_tasks()
    assert manager.circuit_breaker.failure_count == 0
