"""One ib_async connection, kept alive and honest: :class:`Connection`.

It wires the parts of :mod:`v6.connection`: the :mod:`~v6.connection.planner` decides every step
of a connect loop (breaker, backoff, client-id rotation), the :mod:`~v6.connection.link` does the
ib_async work, :mod:`~v6.connection.system_messages` says what TWS's messages mean, a
:class:`~v6.connection.session.Session` holds what is true of one connection,
:mod:`~v6.connection.listeners` runs the users' hooks, and the joined participants
(:mod:`~v6.connection.lifecycle`) hear of every moment without this module knowing what they are.

Supervision (:meth:`Connection.start`) is a single background task that connects, then watches:
the socket's own close event, a heartbeat probe that runs only when the gateway has been silent
for ``heartbeat_interval``, and IB's 1100/2110 "cut off" messages with a grace period. Whatever
fires, that one task tears down and reconnects, so two reconnect loops can never run at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from v6.connection.circuit_breaker import CircuitBreaker, CircuitState, Clock
from v6.connection.connector import Classify, Connector, ConnectPlans, SleepFunc
from v6.connection.event_loop import LoopBinding
from v6.connection.health import ConnectionStats, Health, read_health
from v6.connection.heartbeat import Heartbeat
from v6.connection.lifecycle import Participant, Participants, SessionStart
from v6.connection.link import Link
from v6.connection.listeners import Hooks
from v6.connection.planner import Backoff, ReconnectPlanner
from v6.connection.restarts import Restarts
from v6.connection.session import Session
from v6.connection.settings import ConnectionSettings
from v6.connection.state import LIVE_STATES, ConnectionState, StateHolder
from v6.connection.supervisor import Supervisor
from v6.connection.system_messages import CutOff, FarmStatus, Restored, interpret
from v6.errors import CircuitOpenError, HeartbeatTimeout

if TYPE_CHECKING:
    from loguru import Record

#: How long stop() lets async callbacks finish before cancelling them.
CALLBACK_GRACE = 1.0
#: States a connect plan passes through; a cancelled plan leaves them for DISCONNECTED.
_CONNECTING_STATES = frozenset(
    {ConnectionState.CONNECTING, ConnectionState.BACKING_OFF, ConnectionState.CIRCUIT_OPEN}
)


class Connection:
    """Connects through ``link`` and keeps the connection honest (see the module docstring).

    ``settings`` are fixed at construction except ``heartbeat_interval`` (a property that
    applies at once). Strategies: ``backoff`` and ``classify``; seams: ``clock`` (monotonic
    seconds), ``wall_clock`` (aware UTC datetimes, for maintenance windows), ``sleep``, ``rng``.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        link: Link,
        *,
        circuit_breaker: CircuitBreaker | None,
        backoff: Backoff | None,
        classify: Classify,
        clock: Clock,
        wall_clock: Callable[[], datetime],
        sleep: SleepFunc,
        rng: random.Random,
    ) -> None:
        self._settings = settings
        self._clock = clock
        # client_id is read when a line is written: it follows the rotation on error 326.
        self.log = logger.bind(host=settings.host, port=settings.port).patch(self._bind_client_id)
        self.circuit_breaker = circuit_breaker or CircuitBreaker(clock=clock, log=self.log)
        self.stats = ConnectionStats()
        self.hooks = Hooks(self.log)
        self.participants = Participants(self.log)
        #: Readiness probing, maintenance windows and IBC (probe and overrun counts).
        self.restarts = Restarts(
            settings, clock=clock, wall_clock=wall_clock, sleep=sleep, rng=rng, log=self.log
        )
        self._planner = ReconnectPlanner(
            settings.client_ids, self.circuit_breaker, backoff or settings.backoff, rng,
            poll_delay=settings.retry_delay, target=f"{settings.host}:{settings.port}",
            may_rotate=self.participants.may_rotate_client_id,
        )  # fmt: skip
        self._states = StateHolder(
            self.log,
            lambda: f"{settings.host}:{settings.port} #{self.client_id}",
            self.hooks.state_change.fire,
            self._failures_expected,
        )
        self._plans = ConnectPlans()
        self._loop = LoopBinding()
        self._ever_connected = False
        self._sessions = 0  # API sessions started (handshakes)
        self._last_error: str | None = None
        self._link = link
        link.on_lost = self._on_link_lost
        link.on_data = self._on_data
        link.on_system_message = self._on_system_message
        link.on_handshake = self._on_handshake
        link.failures_expected = lambda: self._failures_expected(self._states.current)
        self._connector = Connector(
            self._planner, link, classify=classify, stats=self.stats, restarts=self.restarts,
            set_state=self._states.move, note_error=self._note_error, log=self.log,
        )  # fmt: skip
        self._heartbeat = Heartbeat(
            link, settings, clock, self.stats, self.hooks.heartbeat.fire, self.log
        )
        self._supervisor = Supervisor(
            connect=self._reconnect, watch=self._watch, teardown=self._teardown, log=self.log
        )

    def join(self, participant: Participant) -> None:
        """Tell ``participant`` of every moment from now on (see :mod:`.lifecycle`)."""
        self.participants.join(participant)

    # ---------------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Connect, retrying up to ``max_retries`` (see IBConnectionManager.connect)."""
        self.check_loop()
        if self.is_connected:
            return
        if self._supervisor.running:
            if self.circuit_breaker.state is CircuitState.OPEN:
                raise CircuitOpenError(self.circuit_breaker.retry_after())
            await self.wait_connected()
            return
        await self._connect(max_retries=self._settings.max_retries)

    def start(self) -> None:
        """Start supervision: reconnect on loss, stall or long outage, until :meth:`stop`."""
        self.check_loop()
        self._supervisor.start()

    async def stop(self) -> None:
        """Stop supervision and every task, close the socket; state becomes STOPPED.

        Safe at any moment: a connect under way (or waiting) raises :class:`ConnectAborted`,
        and a :meth:`start` that lands while this runs is stopped too."""
        self.check_loop()
        await self._plans.stop(self._supervisor)
        # No await from the loop's last check to here: nothing can start in between.
        self._teardown("stopped by the user", by_user=True)
        self._states.move(ConnectionState.STOPPED, "stopped by the user")
        await self.participants.stopped()
        # Let async callbacks (including the ones just fired) finish briefly, then cancel.
        await self.hooks.registry.tasks.drain(CALLBACK_GRACE)

    async def stop_supervision(self) -> bool:
        """Stop watching and reconnecting, keep the connection; False if it was not running."""
        self.check_loop()
        return await self._supervisor.stop()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the API connection is ready (``TimeoutError`` after ``timeout``; the
        fatal error that ended supervision)."""
        self.check_loop()
        async with asyncio.timeout(timeout):
            await self._supervisor.wait_live(self._states.live, lambda: self.is_connected)

    def reconnect(self, reason: str) -> None:
        """End the live session now (a participant found it unusable); supervision, when it
        runs, connects again at once."""
        if self._states.current in LIVE_STATES:
            self._teardown(reason)

    def check_loop(self) -> None:
        """Raise WrongEventLoop unless called from the loop this connection first ran in."""
        self._loop.check()

    # ---------------------------------------------------------------------- read side

    @property
    def settings(self) -> ConnectionSettings:
        return self._settings

    @property
    def heartbeat_interval(self) -> float:
        return self._settings.heartbeat_interval

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: float) -> None:
        """Takes effect at once: the watcher wakes and recomputes when to probe."""
        self._settings = replace(self._settings, heartbeat_interval=seconds)
        self._heartbeat.settings = self._settings
        self._heartbeat.wake()

    @property
    def client_id(self) -> int:
        """The client id used by the current (or next) attempt."""
        return self._planner.client_id

    @property
    def state(self) -> ConnectionState:
        return self._states.current

    @property
    def is_connected(self) -> bool:
        """True only while the API connection is ready (CONNECTED, or DEGRADED)."""
        return self._states.current in LIVE_STATES and self._link.is_connected

    @property
    def socket_up(self) -> bool:
        """The API socket is up (the state may still be CONNECTING)."""
        return self._link.is_connected

    @property
    def supervised(self) -> bool:
        return self._supervisor.running

    @property
    def last_heartbeat_age(self) -> float | None:
        """Seconds (monotonic) since the last proof of life, or None before the first."""
        return self._heartbeat.age()

    @property
    def consecutive_failures(self) -> int:
        return self._planner.consecutive_failures

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def health(self) -> Health:
        """A snapshot of the connection's health."""
        connected = self.is_connected
        return read_health(
            self._settings, self._session, state=self._states.current, connected=connected,
            heartbeat_age=self.last_heartbeat_age, last_rtt=self._heartbeat.last_rtt,
            maintenance=self.restarts.evaluate(connected), clock=self._clock,
            breaker=self.circuit_breaker.state, consecutive_failures=self.consecutive_failures,
            reconnects=self.stats.reconnects, last_error=self._last_error,
            client_id=self.client_id, supervised=self._supervisor.running,
        )  # fmt: skip

    def connection_health(self) -> dict[str, Any]:
        """``health().as_dict()`` with every participant's fields (and verdict on ``healthy``)."""
        reading = self.health().as_dict()
        return {**reading, **self.participants.health(reading["healthy"])}

    # ------------------------------------------------------------------ connecting

    def _connect(self, *, max_retries: int | None, after_loss: bool = False) -> Awaitable[None]:
        """Run one plan until connected (or it gives up); concurrent callers share it. The plan
        runs in the caller's task: stop() cancels it there, and the caller gets
        :class:`ConnectAborted` instead. (Not a coroutine of its own: one frame less to pass
        each time the connect resumes.)"""
        return self._plans.run(
            lambda: self._run_plan(max_retries, after_loss), needed=self._needed
        )

    def _needed(self) -> bool:
        """Whether a plan must run (asked once no other plan runs)."""
        if self.is_connected:
            return False
        if self._states.current in LIVE_STATES:  # socket died, close event not yet handled
            self._teardown("connection lost")
        return True

    async def _run_plan(self, max_retries: int | None, after_loss: bool) -> None:
        self.participants.before_connect()
        try:
            await self._connector.run(
                self._settings, max_retries=max_retries, after_loss=after_loss
            )
        except asyncio.CancelledError:
            # The caller gave up (a timeout): say no attempt is under way. stop() says STOPPED.
            if not self._plans.stopping and self._states.current in _CONNECTING_STATES:
                self._states.move(ConnectionState.DISCONNECTED, "connect cancelled")
            raise
        reconnect = self._ever_connected
        self.participants.before_live(reconnect)  # e.g. every missed fill, before CONNECTED
        self._ever_connected = True
        self._heartbeat.alive()
        if reconnect:
            self.stats.reconnects += 1
        self._states.move(
            ConnectionState.CONNECTED, "reconnected" if reconnect else "connected and synced"
        )
        self.participants.live(reconnect)
        self.hooks.connected.fire(reconnect)
        if reconnect:
            self.hooks.resubscribe.fire()

    # ----------------------------------------------------------------- supervision

    async def _reconnect(self) -> None:
        if not self.is_connected:
            lost = self._states.current is ConnectionState.DISCONNECTED and self._ever_connected
            await self._connect(max_retries=None, after_loss=lost)

    async def _watch(self) -> str:
        session = self._session
        if session is None:  # lost between the connect and now
            return "connection lost"
        try:
            return await self._heartbeat.watch(session, lambda: self.is_connected)
        except HeartbeatTimeout as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            return str(exc)

    # ---------------------------------------------------------------- link events

    def _on_handshake(self) -> None:
        self._sessions += 1
        self.participants.handshake(SessionStart(self._sessions, self._link.endpoint))

    def _on_data(self) -> None:
        """A decoded message (see :class:`Link`): proof of life, while a session is on."""
        if self._connector.session is not None:
            self._heartbeat.alive()

    def _on_link_lost(self, reason: str) -> None:
        if self._states.current in LIVE_STATES:
            self._lost(reason)

    def _on_system_message(self, code: int, text: str) -> None:
        session = self._session
        if session is None:
            return
        effect = interpret(code, text)
        if isinstance(effect, FarmStatus):  # the usual one: several in every handshake
            session.farms.update(effect)
            self.participants.farm(effect)
            return
        if isinstance(effect, CutOff) and self._states.current is ConnectionState.CONNECTED:
            session.degraded_since = self._clock()
            self._states.move(ConnectionState.DEGRADED, f"TWS {code}: {text}")
            self._heartbeat.wake()
        elif isinstance(effect, Restored):
            session.degraded_since = None
            if self._states.current is ConnectionState.DEGRADED:
                self._states.move(ConnectionState.CONNECTED, f"TWS {code}: {text}")
                self._heartbeat.wake()
            if effect.data_lost and self._states.current in LIVE_STATES:
                self.hooks.resubscribe.fire()
                self.participants.data_lost()
        self.participants.system_message(code, text)

    def _lost(self, reason: str, *, by_user: bool = False) -> None:
        if self._session is not None:
            self._session.lost_reason = reason
            self._session.degraded_since = None
        if not by_user:
            self._last_error = reason
        self._states.move(
            ConnectionState.STOPPED if by_user else ConnectionState.DISCONNECTED, reason
        )
        self.participants.lost(reason)
        self.hooks.disconnected.fire(reason)
        self._heartbeat.wake()

    def _teardown(self, reason: str, *, by_user: bool = False) -> None:
        """Close the connection (if any) and drop its session; a live one ends with
        on_disconnected."""
        was_live = self._states.current in LIVE_STATES
        self._link.close()
        if was_live:
            self._lost(reason, by_user=by_user)
        self._connector.session = None

    # ------------------------------------------------------------------- helpers

    @property
    def _session(self) -> Session | None:
        """The connection (or the attempt under way), dropped at teardown."""
        return self._connector.session

    def _failures_expected(self, state: ConnectionState) -> bool:
        """Failures are expected now (a known restart window) for a connection in ``state``."""
        return self.restarts.evaluate(connected=state in LIVE_STATES).expected

    def _note_error(self, error: str) -> None:
        self._last_error = error

    def _bind_client_id(self, record: Record) -> None:
        record["extra"]["client_id"] = self.client_id

    def __repr__(self) -> str:
        return (
            f"{self._settings.host}:{self._settings.port}, client_id={self.client_id}, "
            f"state={self._states.current.name}, breaker={self.circuit_breaker.state.name}"
        )
