"""Racing callers (issue 11, item 1): every public coroutine is safe against every other one
called at any await point. Regression tests for the exact repros over real sockets, then a
property test driving random interleavings against FakeGateway."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import T, assert_no_leaks, fast_settings, manager_tasks, wait_until
from v6.connection import CircuitBreaker, ConnectionState
from v6.connection.state import LIVE_STATES
from v6.errors import ConnectAborted, ConnectFailed, IBConnectionError
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

Factory = Callable[..., IBConnectionManager]
S = ConnectionState


async def assert_stopped_and_gone(manager: IBConnectionManager, gateway: FakeGateway) -> None:
    """STOPPED means nothing open: no TWS session, no client id at the gateway, no task."""
    assert manager.state is S.STOPPED
    assert not manager.ib.isConnected()
    assert not manager.is_connected
    await assert_no_leaks(manager, gateway)
    # The id is free: a second manager with the same id gets in (no 326).
    gateway.set_latency(0)
    other = IBConnectionManager(port=gateway.port, client_id=manager.client_id, max_retries=0)
    try:
        await other.connect()
        assert other.is_connected
    finally:
        await other.stop()


@pytest.mark.parametrize("stop", ["disconnect", "stop"])
async def test_stop_right_after_connect_starts(
    make_manager: Factory, gateway: FakeGateway, stop: str
) -> None:
    """The issue's repro: create_task(connect()); sleep(0); disconnect()."""
    manager = make_manager()
    connecting = asyncio.create_task(manager.connect())
    await asyncio.sleep(0)
    await getattr(manager, stop)()
    with pytest.raises(ConnectAborted) as info:
        await connecting
    assert isinstance(info.value, ConnectionError)
    await assert_stopped_and_gone(manager, gateway)
    assert manager.circuit_breaker.failure_count == 0


@pytest.mark.parametrize("latency", [0, 10 * T])
@pytest.mark.parametrize("delay_ms", [1, 2, 5, 10, 20, 50])
async def test_stop_a_little_later_mid_attempt(
    make_manager: Factory, gateway: FakeGateway, delay_ms: int, latency: float
) -> None:
    """1-50 ms later (socket open, handshake or start-up sync in flight, or just connected):
    never STOPPED -> BACKING_OFF, never a breaker failure, never a session left open."""
    gateway.set_latency(latency)  # with latency, the handshake is in flight for a while
    manager = make_manager()
    connecting = asyncio.create_task(manager.connect())
    await asyncio.sleep(delay_ms / 1000)
    await manager.disconnect()
    result = (await asyncio.gather(connecting, return_exceptions=True))[0]
    assert result is None or isinstance(result, ConnectAborted), repr(result)
    await assert_stopped_and_gone(manager, gateway)
    assert manager.circuit_breaker.failure_count == 0
    assert manager.consecutive_failures == 0


async def test_stop_while_backing_off_records_nothing_more(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    await gateway.stop()
    manager = make_manager(retry_delay=20 * T, max_delay=40 * T, max_retries=5)
    connecting = asyncio.create_task(manager.connect())
    await wait_until(lambda: manager.state is S.BACKING_OFF)
    failures = manager.circuit_breaker.failure_count
    await manager.stop()
    with pytest.raises(ConnectAborted):
        await connecting
    assert manager.state is S.STOPPED
    assert manager.circuit_breaker.failure_count == failures == 1


async def test_callers_waiting_behind_a_stopped_connect_are_aborted_too(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    gateway.set_latency(10 * T)
    manager = make_manager()
    callers = [asyncio.create_task(manager.ensure_connected()) for _ in range(3)]
    await asyncio.sleep(2 * T)
    await manager.stop()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, ConnectAborted) for r in results), results
    await assert_stopped_and_gone(manager, gateway)


@pytest.mark.parametrize("stops", [2, 3])
async def test_concurrent_stops_abort_a_connect_once(
    make_manager: Factory, gateway: FakeGateway, stops: int
) -> None:
    """Each stop() of several under way at once used to cancel the caller's task again: the
    caller got CancelledError, not ConnectAborted (found by the property test below)."""
    gateway.set_latency(10 * T)
    manager = make_manager()
    connecting = asyncio.create_task(manager.connect())
    await asyncio.sleep(2 * T)
    await asyncio.gather(*(manager.stop() for _ in range(stops)))
    with pytest.raises(ConnectAborted):
        await connecting
    await assert_stopped_and_gone(manager, gateway)


async def test_connect_waiting_on_supervision_fails_when_stopped(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    """connect() during supervision waits for it; stop() must end that wait (it hung)."""
    await gateway.stop()
    manager = make_manager()
    await manager.start()
    waiting = asyncio.create_task(manager.connect())
    await asyncio.sleep(2 * T)
    await manager.stop()
    async with asyncio.timeout(20 * T):
        with pytest.raises(ConnectFailed):
            await waiting
    assert manager.state is S.STOPPED


async def test_start_during_stop_is_stopped_too(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    gateway.set_latency(5 * T)
    manager = make_manager()
    connecting = asyncio.create_task(manager.connect())
    await asyncio.sleep(T)
    stopping = asyncio.create_task(manager.stop())
    await asyncio.sleep(0)
    await manager.start()  # lands while stop() waits for the attempt to unwind
    await stopping
    await asyncio.gather(connecting, return_exceptions=True)
    await assert_stopped_and_gone(manager, gateway)


async def test_a_cancelled_connect_leaves_an_honest_state(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    """The caller's own timeout ends the attempt: the state says so (not CONNECTING)."""
    gateway.stall()
    manager = make_manager()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(3 * T):
            await manager.connect()
    assert manager.state is S.DISCONNECTED
    assert manager.circuit_breaker.failure_count == 0
    await manager.stop()
    gateway.unstall()
    await assert_no_leaks(manager, gateway)



# ------------------------------------------------------------------------- property test

CALLS = ("connect", "disconnect", "start", "stop", "ensure_connected")
FAULTS = ("drop", "restart", "stall")
#: What a public coroutine may raise: the connection's errors (all ConnectionErrors).
DOCUMENTED = (IBConnectionError,)
#: More examples on demand (V6_RACE_EXAMPLES=500 make pytest); the default keeps it < ~20 s.
EXAMPLES = int(os.environ.get("V6_RACE_EXAMPLES", "25"))

Step = tuple[str, int]
steps = st.lists(st.tuples(st.sampled_from(CALLS + FAULTS), st.integers(0, 6)), max_size=8)


async def pause(gap: int) -> None:
    """0: none; 1-3: that many loop iterations; 4-6: a few milliseconds (mid-handshake)."""
    if gap >= 4:
        await asyncio.sleep((gap - 3) * 0.004)
        return
    for _ in range(gap):
        await asyncio.sleep(0)


async def fault(gateway: FakeGateway, name: str, one_at_a_time: asyncio.Lock) -> None:
    """The gateway's side (not under test): faults run one at a time."""
    async with one_at_a_time:
        await _fault(gateway, name)


async def _fault(gateway: FakeGateway, name: str) -> None:
    if name == "drop":
        await gateway.drop_all()
    elif name == "restart":
        await gateway.stop()
        await asyncio.sleep(T / 5)
        await gateway.start()
    else:  # a short stall
        gateway.stall()
        await asyncio.sleep(T)
        gateway.unstall()


async def run_interleaving(plan: list[Step]) -> None:
    async with FakeGateway(port=0) as gateway:
        breaker = CircuitBreaker(failure_threshold=3, timeout=4 * T)
        manager = IBConnectionManager(
            port=gateway.port,
            circuit_breaker=breaker,
            **fast_settings(max_retries=2, connect_timeout=6 * T),
        )
        calls: list[asyncio.Task[Any]] = []
        faults = asyncio.Lock()
        for name, gap in plan:
            if name in FAULTS:
                calls.append(asyncio.create_task(fault(gateway, name, faults)))
            else:
                calls.append(asyncio.create_task(getattr(manager, name)()))
            await pause(gap)
        async with asyncio.timeout(100 * T):
            results = await asyncio.gather(*calls, return_exceptions=True)
        gateway.unstall()
        await gateway.start()
        for result in results:
            assert result is None or isinstance(result, DOCUMENTED), repr(result)
        await check_invariants(manager, gateway)


async def check_invariants(manager: IBConnectionManager, gateway: FakeGateway) -> None:
    """The state tells the truth; a stopped manager holds nothing; stop() leaves nothing.

    Waited for, not sampled: a close event may still be on its way, but a lie (STOPPED with a
    session open, CONNECTED without one) never goes away by itself."""
    await wait_until(lambda: (manager.state in LIVE_STATES) == manager.ib.isConnected())
    if manager.state is S.STOPPED and not manager.health().supervised:
        await wait_until(lambda: not gateway.client_ids and not manager_tasks(), timeout=40 * T)
    await manager.stop()
    assert manager.state is S.STOPPED
    assert not manager.ib.isConnected()
    await assert_no_leaks(manager, gateway)


def test_a_connect_racing_a_gateway_restart_leaves_no_socket() -> None:
    """Found by a long run of the property test below: a socket the gateway accepted as it
    stopped was leaked (Python 3.11: its transport cannot attach to a closed server)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(run_interleaving([("disconnect", 6), ("ensure_connected", 1), ("restart", 3)]))
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is a bug, never a flake
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(plan=steps)
def test_random_interleavings_keep_the_invariants(plan: list[Step]) -> None:
    asyncio.run(run_interleaving(plan))
