"""The connection's seam to ``ib_async``: the only module of :mod:`v6.connection` that touches
its internals (each participant package has its own adapter for what it needs).

:class:`Link` is what the connection needs of a connection to TWS: connect with a client id,
close, know whether it is up and where (its endpoint), count requests sent, say since when a
request has gone without any message back, probe, and five callbacks (``on_lost``,
``on_data``, ``on_system_message``, ``on_request``, ``on_handshake``) and one question
(``failures_expected``). :class:`IbAsyncLink` implements it on an ``ib_async.IB``; tests may
pass their own link to the manager to run supervision without sockets.

Errors are mapped here, once, into :mod:`v6.errors` (as httpcore maps at its transport
boundary); an error this module cannot name (a host name that does not resolve, a programming
error) leaves unchanged, for the manager's ``classify`` to judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from ib_async import IB

from v6.connection.lifecycle import Endpoint
from v6.connection.retry import is_unreachable
from v6.connection.settings import ConnectionSettings
from v6.errors import (
    ClientIdInUse,
    ConnectFailed,
    ConnectTimeout,
    HandshakeFailed,
    HostUnreachable,
    V6Error,
)
from v6.protocol.codes import ErrorCode

#: The request id of TWS's system messages (connectivity, farms, ...).
SYSTEM_REQ_ID = -1


def _ignore(*args: object) -> None:
    pass


class Link(Protocol):
    """One API connection to TWS / IB Gateway, as the manager sees it.

    ``on_lost(reason)``: the socket closed and this link did not close it. ``on_data()``: a read
    from the network held at least one decoded message (proof of life; bytes alone are not).
    ``on_system_message(code, text)``: TWS sent a message with request id -1. ``on_request()``:
    a request went out while none was waiting (:attr:`awaiting_reply_since` was None).
    ``on_handshake()``: an API session started (before its start-up sync is decoded).
    ``failures_expected()``: are failures expected now (a known restart window)? The link's own
    warnings and errors are then logged at INFO.
    """

    on_lost: Callable[[str], None]
    on_data: Callable[[], None]
    on_system_message: Callable[[int, str], None]
    on_request: Callable[[], None]
    on_handshake: Callable[[], None]
    failures_expected: Callable[[], bool]

    @property
    def endpoint(self) -> Endpoint:
        """Host, port and client id of the current (or last) session."""
        ...

    @property
    def requests_sent(self) -> int:
        """Requests the application (or the manager) sent since the link was made."""
        ...

    @property
    def awaiting_reply_since(self) -> float | None:
        """clock() of the oldest request sent after the last message received, or None."""
        ...

    @property
    def is_connected(self) -> bool: ...

    async def connect(self, client_id: int, settings: ConnectionSettings) -> None:
        """Connect, handshake and sync within ``settings.connect_timeout``, or raise (closed)."""
        ...

    def close(self) -> None: ...

    async def probe(self) -> None:
        """Ask the gateway something cheap; return when answered (``ConnectionError`` if the
        socket closes first). The caller bounds the wait."""
        ...


class IbAsyncLink:
    """:class:`Link` on an ``ib_async.IB`` (the manager's ``ib``)."""

    def __init__(self, ib: IB, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ib = ib
        self.on_lost: Callable[[str], None] = _ignore
        self.on_data: Callable[[], None] = _ignore
        self.on_system_message: Callable[[int, str], None] = _ignore
        self.on_request: Callable[[], None] = _ignore
        self.on_handshake: Callable[[], None] = _ignore
        self.failures_expected: Callable[[], bool] = lambda: False
        self._clock = clock
        self._closing = False  # our own close() is running: its close event is not a loss
        self._requests_sent = 0
        self._awaiting_since: float | None = None
        self._received = 0  # numMsgRecv when a message last cleared _awaiting_since
        self._attempt: _Attempt | None = None  # the connect under way
        self._hook_send()
        ib.updateEvent += self._on_update
        ib.disconnectedEvent += self._on_disconnected
        ib.errorEvent += self._on_error
        # ib_async keeps one socket object for the life of its client: watched once, here,
        # not subscribed and unsubscribed per attempt (eventkit's lists are linear scans)
        ib.client.conn.disconnected += self._on_socket_closed
        ib.client.apiStart += lambda: self.on_handshake()
        # ib_async opens an account-summary subscription on every 1102 and never cancels it;
        # TWS allows two, so the third 1102 would earn error 322. The manager keeps
        # subscriptions itself (add_resubscribe), so that handler goes.
        handler = getattr(ib, "_onError", None)
        if handler is not None:
            ib.errorEvent -= handler
        # ib_async logs a restart's refused connects and closed sockets at ERROR, through one
        # logger per object: this IB's go through an adapter that knows about restart windows.
        for part in (ib, ib.client, ib.wrapper):
            part_: Any = part
            part_._logger = _ExpectedFailures(part_._logger, lambda: self.failures_expected())

    @property
    def is_connected(self) -> bool:
        return bool(self.ib.isConnected())

    @property
    def endpoint(self) -> Endpoint:
        client: Any = self.ib.client
        return Endpoint(client.host, client.port, client.clientId)

    @property
    def requests_sent(self) -> int:
        return self._requests_sent

    @property
    def awaiting_reply_since(self) -> float | None:
        return self._awaiting_since

    def _hook_send(self) -> None:
        """Count every request as it is written: ib_async's socket's ``sendMsg`` is the one door
        all of them go through (reqCurrentTime, placeOrder, reqMktData ..., the hello too), and
        whoever paces them. It is replaced by its own three lines plus the count, not wrapped:
        a frame less for every message sent."""
        conn: Any = self.ib.client.conn

        def counted_write(msg: bytes) -> None:
            transport = conn.transport
            if not transport:
                return  # (ib_async's own sendMsg drops it too)
            transport.write(msg)
            conn.numBytesSent += len(msg)
            conn.numMsgSent += 1
            self._requests_sent += 1
            if self._awaiting_since is None:
                self._awaiting_since = self._clock()
                self.on_request()

        conn.sendMsg = counted_write

    async def connect(self, client_id: int, settings: ConnectionSettings) -> None:
        conn: Any = self.ib.client.conn
        if conn.isConnected():
            await self._finish_closing(settings.connect_timeout)
        self._awaiting_since, self._received = None, 0
        task = asyncio.current_task()
        assert task is not None  # awaited, so inside a task
        attempt = self._attempt = _Attempt(client_id, task)
        deadline = task.get_loop().call_later(settings.connect_timeout, attempt.timed_out)
        try:
            await self.ib.connectAsync(
                settings.host,
                settings.port,
                clientId=client_id,
                # One deadline for the whole attempt (above), not ib_async's per step: its
                # socket, handshake and sync requests would each arm a timer of their own
                # and, on 3.11, wrap each awaitable in a task.
                timeout=None,
                readonly=settings.readonly,
                account=settings.account,
                raiseSyncErrors=True,
            )
            attempt.check()
        except BaseException as exc:
            error = attempt.error_for(exc)  # first: the attempt is over before close() runs
            self.close()
            mapped = map_connect_error(error, settings)
            if mapped is exc:
                raise
            raise mapped from (None if isinstance(exc, asyncio.CancelledError) else exc)
        finally:
            deadline.cancel()
            self._attempt = None

    def close(self) -> None:
        self._closing = True
        client: Any = self.ib.client
        try:
            if self.ib.isConnected():
                self.ib.disconnect()
            elif client.conn.isConnected():
                # Mid-handshake, IB.disconnect() either does nothing (before the version reply)
                # or raises "Not connected" (after it, via connectionStats()).
                client.disconnect()
                wrapper: Any = self.ib.wrapper
                wrapper.reset()
        finally:
            self._closing = False

    async def probe(self) -> None:
        await self.ib.reqCurrentTimeAsync()

    async def _finish_closing(self, timeout: float) -> None:
        """The previous socket may still be closing: let it finish before the next connect."""
        conn: Any = self.ib.client.conn
        conn.disconnect()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await conn.disconnected

    def _on_update(self) -> None:
        """Proof of life is a decoded message, not a byte: after a garbage length prefix
        ib_async buffers every later byte unparsed, and a stream of those proves nothing."""
        client: Any = self.ib.client
        if client.isReady():
            # the counter connectionStats() reports, read without building its stats tuple
            received = client._numMsgRecv
            if received != self._received:  # a message, not only bytes: the wait is over
                self._received, self._awaiting_since = received, None
                self.on_data()

    def _on_disconnected(self) -> None:
        if not self._closing:
            self.on_lost("gateway closed the connection")

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        if req_id == SYSTEM_REQ_ID:
            self.on_system_message(code, text)
        if code == ErrorCode.CLIENT_ID_IN_USE and self._attempt is not None:
            self._attempt.client_id_in_use()

    def _on_socket_closed(self, msg: str) -> None:
        if self._attempt is not None:
            self._attempt.socket_closed(msg)


class _ExpectedFailures(logging.LoggerAdapter):  # type: ignore[type-arg]
    """An ib_async logger whose WARNING and ERROR lines drop to INFO while failures are
    expected (a gateway restarting inside a known window is not an alarm)."""

    def __init__(self, logger: logging.Logger, expected: Callable[[], bool]) -> None:
        super().__init__(logger, {})
        self._expected = expected
        # ib_async asks and logs at DEBUG and INFO per message: those go straight to the logger
        self.isEnabledFor = logger.isEnabledFor  # type: ignore[method-assign]
        self.debug = logger.debug  # type: ignore[method-assign,assignment]
        self.info = logger.info  # type: ignore[method-assign,assignment]

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if logging.INFO < level < logging.CRITICAL and self._expected():
            level = logging.INFO
        kwargs.setdefault("stacklevel", 2)  # the line is ib_async's, not this adapter's
        super().log(level, msg, *args, **kwargs)


class _Attempt:
    """One connectAsync, ended by the link's one deadline for the whole attempt (ib_async is
    given no timeout of its own) or by the failures ib_async would not notice: TWS error 326
    (client id in use) and the gateway closing the socket during the handshake (the link tells
    it of both).

    The connect runs in the caller's task (a task of its own costs loop turns on every
    connect): a failure or the deadline cancels that task, and :meth:`error_for` turns the
    cancellation into the failure (``TimeoutError`` for the deadline), as ``asyncio.timeout``
    does."""

    def __init__(self, client_id: int, task: asyncio.Task[Any]) -> None:
        self._client_id = client_id
        self._task = task
        self._cancelling = task.cancelling()
        self._error: Exception | None = None
        self._over = False

    def check(self) -> None:
        """connectAsync returned: raise the failure that came with its result, if any."""
        self._over = True
        if self._error is not None:
            raise self._error

    def error_for(self, exc: BaseException) -> BaseException:
        """What the attempt raises for ``exc``, which ended it: its own failure if it cancelled
        the task for one (a cancel of the caller's stays one)."""
        self._over = True
        if self._error is None:
            return exc
        if isinstance(exc, asyncio.CancelledError):
            return self._error if self._task.uncancel() <= self._cancelling else exc
        # Our cancel reached the coroutine and was swallowed on its way (3.11's wait_for
        # returns a result that arrived with it; ib_async may turn it into another error):
        # take it back, or the caller's task stays "cancelling" and a later stop() is misread.
        if self._task.cancelling() > self._cancelling:
            self._task.uncancel()
        return self._error

    def _fail(self, error: Exception) -> None:
        if not self._over and self._error is None:
            self._error = error
            self._task.cancel()  # connectAsync closes its socket as it unwinds

    def timed_out(self) -> None:
        self._fail(TimeoutError())

    def client_id_in_use(self) -> None:
        self._fail(ClientIdInUse(self._client_id))

    def socket_closed(self, msg: str) -> None:
        self._fail(HandshakeFailed(f"gateway closed the connection before API ready {msg}"))


def map_connect_error(exc: BaseException, settings: ConnectionSettings) -> BaseException:
    """The :mod:`v6.errors` error for ``exc`` from one attempt, or ``exc`` itself."""
    target = f"{settings.host}:{settings.port}"
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(
            f"no API-ready answer from {target} within {settings.connect_timeout}s"
        )
    if isinstance(exc, V6Error):  # 326, or the gateway closed the socket during the handshake
        return exc
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailed(f"connection refused by {target}")
    if isinstance(exc, ConnectionError):  # ib_async: start-up sync failed or socket broke
        return HandshakeFailed(f"handshake or start-up sync failed: {exc}")
    if isinstance(exc, OSError) and is_unreachable(exc):
        return HostUnreachable(f"cannot reach {target}: {exc}")
    return exc
