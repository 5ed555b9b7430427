"""Fault matrix, daily restarts (issue 9): a gateway restart inside and outside a known window, a
window that overruns, a port that accepts but never answers, and IBC restarting a stuck gateway.
Each runs three times against a real FakeGateway; the wall clock of the windows is injected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from loguru import logger

from tests.faults.harness import BREAKER_THRESHOLD, RUNS, Harness, T
from tests.helpers import WallClock, wait_until
from v6.connection import ConnectionState
from v6.connection.readiness import ProbeOutcome
from v6.protocol.ids import ClientMessage
from v6.testing.fake_ibc import FakeIbcServer

SECTION = "Daily restarts"
ROWS: dict[str, str] = {
    "daily restart inside a window": "failures expected: no WARNING or ERROR line, breaker never "
    "opens, health says maintenance; CONNECTED within readiness_interval of the gateway answering",
    "daily restart outside a window": "today's alarms: WARNING lines, breaker opens; the readiness "
    "probe still brings it back within readiness_interval",
    "window overruns": "window + grace passed without a connection: ERROR once, overrun counted "
    "once, healthy false; reconnects when the gateway returns",
    "port accepts but never answers (socat)": "after the attempt that met it, only readiness "
    "probes: no further attempt started (no CONNECTING, no startApi); reconnects when it answers",
    "IBC restart of a stuck gateway": "accepts but silent for ibc_restart_after: RESTART sent to "
    "IBC once, the gateway restarts, CONNECTED",
}

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("run", RUNS, ids=lambda r: f"run{r}")]
S = ConnectionState

WINDOW = "23:45-00:05 America/New_York"
INSIDE = datetime(2026, 1, 15, 4, 50, tzinfo=UTC)  # 23:50 in New York (winter)
OUTSIDE = INSIDE + timedelta(hours=3)
READINESS = T  # readiness_interval, scaled
SHORT_CONNECT = 6 * T  # also bounds a silent readiness probe
DOWN = 12 * T  # longer than the breaker needs to open (3 failures) plus its open time (4 T)
SLACK = 6 * T  # scheduling slack under asyncio debug mode on a busy 2-core machine
RESTART_BOUND = READINESS + SLACK  # gateway answering -> CONNECTED


@pytest.fixture
def alarms() -> Iterator[list[str]]:
    """v6's own WARNING-or-worse lines (the fake gateway's and IBC fake's excluded), and
    ib_async's ("ib_async ERROR ...")."""
    lines: list[str] = []

    def sink(message: object) -> None:
        record = message.record  # type: ignore[attr-defined]
        if not record["name"].startswith("v6.testing"):
            lines.append(f"{record['level'].name} {record['message']}")

    class IbAsyncLines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"ib_async {record.levelname} {record.getMessage()}")

    sink_id = logger.add(sink, level="WARNING")
    handler = IbAsyncLines(logging.WARNING)
    logging.getLogger("ib_async").addHandler(handler)
    yield lines
    logging.getLogger("ib_async").removeHandler(handler)
    logger.remove(sink_id)


async def _restart(h: Harness, wall: datetime) -> float:
    """Connect, restart the gateway (down for DOWN), return gateway up -> CONNECTED."""
    manager = await h.start(
        readiness_interval=READINESS, maintenance_windows=WINDOW, wall_clock=WallClock(wall)
    )
    await h.gateway.stop()
    await asyncio.sleep(DOWN)
    assert not manager.is_connected
    assert manager.health().maintenance is (wall == INSIDE)
    up = h.now()
    await h.gateway.start()
    back = await h.recovered(1, timeout=40 * T)
    h.obs.details = f"readiness probes {sum(manager.restarts.probes.values())}"
    return back - up


@pytest.mark.fault("daily restart inside a window")
async def test_daily_restart_inside_a_window(harness: Harness, run: int, alarms: list[str]) -> None:
    h = harness
    took = await _restart(h, INSIDE)
    h.timed("gateway up -> CONNECTED", took, RESTART_BOUND)
    manager = h.manager
    assert manager is not None
    assert not h.seen(S.CIRCUIT_OPEN)
    assert manager.circuit_breaker.failure_count == 0
    assert manager.stats.attempts.get("refused", 0) >= BREAKER_THRESHOLD  # failures were there
    assert alarms == []
    await h.finish()


@pytest.mark.fault("daily restart outside a window")
async def test_daily_restart_outside_a_window(
    harness: Harness, run: int, alarms: list[str]
) -> None:
    h = harness
    took = await _restart(h, OUTSIDE)
    h.timed("gateway up -> CONNECTED", took, RESTART_BOUND)
    assert h.seen(S.CIRCUIT_OPEN)
    assert any("BACKING_OFF" in line for line in alarms)
    assert any("CLOSED -> OPEN" in line for line in alarms)
    assert any(line.startswith("ib_async ERROR") for line in alarms)  # lowered only in windows
    await h.finish()


@pytest.mark.fault("window overruns")
async def test_window_overruns(harness: Harness, run: int, alarms: list[str]) -> None:
    h = harness
    wall = WallClock(INSIDE)
    manager = await h.start(
        readiness_interval=READINESS,
        maintenance_windows=WINDOW,
        maintenance_grace=60.0,
        wall_clock=wall,
    )
    await h.gateway.stop()
    await wait_until(lambda: sum(manager.restarts.probes.values()) >= 2, timeout=40 * T)
    assert manager.health().maintenance
    assert alarms == []
    wall.now = INSIDE + timedelta(minutes=15, seconds=61)  # 00:05 + grace + 1 s
    moved = h.now()
    await wait_until(lambda: manager.restarts.overruns == 1, timeout=40 * T)
    h.timed("grace over -> escalated", h.now() - moved, READINESS + SLACK)
    probes = sum(manager.restarts.probes.values())
    await wait_until(lambda: sum(manager.restarts.probes.values()) >= probes + 3, timeout=40 * T)
    health = manager.health()
    assert (health.maintenance, health.healthy) == (False, False)
    assert manager.restarts.overruns == 1
    errors = [line for line in alarms if line.startswith("ERROR")]
    assert len(errors) == 1, errors
    assert "still not connected" in errors[0]
    await h.gateway.start()
    await h.recovered(1, timeout=40 * T)
    await wait_until(lambda: manager.health().healthy, timeout=20 * T)  # the overrun is over
    h.obs.details = f"overruns {manager.restarts.overruns}, ERROR lines {len(errors)}"
    await h.finish()


@pytest.mark.fault("port accepts but never answers (socat)")
async def test_port_accepts_but_never_answers(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start(readiness_interval=READINESS, connect_timeout=SHORT_CONNECT)
    h.gateway.handshake_fault("silent")
    await h.gateway.drop_all()
    await wait_until(lambda: manager.stats.attempts.get("timeout", 0) >= 1, timeout=40 * T)
    mark = h.mark()
    start_api = h.gateway.request_counts[ClientMessage.START_API]
    await wait_until(lambda: manager.stats.attempts.get("timeout", 0) >= 4, timeout=100 * T)
    assert not h.seen(S.CONNECTING, mark)  # no attempt started: the probes stood in
    assert h.gateway.request_counts[ClientMessage.START_API] == start_api
    assert not manager.is_connected
    fixed = h.now()
    h.gateway.handshake_fault(None)
    back = await h.recovered(1, timeout=60 * T)
    # A probe already waiting on the silent socket runs out its timeout first.
    h.timed("fault cleared -> CONNECTED", back - fixed, SHORT_CONNECT + RESTART_BOUND)
    h.obs.details = f"silent probes {manager.restarts.probes[ProbeOutcome.SILENT]}"
    await h.finish()


@pytest.mark.fault("IBC restart of a stuck gateway")
async def test_ibc_restarts_a_stuck_gateway(harness: Harness, run: int) -> None:
    h = harness

    async def restart(command: str) -> None:
        if command == "RESTART":
            await h.gateway.stop()
            h.gateway.handshake_fault(None)
            await h.gateway.start()

    async with FakeIbcServer(on_command=restart) as ibc:
        restart_after = 4 * T
        manager = await h.start(
            readiness_interval=READINESS,
            connect_timeout=SHORT_CONNECT,
            ibc_command_port=ibc.port,
            ibc_restart_after=restart_after,
        )
        stuck = h.now()
        h.gateway.handshake_fault("silent")
        await h.gateway.drop_all()
        back = await h.recovered(1, timeout=100 * T)
        # first attempt times out; silent probes for restart_after (each up to SHORT_CONNECT)
        bound = SHORT_CONNECT + restart_after + 2 * (SHORT_CONNECT + READINESS) + SLACK
        h.timed("stuck -> CONNECTED via IBC", back - stuck, bound)
        assert ibc.commands == ["RESTART"]
        assert manager.restarts.ibc.restarts_requested == 1
        h.obs.details = f"IBC commands {ibc.commands}"
    await h.finish()  # the fake IBC's listening socket closed: no fd counted as left
