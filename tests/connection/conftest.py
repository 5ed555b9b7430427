"""Fixtures for connection-manager tests: a real FakeGateway on 127.0.0.1 and scaled timings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.connection.fakes import FAKE_SETTINGS, FakeLink
from tests.helpers import fast_settings
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0) as gw:
        yield gw


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


@pytest.fixture
async def fake_manager() -> AsyncIterator[Callable[..., IBConnectionManager]]:
    """``fake_manager(link, **overrides)``: a manager on a FakeLink (no sockets), stopped after."""
    made: list[IBConnectionManager] = []

    def make(link: FakeLink, **overrides: Any) -> IBConnectionManager:
        manager = IBConnectionManager(link=link, **{**FAKE_SETTINGS, **overrides})
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.stop()
