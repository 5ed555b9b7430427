"""The link's error mapping and request counting. The link also runs against FakeGateway in
test_manager and test_supervision (1102 without ib_async's account summary, 326, closes
mid-handshake)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

import pytest
from ib_async import IB

from tests.helpers import T, fast_settings, wait_until
from v6.connection.link import IbAsyncLink, map_connect_error
from v6.connection.settings import ConnectionSettings
from v6.errors import (
    ClientIdInUse,
    ConnectFailed,
    ConnectTimeout,
    HandshakeFailed,
    HostUnreachable,
)
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

SETTINGS = ConnectionSettings(host="gw.example", port=4002, connect_timeout=3.0)


@pytest.mark.parametrize(
    ("exc", "mapped", "text"),
    [
        (TimeoutError(), ConnectTimeout, "no API-ready answer from gw.example:4002 within 3.0s"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "x"), ConnectFailed, "refused by gw.example"),
        (ConnectionResetError(errno.ECONNRESET, "x"), HandshakeFailed, "handshake"),
        (ConnectionError("positions request timed out"), HandshakeFailed, "start-up sync"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), HostUnreachable, "cannot reach"),
        (OSError("Multiple exceptions: ..."), HostUnreachable, "cannot reach gw.example:4002"),
        (socket.gaierror(socket.EAI_AGAIN, "again"), HostUnreachable, "cannot reach"),
    ],
)
def test_errors_are_mapped_once_at_the_boundary(
    exc: BaseException, mapped: type[BaseException], text: str
) -> None:
    result = map_connect_error(exc, SETTINGS)
    assert type(result) is mapped
    assert text in str(result)


@pytest.mark.parametrize(
    "exc",
    [
        ClientIdInUse(3),
        socket.gaierror(socket.EAI_NONAME, "no such host"),
        OSError(errno.EADDRNOTAVAIL, "cannot assign"),
        ValueError("bug"),
    ],
)
def test_ours_and_unknown_errors_pass_unchanged(exc: BaseException) -> None:
    assert map_connect_error(exc, SETTINGS) is exc


async def test_requests_are_counted_and_the_wait_for_a_reply_ends_with_a_message() -> None:
    async with FakeGateway(port=0) as gateway:
        ib = IB()
        link = IbAsyncLink(ib)
        manager = IBConnectionManager(port=gateway.port, ib=ib, link=link, **fast_settings())
        try:
            await manager.connect()
            sent = link.requests_sent
            assert sent > 0  # the start-up sync went through the hook
            assert link.awaiting_reply_since is None  # ... and was answered
            manager.ib.client.reqCurrentTime()
            assert link.requests_sent == sent + 1
            assert link.awaiting_reply_since is not None
            await wait_until(lambda: link.awaiting_reply_since is None, timeout=40 * T)
            gateway.stall()
            manager.ib.client.reqCurrentTime()
            since = link.awaiting_reply_since
            manager.ib.client.reqCurrentTime()
            assert link.awaiting_reply_since == since  # the oldest unanswered request
            await asyncio.sleep(4 * T)
            assert link.awaiting_reply_since == since
        finally:
            await manager.stop()


async def test_a_stalled_gateway_is_found_from_the_applications_requests() -> None:
    """Requests every T, idle interval 100 T: the stall is found about heartbeat_timeout after
    the first unanswered request, not after the idle interval."""
    async with FakeGateway(port=0) as gateway:
        timeout = 6 * T
        options = fast_settings(heartbeat_interval=100 * T, heartbeat_timeout=timeout)
        manager = IBConnectionManager(port=gateway.port, **options)
        lost: list[float] = []
        loop = asyncio.get_running_loop()
        manager.on_disconnected(lambda reason: lost.append(loop.time()))
        try:
            await manager.start()
            await manager.wait_connected(timeout=40 * T)
            stalled = loop.time()
            gateway.stall()
            while not lost and loop.time() - stalled < 40 * T:
                if manager.is_connected:
                    manager.ib.client.reqCurrentTime()
                await asyncio.sleep(T)
            assert lost, "stall not detected"
            assert timeout <= lost[0] - stalled <= timeout + 4 * T
            assert "after a request" in (manager.last_error or "")
        finally:
            await manager.stop()


def test_ib_async_lines_drop_to_info_only_while_failures_are_expected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ib = IB()
    link = IbAsyncLink(ib)
    expected = False
    link.failures_expected = lambda: expected
    with caplog.at_level(logging.INFO, logger="ib_async"):
        ib.client._logger.error("refused")  # type: ignore[attr-defined]
        expected = True
        ib.client._logger.error("refused in a window")  # type: ignore[attr-defined]
        ib.wrapper._logger.warning("1100 in a window")  # type: ignore[attr-defined]
        ib._logger.critical("still critical")  # type: ignore[attr-defined]
    seen = [(r.name, r.levelname, r.getMessage(), r.filename) for r in caplog.records]
    assert seen == [
        ("ib_async.client", "ERROR", "refused", "test_link.py"),
        ("ib_async.client", "INFO", "refused in a window", "test_link.py"),
        ("ib_async.wrapper", "INFO", "1100 in a window", "test_link.py"),
        ("ib_async.ib", "CRITICAL", "still critical", "test_link.py"),
    ]


def _settings(connect_timeout: float = 10.0) -> ConnectionSettings:
    return ConnectionSettings.from_arguments(
        "127.0.0.1", 4002, 7, 0, 1.0, connect_timeout=connect_timeout
    )


@pytest.mark.parametrize("swallowed_as", ["result", "other error"])
async def test_a_326_whose_cancel_is_swallowed_still_fails_and_leaves_no_cancel(
    swallowed_as: str,
) -> None:
    """The attempt cancels its caller's task at a 326; 3.11's wait_for can swallow that cancel
    (a result arrived with it) and ib_async can turn it into another error. The attempt must
    still fail with the 326 and take its cancel back: a caller left "cancelling" misread a
    later stop() and got CancelledError (found by the race property test)."""
    ib = IB()
    answered = asyncio.get_running_loop().create_future()

    async def connect_async(*args: object, **kwargs: object) -> None:
        try:
            await answered
        except asyncio.CancelledError:
            if swallowed_as == "other error":
                raise ConnectionError("API connection failed") from None
            return  # as wait_for does when the awaited result came with the cancel

    ib.connectAsync = connect_async  # type: ignore[method-assign,assignment]
    task = asyncio.current_task()
    assert task is not None
    link = IbAsyncLink(ib)
    asyncio.get_running_loop().call_soon(ib.errorEvent.emit, -1, 326, "in use", None)
    with pytest.raises(ClientIdInUse):
        await link.connect(7, _settings())
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # and no cancel is still on its way


async def test_an_attempt_past_its_timeout_fails_with_connect_timeout_and_no_cancel_left() -> None:
    """The link bounds connectAsync as a whole (ib_async bounds each step): at the timeout the
    awaited connect is cancelled, ConnectTimeout is raised, and the caller's task is not left
    cancelling."""
    ib = IB()
    unwound = False

    async def connect_async(*args: object, **kwargs: object) -> None:
        nonlocal unwound
        try:
            await asyncio.get_running_loop().create_future()  # never answered
        finally:
            unwound = True

    ib.connectAsync = connect_async  # type: ignore[method-assign,assignment]
    task = asyncio.current_task()
    assert task is not None
    with pytest.raises(ConnectTimeout):
        await IbAsyncLink(ib).connect(7, _settings(connect_timeout=0.01))
    assert unwound
    assert task.cancelling() == 0
    await asyncio.sleep(0.02)  # and the timer is gone with the attempt: nothing fires later
    assert task.cancelling() == 0
