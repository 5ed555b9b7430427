"""The fault matrix's harness (one supervised manager on a real FakeGateway, every hook counted,
leaks checked after stop(), one observation per run), the row registry and the FAULTS.md renderer.
The fixture and the pytest hooks are in conftest.py."""

from __future__ import annotations

import asyncio
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from ib_async import IB

from tests.helpers import TIME_UNIT, fast_settings, manager_tasks, wait_until
from v6.connection import CircuitBreaker, ConnectionState
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway
from v6.testing.scenario import Kind, Measured, Step, Timeline, measure, poll

T = TIME_UNIT
S = ConnectionState
ROOT = Path(__file__).resolve().parents[2]
RUNS = (1, 2, 3)
BREAKER_THRESHOLD = 3
BREAKER_TIMEOUT = 4 * T

#: Section title -> rows (fault name -> the outcome it must show), in table order. Each
#: tests/faults/test_*.py module declares its own ``SECTION`` (a title) and ``ROWS``; they are
#: collected here, so adding a row or a section never edits this file.
SECTIONS: dict[str, dict[str, str]] = {}


def registered(fault: str) -> bool:
    return any(fault in rows for rows in SECTIONS.values())


@dataclass
class Observation:
    """What one run of one fault showed (one cell group of FAULTS.md)."""

    fault: str
    run: int
    measure: str = ""  # what ``seconds`` measures
    seconds: float | None = None
    bound: float | None = None
    outcome: str = ""
    disconnects: int = 0
    reconnects: int = 0
    resubscribes: int = 0
    breaker_opened: bool = False
    breaker_final: str = ""
    failed_attempts: dict[str, int] = field(default_factory=dict)
    tasks_left: int | None = None
    sockets_left: int | None = None
    fds_left: int | None = None
    passed: bool | None = None
    details: str = ""  # what else the row's test observed (e.g. on_fill calls per exec id)


OBSERVATIONS: list[Observation] = []


class UpperRandom:
    """An ``rng`` whose uniform() returns the upper bound: backoff delays become exact."""

    def uniform(self, low: float, high: float) -> float:
        return high


class Harness:
    """One manager on one gateway, every hook recorded on one :class:`Timeline` (the scenario
    harness shared with the demo and the benchmarks); see :class:`Observation`."""

    def __init__(self, gateway: FakeGateway, observation: Observation) -> None:
        self.gateway = gateway
        self.obs = observation
        self.manager: IBConnectionManager | None = None
        self.loop = asyncio.get_running_loop()
        self.timeline = Timeline(self.loop.time)
        self.holders: list[IB] = []
        self._detach: Callable[[], None] | None = None
        self._process = psutil.Process()
        self._fds_before = self._process.num_fds()

    def now(self) -> float:
        return self.timeline.now()

    # ---- the timeline, as the lists the tests read

    @property
    def states(self) -> list[tuple[float, ConnectionState, str]]:
        return [(e.at, e.value, e.text) for e in self.timeline.states()]

    @property
    def disconnected(self) -> list[str]:
        return [e.text for e in self.timeline.select(Kind.DISCONNECTED)]

    @property
    def connected(self) -> list[bool]:
        return [e.value for e in self.timeline.select(Kind.CONNECTED)]

    @property
    def resubscribes(self) -> int:
        return len(self.timeline.select(Kind.RESUBSCRIBE))

    @property
    def heartbeats(self) -> list[float]:
        """Round trips of answered probes."""
        return [e.value for e in self.timeline.select(Kind.HEARTBEAT)]

    @property
    def errors(self) -> list[int]:
        return [e.value for e in self.timeline.select(Kind.ERROR)]

    # ---- driving

    def make(self, **overrides: Any) -> IBConnectionManager:
        options = fast_settings(**overrides)
        options.setdefault(
            "circuit_breaker",
            CircuitBreaker(failure_threshold=BREAKER_THRESHOLD, timeout=BREAKER_TIMEOUT),
        )
        manager = IBConnectionManager(port=self.gateway.port, **options)
        self._detach = self.timeline.attach(manager)
        self.manager = manager
        return manager

    async def start(self, **overrides: Any) -> IBConnectionManager:
        manager = self.make(**overrides)
        await manager.start()
        await manager.wait_connected(timeout=40 * T)
        return manager

    async def measure(self, step: Step, timeout: float = 60 * T) -> Measured:
        """Run one inject / detect / hold / clear / recover step on this harness's timeline."""
        return await measure(step, self.timeline, timeout)

    def mark(self) -> int:
        return len(self.timeline.states())

    def seen(self, state: ConnectionState, since: int = 0) -> bool:
        return any(s is state for _, s, _ in self.states[since:])

    def first(self, state: ConnectionState, since: int = 0) -> float:
        return next(t for t, s, _ in self.states[since:] if s is state)

    async def left_connected(self, since: int, timeout: float) -> float:
        """Wait until the state leaves CONNECTED (after ``since``); return when it did."""
        await wait_until(lambda: self.seen(S.DISCONNECTED, since), timeout=timeout)
        return self.first(S.DISCONNECTED, since)

    async def recovered(self, reconnects: int, timeout: float) -> float:
        """Wait for the ``reconnects``-th reconnect; return when it happened."""
        manager = self.manager
        assert manager is not None
        await wait_until(
            lambda: manager.stats.reconnects >= reconnects and manager.is_connected,
            timeout=timeout,
        )
        return max(t for t, s, _ in self.states if s is S.CONNECTED)

    def timed(self, measure: str, seconds: float, bound: float) -> None:
        self.obs.measure, self.obs.seconds, self.obs.bound = measure, seconds, bound
        assert seconds <= bound, f"{measure}: {seconds:.3f}s > bound {bound:.3f}s"

    async def finish(self) -> None:
        """stop(); then count what is left (tasks, sockets, fds) and record the run."""
        manager = self.manager
        assert manager is not None
        obs = self.obs
        obs.disconnects = len(self.disconnected)
        obs.reconnects = sum(self.connected)
        obs.resubscribes = self.resubscribes
        obs.breaker_opened = self.seen(S.CIRCUIT_OPEN)
        obs.breaker_final = manager.circuit_breaker.state.name
        obs.failed_attempts = {k: v for k, v in manager.stats.attempts.items() if k != "ok"}
        for holder in self.holders:
            holder.disconnect()
        await manager.stop()
        assert manager.state is S.STOPPED
        if self._detach is not None:
            self._detach()
        for check in (
            lambda: not manager_tasks(),
            lambda: not self.gateway.clients,
            lambda: self._process.num_fds() <= self._fds_before,
        ):
            await poll(check, 40 * T)  # what is left is counted below and asserted by name
        obs.tasks_left = len(manager_tasks())
        obs.sockets_left = len(self.gateway.clients) + (
            manager.ib.client.conn.transport is not None
        )
        obs.fds_left = self._process.num_fds() - self._fds_before
        assert obs.tasks_left == 0, manager_tasks()
        assert obs.sockets_left == 0, self.gateway.clients
        assert obs.fds_left <= 0, f"{obs.fds_left} file descriptors left open"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _same_or_each(values: list[Any]) -> str:
    return str(values[0]) if len(set(values)) == 1 else " / ".join(str(v) for v in values)


_TABLE_HEAD = (
    "| fault | expected | passed | measured | runs (ms) | bound (ms) | hooks | breaker "
    "opened, final | failed attempts | left: tasks / sockets / fds | details |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
)


def _table_row(fault: str, expected: str, observations: list[Observation]) -> str:
    rows = sorted((o for o in observations if o.fault == fault), key=lambda o: o.run)
    passed = sum(1 for o in rows if o.passed)
    hooks = _same_or_each([f"{o.disconnects} / {o.reconnects} / {o.resubscribes}" for o in rows])
    breaker = _same_or_each(
        [f"{'yes' if o.breaker_opened else 'no'}, {o.breaker_final}" for o in rows]
    )
    failed = _same_or_each(
        [
            ", ".join(f"{k} {v}" for k, v in sorted(o.failed_attempts.items())) or "none"
            for o in rows
        ]
    )
    left = _same_or_each([f"{o.tasks_left} / {o.sockets_left} / {o.fds_left}" for o in rows])
    measure = _same_or_each([o.measure or o.outcome or "-" for o in rows])
    bounds = _same_or_each([_ms(o.bound) for o in rows])
    details = _same_or_each([o.details or "-" for o in rows])
    return (
        f"| {fault} | {expected} | {passed}/{len(rows)} | {measure} "
        f"| {' / '.join(_ms(o.seconds) for o in rows)} | {bounds} | {hooks} | {breaker} "
        f"| {failed} | {left} | {details} |"
    )


def render_faults(observations: list[Observation], seconds: float) -> str:
    settings = fast_settings()
    lines = [
        "# Fault matrix",
        "",
        f"Generated by `make faults` (`V6_WRITE_FAULTS=1 pytest -m faults`, "
        f"tests/faults/) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{seconds:.0f} s, Python {platform.python_version()}, asyncio debug mode "
        f"{'on' if os.environ.get('PYTHONASYNCIODEBUG') else 'off'}. Do not edit by hand.",
        "",
        f"Each fault runs {len(RUNS)} times against a real FakeGateway on 127.0.0.1, with one "
        f"supervised IBConnectionManager scaled to TIME_UNIT T = {T * 1000:.0f} ms: "
        + ", ".join(f"{k} {v}" for k, v in settings.items())
        + f"; circuit breaker threshold {BREAKER_THRESHOLD}, open {BREAKER_TIMEOUT * 1000:.0f} ms"
        " (rows that need other values say so in the test). Times are per run, in ms; the bound "
        "is what the test asserts. Hooks: on_disconnected / on_connected(reconnect=True) / "
        "resubscribe calls. Left after stop(): manager and ib_async tasks / open sockets "
        "(either end) / file descriptors versus before the test.",
    ]
    for section, rows in SECTIONS.items():
        lines += ["", f"## {section}", "", *_TABLE_HEAD]
        lines += [_table_row(fault, expected, observations) for fault, expected in rows.items()]
    failures = [o for o in observations if not o.passed]
    lines.append("")
    if failures:
        lines.append("Failed runs:")
        lines += [f"- {o.fault}, run {o.run}: {o.outcome or 'failed'}" for o in failures]
    else:
        lines.append(f"All {len(observations)} runs passed.")
    lines += [
        "",
        "Reproduce: `make faults` (writes this file), or "
        "`PYTHONASYNCIODEBUG=1 .venv/bin/pytest tests/faults -q -m faults` (checks only).",
        "",
    ]
    return "\n".join(lines)
