"""Shared test helpers (fixtures live in the conftest files, helpers here).

Socket tests scale every interval by TIME_UNIT (one constant, ``T``)."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from v6.connection.backoff import ExponentialBackoff
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway
from v6.testing.scenario import wait_true

#: One scaled time unit in seconds for socket tests; raise it on a slow machine.
TIME_UNIT = float(os.environ.get("V6_TEST_TIME_UNIT", "0.05"))
T = TIME_UNIT


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WallClock:
    """An aware-UTC wall clock (maintenance windows, retention) that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def epoch(self) -> float:
        return self.now.timestamp()


@contextmanager
def log_lines(level: str) -> Iterator[list[str]]:
    """The messages loguru logs at ``level`` or above inside the block."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level=level)
    try:
        yield lines
    finally:
        logger.remove(sink)


async def wait_until(
    condition: Callable[[], bool], timeout: float = 100 * TIME_UNIT, step: float = 0.005
) -> None:
    """Poll ``condition`` (:func:`v6.testing.scenario.wait_true`) until true; fail the test
    after ``timeout`` seconds."""
    try:
        await wait_true(condition, timeout, step=step)
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout:.2f}s") from None


def fast_settings(**overrides: Any) -> dict[str, Any]:
    """Manager options scaled to TIME_UNIT: a stall is found within 4 T + scheduling slack."""
    options: dict[str, Any] = {
        "retry_delay": T,
        "max_delay": 4 * T,
        "heartbeat_interval": 2 * T,
        "heartbeat_timeout": 2 * T,
        "connect_timeout": 20 * T,
        "jitter": 0.0,
    }
    options.update(overrides)
    return options


@dataclass(frozen=True)
class HeldBackReconnect(ExponentialBackoff):
    """A backoff whose first reconnect after a loss waits ``first`` seconds: room for a test to
    put another session (a stale one) on the client id before the manager comes back, instead of
    racing it."""

    first: float = 5 * T

    def first_reconnect_delay(self, rng: random.Random) -> float:
        return self.first


def manager_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks that belong to the manager or ib_async (not the gateway, not the test)."""
    found = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if (
            "v6/connection" in filename
            or "ib_async" in filename
            or task.get_name().startswith("v6-ib")
        ):
            found.append(task)
    return found


async def assert_no_leaks(manager: IBConnectionManager, gateway: FakeGateway) -> None:
    """No manager task left, the socket closed on our side and seen closed by the gateway."""
    await wait_until(lambda: not manager_tasks(), timeout=40 * T)
    await wait_until(lambda: manager.ib.client.conn.transport is None, timeout=40 * T)
    await wait_until(lambda: not gateway.client_ids, timeout=40 * T)
