from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from loguru import logger

from tests.connection.fakes import FakeLink
from tests.helpers import FakeClock
from v6.connection.listeners import CallbackTasks, ListenerRegistry, Listeners, cancel_and_wait
from v6.errors import ConnectFailed
from v6.manager import IBConnectionManager

Factory = Callable[..., IBConnectionManager]


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    """Every loguru record written during the test."""
    seen: list[dict[str, Any]] = []
    sink = logger.add(lambda message: seen.append(message.record), level="DEBUG")
    yield seen
    logger.remove(sink)


async def test_sync_and_async_callbacks_run_and_their_errors_are_logged(
    records: list[dict[str, Any]],
) -> None:
    registry = ListenerRegistry(logger)
    tasks = registry.tasks
    listeners = Listeners[[int]]("on_thing", registry)
    seen: list[int] = []

    def boom(n: int) -> None:
        raise RuntimeError("user bug")

    async def later(n: int) -> None:
        await asyncio.sleep(0)
        seen.append(n)

    async def async_boom(n: int) -> None:
        raise RuntimeError("async user bug")

    for callback in (boom, seen.append, later, async_boom):
        listeners.add(callback)
    listeners.fire(7)
    assert seen == [7]
    await tasks.drain(1.0)
    assert seen == [7, 7]
    assert len(tasks) == 0
    errors = [r["message"] for r in records if r["level"].name == "ERROR"]
    assert any("on_thing callback" in m and "boom" in m for m in errors)
    assert any("async_boom" in m for m in errors)
    listeners.remove(seen.append)
    listeners.remove(seen.append)  # removing twice is harmless
    listeners.fire(8)
    await tasks.drain(1.0)
    assert seen == [7, 7, 8]  # only `later` is left that records


def test_the_registry_removes_a_callback_from_every_list_it_made() -> None:
    registry = ListenerRegistry(logger)
    first = Listeners[[int]]("first", registry)
    second = Listeners[[int]]("second", registry)
    seen: list[str] = []

    def callback(n: int) -> None:
        seen.append(f"{n}")

    def other(n: int) -> None:
        seen.append(f"other {n}")

    first.add(callback)
    second.add(callback)
    second.add(other)
    registry.remove(callback)
    first.fire(1)
    second.fire(2)
    assert seen == ["other 2"]


async def test_drain_cancels_what_outlives_the_grace() -> None:
    tasks = CallbackTasks(logger)
    never = asyncio.Event()
    tasks.spawn(never.wait(), "slow")
    await tasks.drain(0.01)
    assert len(tasks) == 0


async def test_cancel_and_wait_discards_the_tasks_outcome() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("while unwinding")

    task = asyncio.ensure_future(fails_on_cancel())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.done()


async def test_breaker_and_listeners_log_with_the_managers_binding(
    fake_manager: Factory, clock: FakeClock, records: list[dict[str, Any]]
) -> None:
    async def no_sleep(seconds: float) -> None:
        clock.advance(seconds)

    refused = ConnectFailed("connection refused")
    manager = fake_manager(FakeLink(*[refused] * 5), clock=clock, sleep=no_sleep, max_retries=10)
    manager.on_state_change(lambda *args: 1 / 0)
    with pytest.raises(ConnectionError):
        await manager.connect()
    breaker_lines = [r for r in records if "Circuit breaker" in r["message"]]
    callback_lines = [r for r in records if "on_state_change callback" in r["message"]]
    assert breaker_lines
    assert callback_lines
    for record in breaker_lines + callback_lines:
        assert record["extra"] == {"host": "127.0.0.1", "port": 7497, "client_id": 1}
