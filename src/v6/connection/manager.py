"""IBConnectionManager: one ib_async connection, kept alive and honest.

A thin shell that wires the parts of :mod:`v6.connection`: the :mod:`~v6.connection.planner`
decides every step of a connect loop (breaker, backoff, client-id rotation), the
:mod:`~v6.connection.link` does the ib_async work, :mod:`~v6.connection.system_messages` says
what TWS's messages mean, a :class:`~v6.connection.session.Session` holds what is true of one
connection, and :mod:`~v6.connection.listeners` runs the users' hooks.

Supervision (:meth:`start`, or :meth:`start_heartbeat` from the plan) is a single background task
that connects, then watches: the socket's own close event, a heartbeat probe that runs only when
the gateway has been silent for ``heartbeat_interval``, and IB's 1100/2110 "cut off" messages
with a grace period. Whatever fires, that one task tears down and reconnects, so two reconnect
loops can never run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, assert_never

from ib_async import IB
from loguru import logger

from v6.connection import defaults as d
from v6.connection import retry
from v6.connection.circuit_breaker import CircuitBreaker, CircuitState, Clock
from v6.connection.health import Health
from v6.connection.link import IbAsyncLink, Link
from v6.connection.listeners import CallbackTasks, Listeners, cancel_and_wait
from v6.connection.planner import Backoff, Decision, GiveUp, ReconnectPlanner, Sleep, TryNow
from v6.connection.session import Session
from v6.connection.settings import ConnectionSettings, client_id_tuple
from v6.connection.state import LIVE_STATES, ConnectionState, check_transition
from v6.connection.system_messages import CutOff, FarmStatus, Restored, interpret
from v6.errors import CircuitOpenError, ConnectFailed, HeartbeatTimeout

if TYPE_CHECKING:
    from loguru import Record

SleepFunc = Callable[[float], Awaitable[None]]
Classify = Callable[[BaseException], retry.Verdict]
#: How long stop() lets async callbacks finish before cancelling them.
CALLBACK_GRACE = 1.0


@dataclass
class ConnectionStats:
    """Counters since the manager was made (read by metrics and connection_health)."""

    attempts: dict[str, int] = field(default_factory=dict)  # result -> count
    reconnects: int = 0
    probes_sent: int = 0
    probes_failed: int = 0

    def count_attempt(self, result: str) -> None:
        self.attempts[result] = self.attempts.get(result, 0) + 1


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

    Strategies, as websockets' ``reconnect_delays`` / ``process_exception``: ``backoff`` (an
    object with ``delay(failures, rng)`` and ``first_reconnect_delay(rng)``; default
    :class:`~v6.connection.backoff.ExponentialBackoff` from the settings) and ``classify`` (an
    exception -> :class:`~v6.connection.retry.Verdict`; default
    :func:`v6.connection.retry.classify`). Seams for tests: ``link`` (default
    :class:`~v6.connection.link.IbAsyncLink` on ``ib``), ``clock`` (monotonic seconds), ``sleep``
    and ``rng``.
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
        backoff: Backoff | None = None,
        classify: Classify = retry.classify,
        ib: IB | None = None,
        link: Link | None = None,
        clock: Clock = time.monotonic,
        sleep: SleepFunc = asyncio.sleep,
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
        # client_id is read when a line is written: it follows the rotation on error 326.
        self._log = logger.bind(host=host, port=port).patch(self._bind_client_id)
        self.circuit_breaker = circuit_breaker or CircuitBreaker(clock=clock, log=self._log)
        self.supervise = supervise
        self.stats = ConnectionStats()
        self._planner = ReconnectPlanner(
            self.settings.client_ids,
            self.circuit_breaker,
            backoff or self.settings.backoff,
            rng or random.Random(),
            poll_delay=retry_delay,
            target=f"{host}:{port}",
        )
        self._classify = classify
        self._clock = clock
        self._sleep = sleep
        self._state = ConnectionState.DISCONNECTED
        self._session: Session | None = None  # the current connection (or attempt)
        self._live = asyncio.Event()  # set while state is CONNECTED or DEGRADED
        self._wake = asyncio.Event()  # wakes the supervisor early
        self._supervisor: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._ever_connected = False
        self._last_alive: float | None = None  # clock() of the last message from the gateway
        self._last_rtt: float | None = None
        self._last_error: str | None = None
        self._fatal_error: BaseException | None = None

        self._callback_tasks = CallbackTasks(self._log)
        tasks, log = self._callback_tasks, self._log
        self._connected_listeners = Listeners[[bool]]("on_connected", tasks, log)
        self._disconnected_listeners = Listeners[[str]]("on_disconnected", tasks, log)
        self._state_listeners = Listeners[[ConnectionState, ConnectionState, str]](
            "on_state_change", tasks, log
        )
        self._resubscribe_listeners = Listeners[[]]("resubscribe", tasks, log)
        self._heartbeat_listeners = Listeners[[float]]("on_heartbeat", tasks, log)

        self._link: Link = link if link is not None else IbAsyncLink(self.ib)
        self._link.on_lost = self._on_link_lost
        self._link.on_data = self._on_data
        self._link.on_system_message = self._on_system_message

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
        return self._planner.client_id

    @property
    def heartbeat_interval(self) -> float:
        return self.settings.heartbeat_interval

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: float) -> None:
        """Takes effect at once: the watcher wakes and recomputes when to probe."""
        self.settings = replace(self.settings, heartbeat_interval=seconds)
        self._wake.set()

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_connected(self) -> bool:
        """True only while the API connection is ready (CONNECTED, or DEGRADED: TWS is up but
        cut off from IB)."""
        return self._state in LIVE_STATES and self._link.is_connected

    @property
    def last_heartbeat(self) -> datetime | None:
        """Wall-clock time of the last proof of life (any message or probe answer), or None."""
        age = self.last_heartbeat_age
        return None if age is None else datetime.now(UTC) - timedelta(seconds=age)

    @property
    def last_heartbeat_age(self) -> float | None:
        """Seconds (monotonic) since the last proof of life, or None before the first."""
        return None if self._last_alive is None else self._clock() - self._last_alive

    @property
    def consecutive_failures(self) -> int:
        """Failed connection attempts since the last success."""
        return self._planner.consecutive_failures

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
        ``HandshakeFailed``, ``HostUnreachable``). All are ``ConnectionError``\\ s.
        """
        if self.is_connected:
            return
        if self._supervisor is not None and not self._supervisor.done():
            if self.circuit_breaker.state is CircuitState.OPEN:
                raise CircuitOpenError(self.circuit_breaker.retry_after())
            await self.wait_connected()
            return
        await self._connect(max_retries=self.settings.max_retries)

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
        await self._callback_tasks.drain(CALLBACK_GRACE)

    async def start_heartbeat(self) -> None:
        """Start heartbeat monitoring: silent gateways are probed, and a probe that times out
        tears the connection down and reconnects. Same task as :meth:`start`."""
        await self.start()
        self._log.info("Heartbeat monitoring started (interval {}s)", self.heartbeat_interval)

    async def stop_heartbeat(self) -> None:
        """Stop monitoring (and reconnecting) but keep the connection open."""
        task, self._supervisor = self._supervisor, None
        if task is not None:
            await cancel_and_wait(task)
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

    def health(self) -> Health:
        """A snapshot of the connection's health."""
        age = self.last_heartbeat_age
        fresh = age is not None and age <= self.heartbeat_interval + self.settings.heartbeat_timeout
        connected = self.is_connected
        session = self._session
        since = None if session is None else session.degraded_since
        return Health(
            connected=connected,
            last_heartbeat_age=age,
            circuit_breaker_state=self.circuit_breaker.state,
            healthy=self._state is ConnectionState.CONNECTED and connected and fresh,
            state=self._state,
            last_rtt=self._last_rtt,
            consecutive_failures=self.consecutive_failures,
            reconnect_count=self.stats.reconnects,
            last_error=self._last_error,
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            supervised=self._supervisor is not None and not self._supervisor.done(),
            degraded_for=None if since is None else self._clock() - since,
            farms=MappingProxyType({} if session is None else dict(session.farms)),
        )

    async def connection_health(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the connection's health (``health().as_dict()``)."""
        return self.health().as_dict()

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

    async def _connect(self, *, max_retries: int | None, after_loss: bool = False) -> None:
        """Run one plan until connected (or it gives up); concurrent callers share it."""
        async with self._connect_lock:
            if self.is_connected:
                return
            if self._state in LIVE_STATES:  # the socket died before its close event was handled
                self._teardown("connection lost")
            self._planner.begin(max_retries=max_retries, after_loss=after_loss)
            while not await self._obey(self._planner.next()):
                pass
            self._on_up()

    async def _obey(self, decision: Decision) -> bool:
        """Carry out one decision of the planner; True once connected."""
        match decision:
            case TryNow(client_id, reason):
                self._set_state(ConnectionState.CONNECTING, reason)
                return await self._try(client_id)
            case Sleep(seconds, reason, state):
                self._set_state(state, reason)
                await self._sleep(seconds)
                return False
            case GiveUp(error, reason, state):
                self._set_state(state, reason)
                raise error
            case _:
                assert_never(decision)

    async def _try(self, client_id: int) -> bool:
        self._session = Session()
        try:
            await self._link.connect(client_id, self.settings)
        except asyncio.CancelledError:
            self._session = None
            self._planner.abandoned()
            raise
        except Exception as exc:
            self._session = None
            self._attempt_failed(exc)
            return False
        self._planner.succeeded()
        self.stats.count_attempt("ok")
        return True

    def _attempt_failed(self, exc: Exception) -> None:
        verdict = self._classify(exc)
        self._last_error = f"{type(exc).__name__}: {exc}"
        self.stats.count_attempt(retry.attempt_label(exc, verdict))
        self._log.debug("Connect attempt failed: {}", self._last_error)  # the state line says it
        tried = self.client_id
        self._planner.failed(exc, verdict)
        if self.client_id != tried:
            self._log.warning("Client id {} in use; next is {}", tried, self.client_id)

    def _on_up(self) -> None:
        """After a successful attempt: mark alive, fire the hooks."""
        reconnect = self._ever_connected
        self._ever_connected = True
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
                    lost = self._state is ConnectionState.DISCONNECTED and self._ever_connected
                    await self._connect(max_retries=None, after_loss=lost)
                reason = await self._watch()
                self._teardown(reason)
        except Exception as exc:  # fatal (see v6.connection.retry): surfaced by wait_connected()
            self._fatal_error = exc
            self._log.error("Supervision stopped by a fatal error: {!r}", exc)

    async def _watch(self) -> str:
        """Return the reason the live connection must be torn down."""
        while True:
            session = self._session
            if not self.is_connected or session is None:
                return (session and session.lost_reason) or "connection lost"
            now = self._clock()
            assert self._last_alive is not None
            deadline = self._last_alive + self.heartbeat_interval
            if session.degraded_since is not None:
                grace_end = session.degraded_since + self.settings.degraded_grace
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

    async def _probe(self) -> None:
        """Ask the gateway for its time; any answer (or any other message) is proof of life."""
        started = self._clock()
        self.stats.probes_sent += 1
        try:
            async with asyncio.timeout(self.settings.heartbeat_timeout):
                await self._link.probe()
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

    async def _stop_supervisor(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None:
            await cancel_and_wait(task)

    # ---------------------------------------------------------------- link events

    def _mark_alive(self) -> None:
        self._last_alive = self._clock()

    def _on_data(self) -> None:
        """Proof of life is a decoded message, not a byte: after a garbage length prefix
        ib_async buffers every later byte unparsed, and a stream of those proves nothing."""
        session = self._session
        decoded = self._link.messages_decoded
        if session is not None and decoded != session.messages_decoded:
            session.messages_decoded = decoded
            self._mark_alive()

    def _on_link_lost(self, reason: str) -> None:
        if self._state in LIVE_STATES:
            self._lost(reason)

    def _on_system_message(self, code: int, text: str) -> None:
        session = self._session
        if session is None:
            return
        effect = interpret(code, text)
        if isinstance(effect, CutOff) and self._state is ConnectionState.CONNECTED:
            session.degraded_since = self._clock()
            self._set_state(ConnectionState.DEGRADED, f"TWS {code}: {text}")
            self._wake.set()
        elif isinstance(effect, Restored):
            session.degraded_since = None
            if self._state is ConnectionState.DEGRADED:
                self._set_state(ConnectionState.CONNECTED, f"TWS {code}: {text}")
                self._wake.set()
            if effect.data_lost and self._state in LIVE_STATES:
                self._resubscribe_listeners.fire()
        elif isinstance(effect, FarmStatus):
            session.farms.update(effect)

    def _lost(self, reason: str, *, by_user: bool = False) -> None:
        if self._session is not None:
            self._session.lost_reason = reason
            self._session.degraded_since = None
        if not by_user:
            self._last_error = reason
        self._set_state(
            ConnectionState.STOPPED if by_user else ConnectionState.DISCONNECTED, reason
        )
        self._disconnected_listeners.fire(reason)
        self._wake.set()

    def _teardown(self, reason: str, *, by_user: bool = False) -> None:
        """Close the connection (if any) and drop its session; a live one ends with
        on_disconnected."""
        was_live = self._state in LIVE_STATES
        self._link.close()
        if was_live:
            self._lost(reason, by_user=by_user)
        self._session = None

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
        quiet = (ConnectionState.CONNECTED, ConnectionState.STOPPED, ConnectionState.CONNECTING)
        self._log.log(
            "INFO" if new in quiet else "WARNING",
            "{}:{} #{} {} -> {}: {}",
            self.host,
            self.port,
            self.client_id,
            old.name,
            new.name,
            reason,
        )
        self._state_listeners.fire(old, new, reason)

    def _bind_client_id(self, record: Record) -> None:
        record["extra"]["client_id"] = self.client_id

    def _raise_if_fatal(self) -> None:
        if self._fatal_error is not None:
            raise self._fatal_error

    def __repr__(self) -> str:
        return (
            f"IBConnectionManager({self.host}:{self.port}, client_id={self.client_id}, "
            f"state={self._state.name}, breaker={self.circuit_breaker.state.name})"
        )
