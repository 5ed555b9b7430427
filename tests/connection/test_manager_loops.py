"""A manager belongs to one event loop (issue 11, item 9): a second asyncio.run() gets a clear
error at once, not a ConnectTimeout against a healthy gateway. Over real sockets, the gateway
serving from its own thread so that it outlives both loops."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from tests.helpers import T, fast_settings
from v6.errors import WrongEventLoop
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway


@pytest.fixture
def threaded_gateway() -> Iterator[FakeGateway]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    gateway = FakeGateway(port=0)
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(timeout=5)
    try:
        yield gateway
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_a_second_event_loop_is_refused_at_once(threaded_gateway: FakeGateway) -> None:
    with warnings.catch_warnings():
        # The first loop's socket is never closed (its loop is gone): collect it quietly.
        warnings.simplefilter("ignore", ResourceWarning)
        two_loops(threaded_gateway.port)
        gc.collect()


def two_loops(port: int) -> None:
    manager = IBConnectionManager(port=port, **fast_settings(max_retries=0))

    async def first() -> None:
        await manager.connect()
        assert manager.is_connected

    async def second() -> None:
        started = time.monotonic()
        for call in (manager.connect, manager.ensure_connected, manager.start, manager.stop):
            with pytest.raises(WrongEventLoop, match=r"event loop it was first used in \(closed\)"):
                await call()
        assert time.monotonic() - started < 2 * T  # at once, not a connect timeout
        # A new manager per loop is the way: it connects (with another id: the first manager's
        # session was left open by the first loop, as the user left it).
        fresh = IBConnectionManager(port=port, client_id=2, **fast_settings())
        await fresh.connect()
        assert fresh.is_connected
        await fresh.stop()

    asyncio.run(first())  # ends while connected, as in the issue
    asyncio.run(second())
    assert isinstance(WrongEventLoop("x"), RuntimeError)


def test_a_manager_stopped_in_its_loop_is_still_refused_in_another(
    threaded_gateway: FakeGateway,
) -> None:
    """The rule is simple and the same either way: one manager, one loop."""
    manager = IBConnectionManager(port=threaded_gateway.port, **fast_settings(max_retries=0))

    async def connect_and_stop() -> None:
        await manager.connect()
        await manager.stop()

    asyncio.run(connect_and_stop())
    with pytest.raises(WrongEventLoop):
        asyncio.run(manager.connect())
