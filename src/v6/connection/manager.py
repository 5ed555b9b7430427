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
import os
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from ib_async import IB
from loguru import logger

from v6.connection import defaults as d
from v6.connection import retry
from v6.connection.circuit_breaker import CircuitBreaker, CircuitState, Clock
from v6.connection.connect_plan import ConnectPlans, LoopBinding
from v6.connection.connector import Classify, Connector, SleepFunc
from v6.connection.health import ConnectionStats
from v6.connection.heartbeat import Heartbeat
from v6.connection.link import IbAsyncLink, Link
from v6.connection.listeners import Hooks
from v6.connection.maintenance import MaintenanceSchedule, MaintenanceWindows, utc_now
from v6.connection.planner import Backoff, ReconnectPlanner
from v6.connection.restarts import Restarts
from v6.connection.settings import (
    ConnectionSettings,
    SettingsView,
    client_id_tuple,
)
from v6.connection.state import LIVE_STATES, ConnectionState, StateHolder
from v6.connection.status import ManagerStatus
from v6.connection.supervisor import Supervisor
from v6.connection.system_messages import CutOff, FarmStatus, Restored, interpret
from v6.errors import CircuitOpenError, HeartbeatTimeout
from v6.orders.wiring import OrderTracking, TradingHooks
from v6.validation import require_bool

if TYPE_CHECKING:
    from loguru import Record

#: How long stop() lets async callbacks finish before cancelling them.
CALLBACK_GRACE = 1.0
#: States a connect plan passes through; a cancelled plan leaves them for DISCONNECTED.
_CONNECTING_STATES = frozenset(
    {ConnectionState.CONNECTING, ConnectionState.BACKING_OFF, ConnectionState.CIRCUIT_OPEN}
)


class IBConnectionManager(Hooks, SettingsView, ManagerStatus, TradingHooks):
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

    Daily restarts (see :mod:`v6.connection.restarts`): ``readiness_interval`` (seconds between
    readiness probes while waiting to reconnect; None: off), ``maintenance_windows`` (e.g.
    ``"23:45-00:05 America/New_York"``; ``;`` separates several) and ``maintenance_grace``,
    ``ibc_command_port`` (IBC's command server; None: off) and ``ibc_restart_after``. Seam:
    ``wall_clock`` (aware UTC datetimes, for the windows).
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
        readiness_interval: float | None = d.DEFAULT_READINESS_INTERVAL,
        maintenance_windows: MaintenanceWindows = None,
        maintenance_grace: float = d.DEFAULT_MAINTENANCE_GRACE,
        ibc_command_port: int | None = None,
        ibc_restart_after: float = d.DEFAULT_IBC_RESTART_AFTER,
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
        journal: str | os.PathLike[str] | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        require_bool("supervise", supervise)
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
            readiness_interval=readiness_interval,
            maintenance_windows=MaintenanceSchedule.parse(maintenance_windows),
            maintenance_grace=maintenance_grace,
            ibc_command_port=ibc_command_port,
            ibc_restart_after=ibc_restart_after,
        )
        self.ib = ib if ib is not None else IB()
        # client_id is read when a line is written: it follows the rotation on error 326.
        self._log = logger.bind(host=host, port=port).patch(self._bind_client_id)
        self.circuit_breaker = circuit_breaker or CircuitBreaker(clock=clock, log=self._log)
        self.supervise = supervise
        self.stats = ConnectionStats()
        Hooks.__init__(self, self._log)
        # Fills, Trades and order ids across reconnects and restarts (v6.orders, issue 8).
        self._orders = OrderTracking(
            self.ib, journal, listeners=self._listener_registry, log=self._log,
            refusal=self._order_refusal, rng=random.Random(), clock=clock,
            wall_clock=lambda: wall_clock().timestamp(),
        )  # fmt: skip
        rng = rng or random.Random()
        #: Readiness probing, maintenance windows and IBC (probe and overrun counts).
        self.restarts = Restarts(
            lambda: self.settings,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
            rng=rng,
            log=self._log,
        )
        self._planner = ReconnectPlanner(
            self.settings.client_ids,
            self.circuit_breaker,
            backoff or self.settings.backoff,
            rng,
            poll_delay=retry_delay,
            target=f"{host}:{port}",
            # 326 with working orders: only this client id may still manage them.
            may_rotate=lambda: self._orders.working_orders() == 0,
        )
        self._clock = clock
        self._states = StateHolder(
            self._log,
            lambda: f"{self.host}:{self.port} #{self.client_id}",
            self._state_listeners.fire,
            self._failures_expected,
        )
        self._plans = ConnectPlans()
        self._loop = LoopBinding()
        self._ever_connected = False
        self._last_error: str | None = None
        self._link: Link = link if link is not None else IbAsyncLink(self.ib, clock=clock)
        self._link.on_lost = self._on_link_lost
        self._link.on_data = self._on_data
        self._link.on_system_message = self._on_system_message
        self._link.failures_expected = lambda: self._failures_expected(self._states.current)
        self._connector = Connector(
            self._planner,
            self._link,
            classify=classify,
            stats=self.stats,
            restarts=self.restarts,
            set_state=self._states.move,
            note_error=self._note_error,
            log=self._log,
        )
        self._heartbeat = Heartbeat(
            self._link,
            lambda: self.settings,
            clock,
            self.stats,
            self._heartbeat_listeners.fire,
            self._log,
        )
        self._supervisor = Supervisor(
            connect=self._reconnect, watch=self._watch, teardown=self._teardown, log=self._log
        )

    # ---------------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Connect, retrying transient failures with exponential backoff.

        Raises :class:`CircuitOpenError` at once, without touching the network, while the
        breaker is OPEN (also if it opens during the retries); :class:`ClientIdInUse` if every
        try met TWS error 326; otherwise the last :class:`ConnectFailed` (``ConnectTimeout``,
        ``HandshakeFailed``, ``HostUnreachable``; :class:`ConnectAborted` when :meth:`stop` ends
        it). All are ``ConnectionError``\\ s.
        """
        self._check_loop()
        if self.is_connected:
            return
        if self._supervisor.running:
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
        self._check_loop()
        if not self.is_connected:
            self._log.warning("Not connected; reconnecting")
            await self.connect()

    async def start(self) -> None:
        """Keep the connection up until :meth:`stop`: reconnect on loss, stall or long outage."""
        self._check_loop()
        self._supervisor.start()

    async def stop(self) -> None:
        """Stop supervision and every task, close the socket; state becomes STOPPED.

        Safe at any moment: a connect under way (or waiting) raises :class:`ConnectAborted`,
        and a :meth:`start` that lands while this runs is stopped too."""
        self._check_loop()
        await self._plans.stop(self._supervisor)
        # No await from the loop's last check to here: nothing can start in between.
        self._teardown("stopped by the user", by_user=True)
        self._states.move(ConnectionState.STOPPED, "stopped by the user")
        self._orders.close()
        # Let async callbacks (including the ones just fired) finish briefly, then cancel.
        await self._callback_tasks.drain(CALLBACK_GRACE)

    async def start_heartbeat(self) -> None:
        """Start heartbeat monitoring: silent gateways are probed, and a probe that times out
        tears the connection down and reconnects. Same task as :meth:`start`."""
        await self.start()
        self._log.info("Heartbeat monitoring started (interval {}s)", self.heartbeat_interval)

    async def stop_heartbeat(self) -> None:
        """Stop monitoring (and reconnecting) but keep the connection open."""
        self._check_loop()
        if await self._supervisor.stop():
            self._log.info("Heartbeat monitoring stopped")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the API connection is ready.

        Raises ``TimeoutError`` after ``timeout`` seconds, or the fatal error that ended
        supervision."""
        self._check_loop()
        async with asyncio.timeout(timeout):
            await self._supervisor.wait_live(self._states.live, lambda: self.is_connected)

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
        """Run one plan until connected (or it gives up); concurrent callers share it.

        The plan runs as its own task so that stop() can end it without cancelling the caller,
        who gets :class:`ConnectAborted` instead."""
        await self._plans.run(lambda: self._run_plan(max_retries, after_loss), needed=self._needed)

    def _needed(self) -> bool:
        """Whether a plan must run (asked under the plans' lock)."""
        if self.is_connected:
            return False
        if self._states.current in LIVE_STATES:  # socket died, close event not yet handled
            self._teardown("connection lost")
        return True

    async def _run_plan(self, max_retries: int | None, after_loss: bool) -> None:
        self._orders.open()
        try:
            await self._connector.run(self.settings, max_retries=max_retries, after_loss=after_loss)
        except asyncio.CancelledError:
            # The caller gave up (a timeout): say no attempt is under way. stop() says STOPPED.
            if not self._plans.stopping and self._states.current in _CONNECTING_STATES:
                self._states.move(ConnectionState.DISCONNECTED, "connect cancelled")
            raise
        self._orders.tracker.reconcile()  # every missed fill, before CONNECTED
        self._on_up()

    def _on_up(self) -> None:
        """After a successful attempt: mark alive, fire the hooks."""
        reconnect = self._ever_connected
        self._ever_connected = True
        self._heartbeat.alive()
        if reconnect:
            self.stats.reconnects += 1
        self._states.move(
            ConnectionState.CONNECTED, "reconnected" if reconnect else "connected and synced"
        )
        self._connected_listeners.fire(reconnect)
        if reconnect:
            self._resubscribe_listeners.fire()

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

    def _on_data(self) -> None:
        """Proof of life is a decoded message, not a byte: after a garbage length prefix
        ib_async buffers every later byte unparsed, and a stream of those proves nothing."""
        session = self._session
        decoded = self._link.messages_decoded
        if session is not None and decoded != session.messages_decoded:
            session.messages_decoded = decoded
            self._heartbeat.alive()

    def _on_link_lost(self, reason: str) -> None:
        if self._states.current in LIVE_STATES:
            self._lost(reason)

    def _on_system_message(self, code: int, text: str) -> None:
        session = self._session
        if session is None:
            return
        effect = interpret(code, text)
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
                self._resubscribe_listeners.fire()
                self._callback_tasks.spawn(self._orders.resync(
                    timeout=self.settings.connect_timeout, retry_delay=self.retry_delay,
                    is_live=lambda: self.is_connected,
                ), "order resync after 1101")  # fmt: skip
        elif isinstance(effect, FarmStatus):
            session.farms.update(effect)

    def _lost(self, reason: str, *, by_user: bool = False) -> None:
        if self._session is not None:
            self._session.lost_reason = reason
            self._session.degraded_since = None
        if not by_user:
            self._last_error = reason
        self._states.move(
            ConnectionState.STOPPED if by_user else ConnectionState.DISCONNECTED, reason
        )
        self._disconnected_listeners.fire(reason)
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

    def _check_loop(self) -> None:
        self._loop.check()

    def _failures_expected(self, state: ConnectionState) -> bool:
        """Failures are expected now (a known restart window) for a manager in ``state``."""
        return self.restarts.evaluate(connected=state in LIVE_STATES).expected

    def _note_error(self, error: str) -> None:
        self._last_error = error

    def _bind_client_id(self, record: Record) -> None:
        record["extra"]["client_id"] = self.client_id
