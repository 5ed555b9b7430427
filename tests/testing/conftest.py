"""Fixtures for the fake-gateway tests (helpers are in tests/testing/helpers.py). Everything
opened here is closed here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from ib_async import IB

from tests.testing.helpers import IBApiClient, RawClient
from v6.testing import FakeGateway


@pytest.fixture
async def make_gateway() -> AsyncIterator[Callable[..., Awaitable[FakeGateway]]]:
    """Factory: ``await make_gateway(**kwargs)`` -> a started gateway, stopped at teardown."""
    gateways: list[FakeGateway] = []

    async def factory(**kwargs: Any) -> FakeGateway:
        gateway = FakeGateway(port=0, **kwargs)
        await gateway.start()
        gateways.append(gateway)
        return gateway

    yield factory
    for gateway in gateways:
        await gateway.stop()


@pytest.fixture
async def raw_client() -> AsyncIterator[Callable[[int], Awaitable[RawClient]]]:
    """Factory: ``await raw_client(port)`` -> a connected :class:`RawClient`, closed at teardown."""
    clients: list[RawClient] = []

    async def factory(port: int) -> RawClient:
        client = await RawClient.open(port)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def ib_client() -> AsyncIterator[Callable[[], IB]]:
    """Factory: ``ib_client()`` -> an ``ib_async.IB``, disconnected at teardown."""
    instances: list[IB] = []

    def factory() -> IB:
        ib = IB()
        instances.append(ib)
        return ib

    yield factory
    for ib in instances:
        ib.disconnect()
    await asyncio.sleep(0)


@pytest.fixture
def ibapi_client() -> Iterator[Callable[[], IBApiClient]]:
    """Factory: ``ibapi_client()`` -> an :class:`IBApiClient`, stopped (threads joined) at
    teardown."""
    clients: list[IBApiClient] = []

    def factory() -> IBApiClient:
        client = IBApiClient()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.stop()


@pytest.fixture
def ibapi_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog at ERROR for ibapi: its decoder logs "diff len fields" when a count is off."""
    caplog.set_level(logging.ERROR, logger="ibapi")
    return caplog
