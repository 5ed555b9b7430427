"""The connect loop on a FakeLink with an injected clock and sleep: no sockets, no waiting."""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Callable

import pytest

from tests.connection.fakes import FakeLink
from tests.helpers import FakeClock
from v6.connection import Verdict
from v6.connection.state import ConnectionState
from v6.errors import ConnectFailed, FatalConnectError, HostUnreachable
from v6.manager import IBConnectionManager

Factory = Callable[..., IBConnectionManager]
REFUSED = ConnectFailed("connection refused by 127.0.0.1:7497")


class Sleeper:
    """An injected sleep that advances the clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)


async def test_the_plans_schedule_without_sockets(fake_manager: Factory, clock: FakeClock) -> None:
    link = FakeLink(*[REFUSED] * 4)
    sleeper = Sleeper(clock)
    manager = fake_manager(link, retry_delay=2.0, max_delay=60.0, clock=clock, sleep=sleeper)
    with pytest.raises(ConnectFailed):
        await manager.connect()
    assert sleeper.slept == [2.0, 4.0, 8.0]
    assert link.connects == [1, 1, 1, 1]
    assert manager.stats.attempts == {"refused": 4}
    assert manager.consecutive_failures == 4
    assert manager.state is ConnectionState.DISCONNECTED


async def test_unreachable_host_is_retried_under_its_own_label(
    fake_manager: Factory, clock: FakeClock
) -> None:
    link = FakeLink(HostUnreachable("cannot reach 10.9.9.9:4002"), None)
    manager = fake_manager(link, clock=clock, sleep=Sleeper(clock))
    await manager.connect()
    assert manager.stats.attempts == {"unreachable": 1, "ok": 1}
    assert manager.is_connected


async def test_a_fatal_error_is_raised_at_once_as_ours(
    fake_manager: Factory, clock: FakeClock
) -> None:
    no_host = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    link = FakeLink(no_host)
    manager = fake_manager(link, clock=clock, sleep=Sleeper(clock))
    with pytest.raises(FatalConnectError) as info:
        await manager.connect()
    assert info.value.__cause__ is no_host
    assert link.connects == [1]
    assert manager.stats.attempts == {"fatal": 1}
    assert manager.circuit_breaker.failure_count == 0  # not the gateway's failure


async def test_classify_and_backoff_are_strategies(fake_manager: Factory, clock: FakeClock) -> None:
    class Halving:
        def delay(self, failures: int, rng: random.Random) -> float:
            return 1.0 / 2**failures

        def first_reconnect_delay(self, rng: random.Random) -> float:
            return 0.0

    sleeper = Sleeper(clock)
    manager = fake_manager(
        FakeLink(REFUSED, REFUSED, None), backoff=Halving(), clock=clock, sleep=sleeper
    )
    await manager.connect()
    assert sleeper.slept == [0.5, 0.25]

    reset = OSError(errno.ECONNRESET, "reset")
    link = FakeLink(reset)
    strict = fake_manager(link, classify=lambda exc: Verdict.FATAL, clock=clock, sleep=sleeper)
    with pytest.raises(FatalConnectError):
        await strict.connect()
    assert link.connects == [1]


async def test_connect_while_supervising_shares_the_supervisors_attempt(
    fake_manager: Factory,
) -> None:
    link = FakeLink()
    manager = fake_manager(link)
    await manager.start()
    await manager.connect()
    assert manager.is_connected
    assert link.connects == [1]
