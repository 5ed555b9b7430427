"""Fixtures for connection-manager tests: a real FakeGateway on 127.0.0.1 and scaled timings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import TIME_UNIT
from v6.testing import FakeGateway
from v6.utils import IBConnectionManager

T = TIME_UNIT


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0) as gw:
        yield gw


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


@pytest.fixture
async def make_manager(
    gateway: FakeGateway,
) -> AsyncIterator[Callable[..., IBConnectionManager]]:
    made: list[IBConnectionManager] = []

    def make(**overrides: Any) -> IBConnectionManager:
        manager = IBConnectionManager(port=gateway.port, **fast_settings(**overrides))
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.stop()


def manager_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks that belong to the manager or ib_async (not the gateway, not the test)."""
    found = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if "v6/utils" in filename or "ib_async" in filename or task.get_name().startswith("v6-ib"):
            found.append(task)
    return found


async def assert_no_leaks(manager: IBConnectionManager, gateway: FakeGateway) -> None:
    """No manager task left, the socket closed on our side and seen closed by the gateway."""
    from tests.conftest import wait_until

    await wait_until(lambda: not manager_tasks(), timeout=40 * T)
    await wait_until(lambda: manager.ib.client.conn.transport is None, timeout=40 * T)
    await wait_until(lambda: not gateway.client_ids, timeout=40 * T)
