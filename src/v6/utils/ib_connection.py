"""IBConnectionManager: one ib_async connection, kept alive and honest.

The pure parts live beside this module (``circuit_breaker``, ``backoff``, ``state``, ``retry``,
``settings``); this module is the asyncio edge that drives them with a real ``ib_async.IB``.

Design in one paragraph: every connection attempt goes through one loop (:meth:`_connect_loop`)
that asks the circuit breaker first, maps errors once into :mod:`v6.errors` and backs off
between attempts. Supervision (:meth:`start`, or :meth:`start_heartbeat` from the plan) is a
single background task that connects, then watches: the socket's own close event, a heartbeat
probe that runs only when the gateway has been silent for ``heartbeat_interval``, and IB's
1100/2110 "cut off" messages with a grace period. Whatever fires, that one task tears down and
reconnects, so two reconnect loops can never run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Generic, ParamSpec

from ib_async import IB
from loguru import logger

from v6.errors import (
    CircuitOpenError,
    ClientIdInUse,
    ConnectFailed,
    ConnectTimeout,
    FatalConnectError,
    HandshakeFailed,
    HeartbeatTimeout,
    V6Error,
)
from v6.utils import defaults as d
from v6.utils.circuit_breaker import CircuitBreaker, CircuitState, Clock
from v6.utils.retry import Verdict, classify
from v6.utils.settings import ConnectionSettings, client_id_tuple
from v6.utils.state import LIVE_STATES, ConnectionState, check_transition

P = ParamSpec("P")
Sleep = Callable[[float], Awaitable[None]]

# TWS system message codes (reqId -1) that change the connection state.
CODE_CLIENT_ID_IN_USE = 326
CODES_CUT_OFF = frozenset({1100, 2110})  # TWS lost its link to IB; the API socket stays up
CODE_RESTORED_DATA_LOST = 1101  # market data subscriptions must be made again
CODE_RESTORED_DATA_KEPT = 1102
#: How long stop() lets async callbacks finish before cancelling them.
CALLBACK_GRACE = 1.0
# Farm notices: code -> (farm kind, ok?). Tracked for health; never a reason to reconnect.
FARM_CODES: dict[int, tuple[str, bool]] = {
    2103: ("market_data", False),
    2104: ("market_data", True),
    2105: ("historical_data", False),
    2106: ("historical_data", True),
    2157: ("sec_def", False),
    2158: ("sec_def", True),
}


@dataclass
class ConnectionStats:
    """Counters since the manager was made (read by metrics and connection_health)."""

    attempts: dict[str, int] = field(default_factory=dict)  # result -> count
    reconnects: int = 0
    probes_sent: int = 0
    probes_failed: int = 0

    def count_attempt(self, result: str) -> None:
        self.attempts[result] = self.attempts.get(result, 0) + 1


class _Listeners(Generic[P]):
    """Callbacks, sync or async. One that raises is logged and never reaches the caller."""

    def __init__(self, name: str, spawn: Callable[[Awaitable[Any], str], None]) -> None:
        self._name = name
        self._spawn = spawn
        self._callbacks: list[Callable[P, Any]] = []

    def add(self, callback: Callable[P, Any]) -> Callable[P, Any]:
        self._callbacks.append(callback)
        return callback

    def remove(self, callback: Callable[P, Any]) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def fire(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(*args, **kwargs)
            except Exception:
                logger.exception("{} callback {!r} raised; ignored", self._name, callback)
                continue
            if inspect.isawaitable(result):
                self._spawn(result, f"{self._name} callback {callback!r}")


class IBConnectionManager:
    """Connects to TWS / IB Gateway through ``ib_async`` and keeps the connection honest.

    Plain use (the plan's)::

        async with IBConnectionManager(port=4002) as manager:
            await manager.start_heartbeat()      # detects stalls and reconnects
            ...                                  # use manager.ib

    Supervised use (reconnects on any loss until stopped)::

        manager = IBConnectionManager(port=4002, client_id=[7, 8, 9])
        manager.add_resubscribe(lambda: manager.ib.reqMktData(contract))
        await manager.start()
        await manager.wait_connected()
        ...
        await manager.stop()

    ``max_retries`` counts retries after the first attempt, so the default makes four attempts
    with delays of 2 s, 4 s and 8 s between them (``retry_delay * 2**k``, capped at ``max_delay``,
    each scaled by a random factor within ``1 +- jitter``). Invalid arguments raise
    :class:`v6.errors.ConfigError` (a ``ValueError``) naming the field.

    ``clock`` (monotonic seconds), ``sleep`` and ``rng`` are seams for tests.
    """

    def __init__(
        self,
        host: str = d.DEFAULT_HOST,
        port: int = d.DEFAULT_PORT,
        client_id: int | Sequence[int] = d.DEFAULT_CLIENT_ID,
        max_retries: int = d.DEFAULT_MAX_RETRIES,
        retry_delay: float = d.DEFAULT_RETRY_DELAY,
        *,
        heartbeat_interval: float = d.DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_timeout: float = d.DEFAULT_HEARTBEAT_TIMEOUT,
        connect_timeout: float = d.DEFAULT_CONNECT_TIMEOUT,
        max_delay: float = d.DEFAULT_MAX_DELAY,
        jitter: float = d.DEFAULT_JITTER,
        degraded_grace: float = d.DEFAULT_DEGRADED_GRACE,
        readonly: bool = False,
        account: str = "",
        supervise: bool = False,
        circuit_breaker: CircuitBreaker | None = None,
        ib: IB | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = ConnectionSettings(
            host=host,
            port=port,
            client_ids=client_id_tuple(client_id),
            max_retries=max_retries,
            retry_delay=retry_delay,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            connect_timeout=connect_timeout,
            max_delay=max_delay,
            jitter=jitter,
            degraded_grace=degraded_grace,
            readonly=readonly,
            account=account,
        )
        self.ib = ib if ib is not None else IB()
        self.circuit_breaker = circuit_breaker or CircuitBreaker(clock=clock)
        self.supervise = supervise
        self.stats = ConnectionStats()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client_index = 0
        self._state = ConnectionState.DISCONNECTED
        self._live = asyncio.Event()  # set while state is CONNECTED or DEGRADED
        self._wake = asyncio.Event()  # wakes the supervisor early
        self._supervisor: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._closing = False  # our own ib.disconnect() is running
        self._ever_connected = False
        self._last_alive: float | None = None  # clock() of the last message from the gateway
        self._messages_decoded = 0  # ib_async's count for this session, to spot new messages
        self._last_rtt: float | None = None
        self._consecutive_failures = 0
        self._last_error: str | None = None
        self._fatal_error: BaseException | None = None
        self._loss_reason: str | None = None
        self._degraded_since: float | None = None
        self._farms: dict[str, str] = {}
        self._log = logger.bind(host=host, port=port, client_id=self.client_id)

        self._connected_listeners = _Listeners[[bool]]("on_connected", self._spawn)
        self._disconnected_listeners = _Listeners[[str]]("on_disconnected", self._spawn)
        self._state_listeners = _Listeners[[ConnectionState, ConnectionState, str]](
            "on_state_change", self._spawn
        )
        self._resubscribe_listeners = _Listeners[[]]("resubscribe", self._spawn)
        self._heartbeat_listeners = _Listeners[[float]]("on_heartbeat", self._spawn)
        self._adopt(self.ib)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> IBConnectionManager:
        """Build from ``IB_HOST``, ``IB_PORT``, ``IB_CLIENT_ID`` (comma list allowed) and the
        other options as ``IB_<OPTION>`` (``IB_HEARTBEAT_TIMEOUT``, ``IB_READONLY``, ...).
        Keyword arguments override the environment."""
        setting_names = {f for f in ConnectionSettings.__dataclass_fields__}
        overrides = {k: v for k, v in kwargs.items() if k in setting_names}
        if "client_id" in kwargs:
            overrides["client_ids"] = client_id_tuple(kwargs.pop("client_id"))
        settings = ConnectionSettings.from_env(
            os.environ if environ is None else environ, **overrides
        )
        extra = {k: v for k, v in kwargs.items() if k not in setting_names}
        values = {f: getattr(settings, f) for f in setting_names if f != "client_ids"}
        return cls(client_id=settings.client_ids, **values, **extra)

    # ----------------------------------------------------------------- public properties

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt in one connect() call."""
        return self.settings.max_retries

    @property
    def retry_delay(self) -> float:
        """The first backoff delay; the k-th is ``retry_delay * 2**k``."""
        return self.settings.retry_delay

    @property
    def client_id(self) -> int:
        """The client id used by the current (or next) attempt."""
        return self.settings.client_ids[self._client_index]

    @property
    def heartbeat_interval(self) -> float:
        return self.settings.heartbeat_interval

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: float) -> None:
        self.settings = replace(self.settings, heartbeat_interval=seconds)
        self._wake.set()

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_connected(self) -> bool:
        """True only while the API connection is ready (CONNECTED, or DEGRADED: TWS is up but
        cut off from IB)."""
        return self._state in LIVE_STATES and bool(self.ib.isConnected())

    @property
    def last_heartbeat(self) -> datetime | None:
        """Wall-clock time of the last proof of life (any message or probe answer), or None."""
        if self._last_alive is None:
            return None
        return datetime.now(UTC) - timedelta(seconds=self._clock() - self._last_alive)

    @property
    def last_heartbeat_age(self) -> float | None:
        """Seconds (monotonic) since the last proof of life, or None before the first."""
        if self._last_alive is None:
            return None
        return self._clock() - self._last_alive

    @property
    def consecutive_failures(self) -> int:
        """Failed connection attempts since the last success."""
        return self._consecutive_failures

    @property
    def last_error(self) -> str | None:
        return self._last_error

    # ----------------------------------------------------------------------- listeners

    def on_connected(self, callback: Callable[[bool], Any]) -> Callable[[bool], Any]:
        """Call ``callback(is_reconnect)`` after every successful (re)connect."""
        return self._connected_listeners.add(callback)

    def on_disconnected(self, callback: Callable[[str], Any]) -> Callable[[str], Any]:
        """Call ``callback(reason)`` when a live connection ends."""
        return self._disconnected_listeners.add(callback)

    def on_state_change(
        self, callback: Callable[[ConnectionState, ConnectionState, str], Any]
    ) -> Callable[[ConnectionState, ConnectionState, str], Any]:
        """Call ``callback(old, new, reason)`` on every state transition."""
        return self._state_listeners.add(callback)

    def add_resubscribe(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Call ``callback()`` once after every reconnect and after every 1101 (data lost)."""
        return self._resubscribe_listeners.add(callback)

    def on_heartbeat(self, callback: Callable[[float], Any]) -> Callable[[float], Any]:
        """Call ``callback(rtt_seconds)`` after every answered probe."""
        return self._heartbeat_listeners.add(callback)

    def remove_listener(self, callback: Callable[..., Any]) -> None:
        for listeners in (
            self._connected_listeners,
            self._disconnected_listeners,
            self._state_listeners,
            self._resubscribe_listeners,
            self._heartbeat_listeners,
        ):
            listeners.remove(callback)

    # ---------------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Connect, retrying transient failures with exponential backoff.

        Raises :class:`CircuitOpenError` at once, without touching the network, while the
        breaker is OPEN (also if it opens during the retries); :class:`ClientIdInUse` if every
        try met TWS error 326; otherwise the last :class:`ConnectFailed` (``ConnectTimeout``,
        ``HandshakeFailed``). All are ``ConnectionError``\\ s.
        """
        if self.is_connected:
            return
        if self._supervisor is not None and not self._supervisor.done():
            if self.circuit_breaker.state is CircuitState.OPEN:
                raise CircuitOpenError(self.circuit_breaker.retry_after())
            await self.wait_connected()
            return
        async with self._connect_lock:  # concurrent callers share one attempt loop
            if self.is_connected:
                return
            await self._connect_loop(bounded=True)
            self._on_up()

    async def disconnect(self) -> None:
        """Stop supervision and the heartbeat, close the connection (state STOPPED)."""
        await self.stop()

    async def ensure_connected(self) -> None:
        """Return once connected, reconnecting if needed (waits for the supervisor if running)."""
        if not self.is_connected:
            self._log.warning("Not connected; reconnecting")
            await self.connect()

    async def start(self) -> None:
        """Keep the connection up until :meth:`stop`: reconnect on loss, stall or long outage."""
        if self._supervisor is not None and not self._supervisor.done():
            return
        self._fatal_error = None
        self._supervisor = asyncio.create_task(self._supervise(), name="v6-ib-supervisor")

    async def stop(self) -> None:
        """Stop supervision and every task, close the socket; state becomes STOPPED."""
        await self._stop_supervisor()
        self._teardown("stopped by the user", by_user=True)
        self._set_state(ConnectionState.STOPPED, "stopped by the user")
        # Let async callbacks (including the ones just fired) finish briefly, then cancel.
        tasks = list(self._callback_tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=CALLBACK_GRACE)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def start_heartbeat(self) -> None:
        """Start heartbeat monitoring: silent gateways are probed, and a probe that times out
        tears the connection down and reconnects. Same task as :meth:`start`."""
        await self.start()
        self._log.info("Heartbeat monitoring started (interval {}s)", self.heartbeat_interval)

    async def stop_heartbeat(self) -> None:
        """Stop monitoring (and reconnecting) but keep the connection open."""
        if await self._stop_supervisor():
            self._log.info("Heartbeat monitoring stopped")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the API connection is ready.

        Raises ``TimeoutError`` after ``timeout`` seconds, or the fatal error that ended
        supervision."""
        async with asyncio.timeout(timeout):
            while not self.is_connected:
                self._raise_if_fatal()
                waiter = asyncio.ensure_future(self._live.wait())
                watched: set[asyncio.Future[Any]] = {waiter}
                if self._supervisor is not None:
                    watched.add(self._supervisor)
                try:
                    await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if self._supervisor is not None and self._supervisor.done():
                    self._raise_if_fatal()
                    if not self.is_connected:
                        raise ConnectFailed("supervision stopped before a connection was made")

    async def connection_health(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the connection's health."""
        now = self._clock()
        age = self.last_heartbeat_age
        age = None if age is None else round(age, 6)
        fresh = age is not None and age <= self.heartbeat_interval + self.settings.heartbeat_timeout
        return {
            "connected": self.is_connected,
            "last_heartbeat_age_seconds": age,
            "circuit_breaker_state": self.circuit_breaker.state.value,
            "healthy": self._state is ConnectionState.CONNECTED and self.is_connected and fresh,
            "state": self._state.value,
            "last_rtt_seconds": None if self._last_rtt is None else round(self._last_rtt, 6),
            "consecutive_failures": self._consecutive_failures,
            "reconnect_count": self.stats.reconnects,
            "last_error": self._last_error,
            "host": self.host,
            "port": self.port,
            "client_id": self.client_id,
            "supervised": self._supervisor is not None and not self._supervisor.done(),
            "degraded_for_seconds": None
            if self._degraded_since is None
            else round(now - self._degraded_since, 6),
            "farms": dict(self._farms),
        }

    async def __aenter__(self) -> IBConnectionManager:
        try:
            await self.connect()
            if self.supervise:
                await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ connecting

    async def _connect_loop(self, *, bounded: bool) -> None:
        """Attempt until connected. ``bounded``: give up after ``max_retries`` retries and raise
        when the breaker is OPEN (plain connect()); otherwise wait the breaker out (supervisor).
        """
        if self._state in LIVE_STATES:  # the socket died before its close event was handled
            self._teardown("connection lost")
        failures = 0
        untried_ids = len(self.settings.client_ids) - 1  # tried at once on 326, no backoff
        while True:
            if not self.circuit_breaker.can_attempt():
                retry_after = self.circuit_breaker.retry_after()
                self._set_state(
                    ConnectionState.CIRCUIT_OPEN, f"breaker open, next trial in {retry_after:.1f}s"
                )
                if bounded:
                    raise CircuitOpenError(retry_after)
                # retry_after is 0 when a shared breaker's HALF_OPEN trial is someone else's.
                await self._sleep(retry_after or self.settings.retry_delay)
                continue
            self._set_state(
                ConnectionState.CONNECTING,
                f"attempt {failures + 1} with client id {self.client_id}",
            )
            try:
                await self._attempt(self.client_id)
            except asyncio.CancelledError:
                self.circuit_breaker.release_trial()
                raise
            except Exception as exc:
                if classify(exc) is Verdict.FATAL:
                    self.circuit_breaker.release_trial()
                    self.stats.count_attempt("fatal")
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    self._set_state(ConnectionState.DISCONNECTED, f"fatal error: {exc!r}")
                    if isinstance(exc, V6Error):
                        raise
                    raise FatalConnectError(
                        f"cannot connect to {self.host}:{self.port}: {exc!r}"
                    ) from exc
                self._note_failure(exc)
                if isinstance(exc, ClientIdInUse) and untried_ids:
                    # The gateway answered; another id may be free. Not a gateway failure.
                    untried_ids -= 1
                    self.circuit_breaker.release_trial()
                    continue
                untried_ids = len(self.settings.client_ids) - 1
                self.circuit_breaker.record_failure()
                failures += 1
                if bounded and failures > self.settings.max_retries:
                    self._set_state(
                        ConnectionState.DISCONNECTED, f"gave up after {failures} attempt(s): {exc}"
                    )
                    if isinstance(exc, V6Error):
                        raise  # already ours, with the underlying error as its cause
                    raise ConnectFailed(f"failed after {failures} attempt(s): {exc!r}") from exc
                if self.circuit_breaker.state is CircuitState.OPEN:
                    if bounded:
                        self._set_state(ConnectionState.CIRCUIT_OPEN, f"breaker opened: {exc}")
                        raise CircuitOpenError(self.circuit_breaker.retry_after()) from exc
                    continue  # the top of the loop waits for HALF_OPEN
                delay = self.settings.backoff.delay(failures, self._rng)
                self._set_state(ConnectionState.BACKING_OFF, f"{exc}; retry in {delay:.2f}s")
                await self._sleep(delay)
            else:
                self.circuit_breaker.record_success()
                self._consecutive_failures = 0
                self.stats.count_attempt("ok")
                return

    def _note_failure(self, exc: Exception) -> None:
        """Record a transient failure; on 326 move on to the next client id, if there is one."""
        self._consecutive_failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        self.stats.count_attempt(_attempt_result(exc))
        self._log.debug("Connect attempt failed: {}", self._last_error)  # the state line says it
        ids = self.settings.client_ids
        if isinstance(exc, ClientIdInUse) and len(ids) > 1:
            self._client_index = (self._client_index + 1) % len(ids)
            self._log = self._log.bind(client_id=self.client_id)
            self._log.warning("Client id {} in use; next is {}", exc.client_id, self.client_id)

    async def _attempt(self, client_id: int) -> None:
        """One attempt: socket, handshake, start-up sync. Errors leave here mapped and closed."""
        loop = asyncio.get_running_loop()
        early: asyncio.Future[None] = loop.create_future()

        def fail_early(error: Exception) -> None:
            if not early.done():
                early.set_exception(error)

        def on_error(req_id: int, code: int, text: str, contract: object) -> None:
            if code == CODE_CLIENT_ID_IN_USE:
                fail_early(ClientIdInUse(client_id))

        def on_socket_closed(msg: str) -> None:
            fail_early(HandshakeFailed(f"gateway closed the connection before API ready {msg}"))

        ib = self.ib
        conn: Any = ib.client.conn  # ib_async's Connection is untyped
        if conn.isConnected():  # the previous socket is still closing: let it finish first
            conn.disconnect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.connect_timeout):
                    await conn.disconnected
        ib.errorEvent += on_error
        conn.disconnected += on_socket_closed
        connecting = asyncio.ensure_future(
            ib.connectAsync(
                self.host,
                self.port,
                clientId=client_id,
                timeout=self.settings.connect_timeout,
                readonly=self.settings.readonly,
                account=self.settings.account,
                raiseSyncErrors=True,
            )
        )
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await asyncio.wait({connecting, early}, return_when=asyncio.FIRST_COMPLETED)
            if connecting.done():
                connecting.result()
            else:
                early.result()
        except TimeoutError as exc:
            self._close_socket()
            raise ConnectTimeout(
                f"no API-ready answer from {self.host}:{self.port} "
                f"within {self.settings.connect_timeout}s"
            ) from exc
        except V6Error:  # 326, or the gateway closed the socket during the handshake
            self._close_socket()
            raise
        except ConnectionRefusedError as exc:
            raise ConnectFailed(f"connection refused by {self.host}:{self.port}") from exc
        except ConnectionError as exc:  # ib_async: start-up sync failed or socket broke
            self._close_socket()
            raise HandshakeFailed(f"handshake or start-up sync failed: {exc}") from exc
        except OSError as exc:
            self._close_socket()
            # errno None: "Multiple exceptions" from trying every address of a name.
            if classify(exc) is Verdict.RETRY or (
                exc.errno is None and not isinstance(exc, socket.gaierror)
            ):
                raise ConnectFailed(f"cannot reach {self.host}:{self.port}: {exc}") from exc
            raise
        except BaseException:
            self._close_socket()
            raise
        finally:
            ib.errorEvent -= on_error
            conn.disconnected -= on_socket_closed
            if early.done():
                early.exception()  # retrieved, so asyncio does not log it
            else:
                early.cancel()
            if not connecting.done():
                await cancel_and_wait(connecting)  # ib_async closes its socket as it unwinds
            elif not connecting.cancelled():
                connecting.exception()

    def _on_up(self) -> None:
        """After a successful attempt: mark alive, fire the hooks."""
        reconnect = self._ever_connected
        self._ever_connected = True
        self._loss_reason = None
        self._degraded_since = None
        self._mark_alive()
        if reconnect:
            self.stats.reconnects += 1
        self._set_state(
            ConnectionState.CONNECTED, "reconnected" if reconnect else "connected and synced"
        )
        self._connected_listeners.fire(reconnect)
        if reconnect:
            self._resubscribe_listeners.fire()

    # ----------------------------------------------------------------- supervision

    async def _supervise(self) -> None:
        try:
            while True:
                if not self.is_connected:
                    if self._state is ConnectionState.DISCONNECTED and self._ever_connected:
                        delay = self.settings.backoff.first_reconnect_delay(self._rng)
                        if delay:
                            self._set_state(
                                ConnectionState.BACKING_OFF, f"reconnecting in {delay:.2f}s"
                            )
                            await self._sleep(delay)
                    await self._connect_loop(bounded=False)
                    self._on_up()
                reason = await self._watch()
                self._teardown(reason)
        except Exception as exc:  # fatal (see v6.utils.retry): surfaced by wait_connected()
            self._fatal_error = exc
            self._log.error("Supervision stopped by a fatal error: {!r}", exc)

    async def _watch(self) -> str:
        """Return the reason the live connection must be torn down."""
        while True:
            if not self.is_connected:
                return self._loss_reason or "connection lost"
            now = self._clock()
            deadline = self._probe_due()
            if self._degraded_since is not None:
                grace_end = self._degraded_since + self.settings.degraded_grace
                if now >= grace_end:
                    return f"TWS cut off from IB for more than {self.settings.degraded_grace}s"
                deadline = min(deadline, grace_end)
            if now < deadline:
                self._wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel (stop())
                # that lands just after _wake was set, and stop() then waits forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline - now):
                        await self._wake.wait()
                continue
            try:
                await self._probe()
            except HeartbeatTimeout as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                return str(exc)

    def _probe_due(self) -> float:
        assert self._last_alive is not None
        return self._last_alive + self.heartbeat_interval

    async def _probe(self) -> None:
        """Ask the gateway for its time; any answer (or any other message) is proof of life."""
        started = self._clock()
        self.stats.probes_sent += 1
        try:
            async with asyncio.timeout(self.settings.heartbeat_timeout):
                await self.ib.reqCurrentTimeAsync()
        except TimeoutError:
            self.stats.probes_failed += 1
            raise HeartbeatTimeout(
                f"heartbeat probe unanswered for {self.settings.heartbeat_timeout}s"
            ) from None
        except ConnectionError:
            self.stats.probes_failed += 1
            return  # the socket closed under the probe: the loss handler already ran
        self._last_rtt = self._clock() - started
        self._mark_alive()
        self._log.debug("Heartbeat ok, rtt {:.1f} ms", self._last_rtt * 1000)
        self._heartbeat_listeners.fire(self._last_rtt)

    async def _stop_supervisor(self) -> bool:
        task, self._supervisor = self._supervisor, None
        if task is None:
            return False
        await cancel_and_wait(task)
        return True

    # ------------------------------------------------------------- ib_async events

    def _adopt(self, ib: IB) -> None:
        ib.updateEvent += self._on_network_read
        ib.disconnectedEvent += self._on_ib_disconnected
        ib.errorEvent += self._on_ib_error
        # ib_async opens an account-summary subscription on every 1102 and never cancels it;
        # TWS allows two, so the third 1102 would earn error 322. We keep subscriptions
        # ourselves (add_resubscribe), so that handler goes.
        handler = getattr(ib, "_onError", None)
        if handler is not None:
            ib.errorEvent -= handler

    def _mark_alive(self) -> None:
        self._last_alive = self._clock()

    def _on_network_read(self) -> None:
        """Proof of life is a decoded message, not a byte: after a garbage length prefix
        ib_async buffers every later byte unparsed, and a stream of those proves nothing."""
        client = self.ib.client
        if not client.isReady():
            return
        decoded = client.connectionStats().numMsgRecv
        if decoded != self._messages_decoded:
            self._messages_decoded = decoded
            self._mark_alive()

    def _on_ib_disconnected(self) -> None:
        if self._closing or self._state not in LIVE_STATES:
            return
        self._lost("gateway closed the connection")

    def _on_ib_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        if req_id != -1:
            return
        if code in CODES_CUT_OFF:
            if self._state is ConnectionState.CONNECTED:
                self._degraded_since = self._clock()
                self._set_state(ConnectionState.DEGRADED, f"TWS {code}: {text}")
                self._wake.set()
        elif code in (CODE_RESTORED_DATA_LOST, CODE_RESTORED_DATA_KEPT):
            self._degraded_since = None
            if self._state is ConnectionState.DEGRADED:
                self._set_state(ConnectionState.CONNECTED, f"TWS {code}: {text}")
                self._wake.set()
            if code == CODE_RESTORED_DATA_LOST and self._state in LIVE_STATES:
                self._resubscribe_listeners.fire()
        elif code in FARM_CODES:
            kind, ok = FARM_CODES[code]
            farm = text.rpartition(":")[2].strip() or "?"
            self._farms[f"{kind}:{farm}"] = "ok" if ok else "broken"

    def _lost(self, reason: str, *, by_user: bool = False) -> None:
        self._loss_reason = reason
        if not by_user:
            self._last_error = reason
        self._degraded_since = None
        self._set_state(
            ConnectionState.STOPPED if by_user else ConnectionState.DISCONNECTED, reason
        )
        self._disconnected_listeners.fire(reason)
        self._wake.set()

    def _teardown(self, reason: str, *, by_user: bool = False) -> None:
        """Close the connection (if any); a live one ends with on_disconnected."""
        was_live = self._state in LIVE_STATES
        self._close_socket()
        if was_live:
            self._lost(reason, by_user=by_user)

    def _close_socket(self) -> None:
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

    # ------------------------------------------------------------------- helpers

    def _set_state(self, new: ConnectionState, reason: str) -> None:
        old = self._state
        if new is old:
            return
        check_transition(old, new)
        self._state = new
        if new in LIVE_STATES:
            self._live.set()
        else:
            self._live.clear()
        level = "INFO" if new in (ConnectionState.CONNECTED, ConnectionState.STOPPED) else "WARNING"
        if new is ConnectionState.CONNECTING:
            level = "INFO"
        self._log.log(
            level,
            "{}:{} #{} {} -> {}: {}",
            self.host,
            self.port,
            self.client_id,
            old.name,
            new.name,
            reason,
        )
        self._state_listeners.fire(old, new, reason)

    def _spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        async def run() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("{} raised; ignored", what)

        task = asyncio.ensure_future(run())
        self._callback_tasks.add(task)
        task.add_done_callback(self._callback_tasks.discard)

    def _raise_if_fatal(self) -> None:
        if self._fatal_error is not None:
            raise self._fatal_error

    def __repr__(self) -> str:
        return (
            f"IBConnectionManager({self.host}:{self.port}, client_id={self.client_id}, "
            f"state={self._state.name}, breaker={self.circuit_breaker.state.name})"
        )


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, discarding its outcome.

    A cancel aimed at the caller while it waits is not swallowed: the caller's own
    ``cancelling()`` tells it apart from the CancelledError of the task it cancelled."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        pass  # the task's own failure while unwinding is not the caller's concern


def _attempt_result(exc: BaseException) -> str:
    """A short label for the metrics' connect-attempts-by-result counter."""
    if isinstance(exc, ClientIdInUse):
        return "client_id_in_use"
    if isinstance(exc, ConnectTimeout):
        return "timeout"
    if isinstance(exc, HandshakeFailed):
        return "handshake_failed"
    if isinstance(exc, ConnectFailed):
        return "refused"
    return "error"
