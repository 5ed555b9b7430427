"""Daily restarts wired into the connect loop, on a FakeLink with an injected clock, sleep, probe
and wall clock: no sockets, no waiting. Settings and ``IB_*`` variables for the new options."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from loguru import logger

from tests.connection.fakes import FakeLink
from tests.connection.test_connector import REFUSED, Sleeper
from tests.helpers import FakeClock, WallClock, wait_until
from v6.connection import CircuitBreaker, CircuitState, ConnectionSettings
from v6.connection.defaults import (
    DEFAULT_IBC_RESTART_AFTER,
    DEFAULT_MAINTENANCE_GRACE,
    DEFAULT_READINESS_INTERVAL,
)
from v6.connection.ibc import IbcReply
from v6.connection.readiness import ProbeOutcome, ProbeResult
from v6.connection.state import ConnectionState
from v6.errors import ConfigError, ConnectFailed, ConnectTimeout
from v6.manager import IBConnectionManager

Factory = Callable[..., IBConnectionManager]
WINDOW = "23:45-00:05 America/New_York"
#: 23:50 New York on a winter day (UTC-5): inside WINDOW.
INSIDE = datetime(2026, 1, 15, 4, 50, tzinfo=UTC)


class ScriptedProbe:
    """An injected readiness probe: the outcomes in order, then the last one forever."""

    def __init__(self, *outcomes: ProbeOutcome) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self, host: str, port: int, timeout: float) -> ProbeResult:
        self.calls += 1
        await asyncio.sleep(0)  # the instant sleeps never yield: let the test's loop run
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return ProbeResult(outcome, 0.001)


@pytest.fixture
def records() -> Iterator[list[tuple[str, str]]]:
    """(level, message) of every loguru line while the test runs."""
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])))
    yield lines
    logger.remove(sink)


def probing(
    fake_manager: Factory, link: FakeLink, probe: ScriptedProbe, clock: FakeClock, **options: Any
) -> tuple[IBConnectionManager, Sleeper]:
    sleeper = Sleeper(clock)
    options = {"readiness_interval": 1.0, "clock": clock, "sleep": sleeper, **options}
    manager = fake_manager(link, **options)
    manager.restarts.readiness_probe = probe
    return manager, sleeper


A, R, S = ProbeOutcome.ANSWERED, ProbeOutcome.REFUSED, ProbeOutcome.SILENT


async def test_a_wait_ends_when_the_gateway_answers_again(
    fake_manager: Factory, clock: FakeClock
) -> None:
    link = FakeLink(REFUSED)
    probe = ScriptedProbe(R, R, A)
    manager, sleeper = probing(fake_manager, link, probe, clock, retry_delay=10.0, max_delay=60.0)
    await manager.connect()
    assert sleeper.slept == [1.0, 1.0, 1.0]  # not the 10 s backoff
    assert link.connects == [1, 1]
    assert manager.restarts.probes == {R: 2, A: 1}


async def test_an_open_breaker_admits_its_trial_when_the_gateway_answers(
    fake_manager: Factory, clock: FakeClock
) -> None:
    link = FakeLink(None, REFUSED)  # connects, then its reconnect is refused
    breaker = CircuitBreaker(failure_threshold=1, timeout=60.0, clock=clock)
    manager, sleeper = probing(
        fake_manager, link, ScriptedProbe(R, A), clock, circuit_breaker=breaker
    )
    await manager.start()
    await manager.wait_connected(timeout=1)
    link.drop()
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected, timeout=1)
    assert sleeper.slept == [1.0, 1.0]  # the open breaker would have waited 60 s
    assert link.connects == [1, 1, 1]  # one refused reconnect, then the trial: no extra attempt
    assert breaker.state is CircuitState.CLOSED


async def test_an_answer_that_says_nothing_new_keeps_the_backoff(
    fake_manager: Factory, clock: FakeClock
) -> None:
    link = FakeLink(ConnectTimeout("start-up sync unanswered"))
    probe = ScriptedProbe(A)
    manager, sleeper = probing(fake_manager, link, probe, clock, retry_delay=3.0, max_delay=60.0)
    await manager.connect()
    assert sleeper.slept == [1.0, 1.0, 1.0]  # the hello was answered at the failure too
    assert link.connects == [1, 1]


async def test_a_failed_attempt_after_an_answer_keeps_its_backoff(
    fake_manager: Factory, clock: FakeClock
) -> None:
    unanswered = ConnectTimeout("start-up sync unanswered")
    link = FakeLink(REFUSED, unanswered)  # the attempt the answer let in fails too
    probe = ScriptedProbe(R, A)  # seen down, then it answers the hello from then on
    manager, sleeper = probing(fake_manager, link, probe, clock, retry_delay=3.0, max_delay=60.0)
    await manager.connect()
    # the first wait ends at the answer; the next one is the doubled backoff in full, although
    # every probe in it answers: the answer was already spent on the failed attempt
    assert sleeper.slept == [1.0, 1.0] + [1.0] * 6
    assert link.connects == [1, 1, 1]  # no API session beyond the backoff's


async def test_attempts_after_a_failure_start_only_when_the_gateway_answers(
    fake_manager: Factory, clock: FakeClock
) -> None:
    link = FakeLink(REFUSED)
    manager, _ = probing(fake_manager, link, ScriptedProbe(R), clock, max_retries=3)
    with pytest.raises(ConnectFailed, match="readiness probe: refused"):
        await manager.connect()
    assert link.connects == [1]  # the other three ended at the hello: no client id taken
    assert manager.stats.attempts == {"refused": 4}  # counted as a full attempt would be
    assert manager.consecutive_failures == 4


async def test_a_silent_port_gets_no_attempt(fake_manager: Factory, clock: FakeClock) -> None:
    link = FakeLink(ConnectTimeout("no answer"))
    manager, _ = probing(fake_manager, link, ScriptedProbe(S), clock, max_retries=2)
    with pytest.raises(ConnectTimeout):
        await manager.connect()
    assert link.connects == [1]
    assert manager.stats.attempts == {"timeout": 3}


async def test_probing_off_is_the_plain_schedule(fake_manager: Factory, clock: FakeClock) -> None:
    link = FakeLink(REFUSED, REFUSED)
    probe = ScriptedProbe(A)
    manager, sleeper = probing(fake_manager, link, probe, clock, readiness_interval=None)
    await manager.connect()
    assert sleeper.slept == [0.01, 0.02]
    assert link.connects == [1, 1, 1]
    assert probe.calls == 0


async def test_inside_a_window_failures_are_expected(
    fake_manager: Factory, clock: FakeClock, records: list[tuple[str, str]]
) -> None:
    link = FakeLink(None, *[REFUSED] * 6)
    breaker = CircuitBreaker(failure_threshold=2, timeout=60.0, clock=clock)
    manager, _ = probing(
        fake_manager,
        link,
        ScriptedProbe(R, R, R, R, R, A),
        clock,
        circuit_breaker=breaker,
        maintenance_windows=WINDOW,
        wall_clock=WallClock(INSIDE),
    )
    states: list[ConnectionState] = []
    manager.on_state_change(lambda old, new, why: states.append(new))
    await manager.start()
    await manager.wait_connected(timeout=1)
    assert manager.health().maintenance
    link.drop()
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected, timeout=1)
    assert ConnectionState.CIRCUIT_OPEN not in states
    assert breaker.failure_count == 0
    assert manager.consecutive_failures == 0  # reset by the success
    assert not [line for line in records if line[0] in ("WARNING", "ERROR")], records
    assert (await manager.connection_health())["maintenance"] is True


async def test_outside_the_window_the_same_failures_open_the_breaker(
    fake_manager: Factory, clock: FakeClock, records: list[tuple[str, str]]
) -> None:
    link = FakeLink(None, REFUSED)
    breaker = CircuitBreaker(failure_threshold=2, timeout=60.0, clock=clock)
    manager, _ = probing(
        fake_manager,
        link,
        ScriptedProbe(R, R, R, A),
        clock,
        circuit_breaker=breaker,
        maintenance_windows=WINDOW,
        wall_clock=WallClock(INSIDE + timedelta(hours=2)),
    )
    await manager.start()
    await manager.wait_connected(timeout=1)
    link.drop()
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected, timeout=1)
    assert not manager.health().maintenance
    warnings = [message for level, message in records if level == "WARNING"]
    assert any("CLOSED -> OPEN" in m for m in warnings)
    assert any("BACKING_OFF" in m for m in warnings)


async def test_an_overrun_window_escalates_once(
    fake_manager: Factory, clock: FakeClock, records: list[tuple[str, str]]
) -> None:
    wall = WallClock(INSIDE)
    link = FakeLink(None)
    manager, _ = probing(
        fake_manager,
        link,
        ScriptedProbe(R),
        clock,
        maintenance_windows=WINDOW,
        maintenance_grace=60.0,
        wall_clock=wall,
    )
    await manager.start()
    await manager.wait_connected(timeout=1)
    link.outcomes = [REFUSED] * 1000
    link.drop()
    await wait_until(lambda: manager.restarts.probes[R] >= 2, timeout=1)
    assert manager.health().maintenance
    wall.now = INSIDE + timedelta(minutes=15, seconds=61)  # 00:05 + 61 s
    await wait_until(lambda: manager.restarts.overruns == 1, timeout=1)
    probes = manager.restarts.probes[R]
    await wait_until(lambda: manager.restarts.probes[R] >= probes + 3, timeout=1)
    health = manager.health()
    assert (health.maintenance, health.healthy) == (False, False)
    errors = [message for level, message in records if level == "ERROR"]
    assert len(errors) == 1
    assert "still not connected" in errors[0]
    assert manager.restarts.overruns == 1


async def test_a_stuck_gateway_is_restarted_through_ibc_once(
    fake_manager: Factory, clock: FakeClock
) -> None:
    link = FakeLink(ConnectTimeout("no answer"))
    sent: list[tuple[int, str]] = []

    async def ibc(host: str, port: int, command: str) -> IbcReply:
        sent.append((port, command))
        return IbcReply(True, "Restart in progress")

    manager, _ = probing(
        fake_manager, link, ScriptedProbe(S), clock, ibc_command_port=7462, ibc_restart_after=5.0
    )
    manager.restarts.ibc_send = ibc
    await manager.start()
    await wait_until(lambda: manager.restarts.probes[S] >= 20, timeout=2)
    assert sent == [(7462, "RESTART")]
    assert manager.restarts.ibc.restarts_requested == 1


async def test_ibc_is_held_back_inside_a_window(fake_manager: Factory, clock: FakeClock) -> None:
    link = FakeLink(ConnectTimeout("no answer"))
    sent: list[str] = []

    async def ibc(host: str, port: int, command: str) -> IbcReply:
        sent.append(command)
        return IbcReply(True, "")

    wall = WallClock(INSIDE)
    manager, _ = probing(
        fake_manager,
        link,
        ScriptedProbe(S),
        clock,
        ibc_command_port=7462,
        ibc_restart_after=5.0,
        maintenance_windows=WINDOW,
        maintenance_grace=0.0,
        wall_clock=wall,
    )
    manager.restarts.ibc_send = ibc
    await manager.start()
    await wait_until(lambda: manager.restarts.ibc.stuck_for() >= 10.0, timeout=5)
    assert sent == []  # stuck for twice ibc_restart_after, but inside the window
    wall.now = INSIDE + timedelta(minutes=16)
    probes = manager.restarts.probes[S]
    await wait_until(lambda: manager.restarts.probes[S] >= probes + 2, timeout=2)
    assert sent == ["RESTART"]  # the stuck clock kept running: sent as the window ended


# ---- settings


def test_defaults() -> None:
    settings = ConnectionSettings()
    assert settings.readiness_interval == DEFAULT_READINESS_INTERVAL == 1.0
    assert not settings.maintenance_windows
    assert settings.maintenance_grace == DEFAULT_MAINTENANCE_GRACE
    assert settings.ibc_command_port is None
    assert settings.ibc_restart_after == DEFAULT_IBC_RESTART_AFTER


def test_from_env() -> None:
    manager = IBConnectionManager.from_env(
        {
            "IB_READINESS_INTERVAL": "0.5",
            "IB_MAINTENANCE_WINDOWS": f"{WINDOW}; Sat 23:00-Sun 03:00 America/New_York",
            "IB_MAINTENANCE_GRACE": "90",
            "IB_IBC_COMMAND_PORT": "7462",
            "IB_IBC_RESTART_AFTER": "60",
        }
    )
    settings = manager.settings
    assert settings.readiness_interval == 0.5
    assert len(settings.maintenance_windows.windows) == 2
    assert (settings.maintenance_grace, settings.ibc_command_port) == (90.0, 7462)
    assert settings.ibc_restart_after == 60.0
    off = IBConnectionManager.from_env({"IB_READINESS_INTERVAL": "off"})
    assert off.settings.readiness_interval is None


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"readiness_interval": 0}, "readiness_interval"),
        ({"maintenance_windows": "25:00-01:00 America/New_York"}, "maintenance_windows"),
        ({"maintenance_windows": "23:45-00:05 Mars/Olympus"}, "maintenance_windows"),
        ({"maintenance_grace": -1}, "maintenance_grace"),
        ({"ibc_command_port": 70000}, "ibc_command_port"),
        ({"ibc_restart_after": 0}, "ibc_restart_after"),
    ],
)
def test_invalid_options_name_the_field(kwargs: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        IBConnectionManager(**kwargs)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IB_MAINTENANCE_WINDOWS", "sometime at night"),
        ("IB_READINESS_INTERVAL", "fast"),
        ("IB_IBC_COMMAND_PORT", "0"),
        ("IB_MAINTENANCE_GRACE", "-5"),
    ],
)
def test_invalid_variables_raise_config_error(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable.removeprefix("IB_").lower() + "|" + variable):
        IBConnectionManager.from_env({variable: value})
