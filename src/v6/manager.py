"""IBConnectionManager: the public object, a shell above its passengers.

It composes one :class:`~v6.connection.keeper.Connection` (kept alive and honest, knowing no
participant) and the participants that ride on it through the lifecycle seam
(:mod:`v6.connection.lifecycle`): :class:`~v6.orders.tracking.OrderTracking` (every fill once,
Trade handles kept), :class:`~v6.pacing.participant.RequestPacing` (every request paced by
IB's rules, in priority lanes) and :class:`~v6.data.live_data.LiveData` (``manager.data``:
subscriptions replayed onto the application's own objects, stale feeds found). It owns nothing
else: settings are read from the connection, hooks are the connection's and the participants'
listener lists, health is the connection's with every participant's fields.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

from ib_async import IB

from v6.connection import defaults as d
from v6.connection import retry
from v6.connection.circuit_breaker import CircuitBreaker, Clock
from v6.connection.connector import Classify, SleepFunc
from v6.connection.health import ConnectionStats, Health
from v6.connection.keeper import Connection
from v6.connection.lanes import Lane
from v6.connection.link import IbAsyncLink, Link
from v6.connection.maintenance import utc_now
from v6.connection.planner import Backoff
from v6.connection.restarts import Restarts
from v6.connection.settings import ConnectionOptions, ConnectionSettings, manager_kwargs_from_env
from v6.connection.state import ConnectionState
from v6.data.feeds import DEFAULT_MAX_RESUBSCRIBES, DEFAULT_STALE_AFTER
from v6.data.live_data import LiveData
from v6.errors import ConfigError
from v6.orders.journal import Journal
from v6.orders.journal_lock import DEFAULT_JOURNAL_LOCK_TIMEOUT
from v6.orders.tracking import CommissionHook, FillHook, OrderTracking
from v6.pacing.participant import RequestPacing
from v6.protocol.pacing import PacingLimits
from v6.validation import require_bool, require_range

T = TypeVar("T")
#: The request scheduler's limits unless told otherwise: IB's published ones.
DEFAULT_PACING = PacingLimits()


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
    each scaled by a random factor within ``1 +- jitter``). The other connection options
    (``heartbeat_interval``, ``heartbeat_timeout``, ``connect_timeout``, ``max_delay``,
    ``jitter``, ``degraded_grace``, ``readonly``, ``account``, ``readiness_interval``,
    ``maintenance_windows``, ``maintenance_grace``, ``ibc_command_port``,
    ``ibc_restart_after``) are keyword-only, with the defaults of
    :class:`~v6.connection.settings.ConnectionSettings` (``DEFAULT_*`` in
    :mod:`v6.connection.defaults`). Invalid arguments raise :class:`v6.errors.ConfigError` (a
    ``ValueError``) naming the field.

    ``journal``: the fill journal's path (None: exactly once for the life of the process).
    ``pacing``: IB's pacing limits the request scheduler keeps to (default
    :class:`~v6.protocol.pacing.PacingLimits`, IB's published ones; None: no scheduler).
    ``stale_after``: seconds without data after which a subscription is re-requested (each
    subscription may set its own; None: never), ``max_resubscribes`` re-requests in a row before
    the manager reconnects once for it (see :mod:`v6.data.feeds`).
    ``journal_lock_timeout``: how long construction waits for another owner of the journal to
    let go before raising :class:`~v6.errors.JournalLocked` (default
    :data:`~v6.orders.journal_lock.DEFAULT_JOURNAL_LOCK_TIMEOUT`, 10 s: a rolling deploy).
    ``supervise``: ``async with`` also starts supervision.

    Strategies, as websockets' ``reconnect_delays`` / ``process_exception``: ``backoff`` (an
    object with ``delay(failures, rng)`` and ``first_reconnect_delay(rng)``; default
    :class:`~v6.connection.backoff.ExponentialBackoff` from the settings) and ``classify`` (an
    exception -> :class:`~v6.connection.retry.Verdict`; default
    :func:`v6.connection.retry.classify`). Seams for tests: ``ib``, ``link`` (default
    :class:`~v6.connection.link.IbAsyncLink` on ``ib``), ``clock`` (monotonic seconds),
    ``wall_clock`` (aware UTC datetimes), ``sleep`` and ``rng``.
    """

    def __init__(
        self,
        host: str = d.DEFAULT_HOST,
        port: int = d.DEFAULT_PORT,
        client_id: int | Sequence[int] = d.DEFAULT_CLIENT_ID,
        max_retries: int = d.DEFAULT_MAX_RETRIES,
        retry_delay: float = d.DEFAULT_RETRY_DELAY,
        *,
        journal: str | os.PathLike[str] | None = None,
        pacing: PacingLimits | None = DEFAULT_PACING,
        stale_after: float | None = DEFAULT_STALE_AFTER,
        max_resubscribes: int = DEFAULT_MAX_RESUBSCRIBES,
        journal_lock_timeout: float = DEFAULT_JOURNAL_LOCK_TIMEOUT,
        supervise: bool = False,
        circuit_breaker: CircuitBreaker | None = None,
        backoff: Backoff | None = None,
        classify: Classify = retry.classify,
        ib: IB | None = None,
        link: Link | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
        sleep: SleepFunc = asyncio.sleep,
        rng: random.Random | None = None,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        require_bool("supervise", supervise)
        require_range("journal_lock_timeout", journal_lock_timeout, low=0.0)
        settings = ConnectionSettings.from_arguments(
            host, port, client_id, max_retries, retry_delay, **options
        )
        self.supervise = supervise
        self.ib = ib if ib is not None else IB()
        self._connection = connection = Connection(
            settings, link if link is not None else IbAsyncLink(self.ib, clock=clock),
            circuit_breaker=circuit_breaker, backoff=backoff, classify=classify, clock=clock,
            wall_clock=wall_clock, sleep=sleep, rng=rng or random.Random(),
        )  # fmt: skip
        # Fills, Trades and order ids across reconnects and restarts (v6.orders, issue 8).
        self._orders = OrderTracking(
            self.ib, journal, connection=connection, listeners=connection.hooks.registry,
            log=connection.log, rng=random.Random(), clock=clock,
            wall_clock=lambda: wall_clock().timestamp(),
            journal_lock_timeout=journal_lock_timeout,
        )  # fmt: skip
        connection.join(self._orders)
        # Every request paced by IB's rules, in lanes (v6.pacing, issue 17).
        self._pacing = RequestPacing(self.ib, pacing, connection=connection, clock=clock)
        connection.join(self._pacing)
        #: Live data: ``manager.data.market_data(contract)`` ... (v6.data, issue 18).
        self.data = LiveData(
            self.ib, connection=connection, reconnect=connection.reconnect, log=connection.log,
            clock=clock, wall_clock=wall_clock, stale_after=stale_after,
            max_resubscribes=max_resubscribes,
        )  # fmt: skip
        connection.join(self.data)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """Build from ``IB_HOST``, ``IB_PORT``, ``IB_CLIENT_ID`` (comma list allowed) and the
        other options as ``IB_<OPTION>`` (``IB_HEARTBEAT_TIMEOUT``, ``IB_READONLY``, ...).
        Keyword arguments override the environment; ``IB_JOURNAL`` is the ``journal`` path,
        ``IB_JOURNAL_LOCK_TIMEOUT`` its ``journal_lock_timeout`` in seconds."""
        environ = os.environ if environ is None else environ
        kwargs.setdefault("journal", environ.get("IB_JOURNAL") or None)
        lock_timeout = environ.get("IB_JOURNAL_LOCK_TIMEOUT")
        if lock_timeout and "journal_lock_timeout" not in kwargs:
            kwargs["journal_lock_timeout"] = _seconds("IB_JOURNAL_LOCK_TIMEOUT", lock_timeout)
        return cls(**manager_kwargs_from_env(environ, kwargs))

    # ---------------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Connect, retrying transient failures with exponential backoff.

        Raises :class:`CircuitOpenError` at once, without touching the network, while the
        breaker is OPEN (also if it opens during the retries); :class:`ClientIdInUse` if every
        try met TWS error 326; otherwise the last :class:`ConnectFailed` (``ConnectTimeout``,
        ``HandshakeFailed``, ``HostUnreachable``; :class:`ConnectAborted` when :meth:`stop` ends
        it). All are ``ConnectionError``\\ s.
        """
        await self._connection.connect()

    async def disconnect(self) -> None:
        """Stop supervision and the heartbeat, close the connection (state STOPPED)."""
        await self.stop()

    async def ensure_connected(self) -> None:
        """Return once connected, reconnecting if needed (waits for the supervisor if running)."""
        self._connection.check_loop()
        if not self.is_connected:
            self._connection.log.warning("Not connected; reconnecting")
            await self.connect()

    async def start(self) -> None:
        """Keep the connection up until :meth:`stop`: reconnect on loss, stall or long outage."""
        self._connection.start()

    async def stop(self) -> None:
        """Stop supervision and every task, close the socket; state becomes STOPPED.

        Safe at any moment: a connect under way (or waiting) raises :class:`ConnectAborted`,
        and a :meth:`start` that lands while this runs is stopped too."""
        await self._connection.stop()

    async def start_heartbeat(self) -> None:
        """Start heartbeat monitoring: silent gateways are probed, and a probe that times out
        tears the connection down and reconnects. Same task as :meth:`start`."""
        await self.start()
        self._connection.log.info(
            "Heartbeat monitoring started (interval {}s)", self.heartbeat_interval
        )

    async def stop_heartbeat(self) -> None:
        """Stop monitoring (and reconnecting) but keep the connection open."""
        if await self._connection.stop_supervision():
            self._connection.log.info("Heartbeat monitoring stopped")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the API connection is ready.

        Raises ``TimeoutError`` after ``timeout`` seconds, or the fatal error that ended
        supervision."""
        await self._connection.wait_connected(timeout)

    async def __aenter__(self) -> Self:
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

    # ------------------------------------------------------------------------- hooks

    def on_connected(self, callback: Callable[[bool], Any]) -> Callable[[bool], Any]:
        """Call ``callback(is_reconnect)`` after every successful (re)connect."""
        return self._connection.hooks.connected.add(callback)

    def on_disconnected(self, callback: Callable[[str], Any]) -> Callable[[str], Any]:
        """Call ``callback(reason)`` when a live connection ends."""
        return self._connection.hooks.disconnected.add(callback)

    def on_state_change(
        self, callback: Callable[[ConnectionState, ConnectionState, str], Any]
    ) -> Callable[[ConnectionState, ConnectionState, str], Any]:
        """Call ``callback(old, new, reason)`` on every state transition."""
        return self._connection.hooks.state_change.add(callback)

    def add_resubscribe(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Call ``callback()`` once after every reconnect and after every 1101 (data lost)."""
        return self._connection.hooks.resubscribe.add(callback)

    def on_heartbeat(self, callback: Callable[[float], Any]) -> Callable[[float], Any]:
        """Call ``callback(rtt_seconds)`` after every answered probe."""
        return self._connection.hooks.heartbeat.add(callback)

    def on_fill(self, callback: FillHook) -> FillHook:
        """Call ``callback(trade, fill)`` once per execution id (live or recovered)."""
        return self._orders.fill_listeners.add(callback)

    def on_commission(self, callback: CommissionHook) -> CommissionHook:
        """Call ``callback(trade, fill, report)`` once per execution's commission report."""
        return self._orders.commission_listeners.add(callback)

    def remove_listener(self, callback: Callable[..., Any]) -> None:
        """Remove ``callback`` from every hook that holds it (trading hooks included)."""
        self._connection.hooks.registry.remove(callback)

    # --------------------------------------------------------------------- read side

    @property
    def connection(self) -> Connection:
        """The connection this manager composes (its parts, for tools and tests)."""
        return self._connection

    @property
    def settings(self) -> ConnectionSettings:
        return self._connection.settings

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def client_id(self) -> int:
        """The client id used by the current (or next) attempt."""
        return self._connection.client_id

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt in one connect() call."""
        return self.settings.max_retries

    @property
    def retry_delay(self) -> float:
        """The first backoff delay; the k-th is ``retry_delay * 2**k``."""
        return self.settings.retry_delay

    @property
    def heartbeat_interval(self) -> float:
        return self._connection.heartbeat_interval

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: float) -> None:
        """Takes effect at once: the watcher wakes and recomputes when to probe."""
        self._connection.heartbeat_interval = seconds

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        return self._connection.circuit_breaker

    @property
    def stats(self) -> ConnectionStats:
        return self._connection.stats

    @property
    def restarts(self) -> Restarts:
        """Readiness probing, maintenance windows and IBC (probe and overrun counts)."""
        return self._connection.restarts

    @property
    def state(self) -> ConnectionState:
        return self._connection.state

    @property
    def is_connected(self) -> bool:
        """True only while the API connection is ready (CONNECTED, or DEGRADED: TWS is up but
        cut off from IB)."""
        return self._connection.is_connected

    @property
    def last_heartbeat(self) -> datetime | None:
        """Wall-clock time of the last proof of life (any message or probe answer), or None."""
        age = self.last_heartbeat_age
        return None if age is None else utc_now() - timedelta(seconds=age)

    @property
    def last_heartbeat_age(self) -> float | None:
        """Seconds (monotonic) since the last proof of life, or None before the first."""
        return self._connection.last_heartbeat_age

    @property
    def consecutive_failures(self) -> int:
        """Failed connection attempts since the last success."""
        return self._connection.consecutive_failures

    @property
    def last_error(self) -> str | None:
        return self._connection.last_error

    def health(self) -> Health:
        """A snapshot of the connection's health."""
        return self._connection.health()

    async def connection_health(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the connection's health (``health().as_dict()``),
        with the trading state: ``open_orders``, ``fills_delivered``, ``fills_recovered``
        (delivered by reconciliation, not live) and ``last_reconcile_seconds``."""
        return self._connection.connection_health()

    # ----------------------------------------------------------------------- requests

    async def request(
        self,
        call: Callable[[IB], Awaitable[T]],
        *,
        lane: Lane = Lane.BULK,
        timeout: float | None = None,
        key: Hashable | None = None,
    ) -> T:
        """``await call(manager.ib)`` once connected, paced in ``lane``; run again in the next
        session if the socket closes before the answer (a request through ``manager.ib``
        directly is paced too, but dies with its session). :class:`~v6.errors.RequestTimeout`
        after ``timeout`` seconds. Calls with the same ``key`` under way share one run::

            bars = await manager.request(
                lambda ib: ib.reqHistoricalDataAsync(contract, "", "1 D", "1 min", "TRADES",
                                                     True, timeout=0),
                timeout=600,
            )

        (``timeout=0`` for ib_async: its own timeout would start before the scheduler sends.)
        """
        return await self._pacing.run(call, lane=lane, timeout=timeout, key=key)

    # ----------------------------------------------------------------- trading state

    @property
    def corrections(self) -> dict[str, str]:
        """Correcting execution id -> the execution id it replaced."""
        return self._orders.tracker.corrections

    def trading_stats(self) -> dict[str, Any]:
        """``open_orders``, ``fills_delivered``, ``fills_recovered``, ``last_reconcile_seconds``
        (also in ``connection_health()``; read by v6.metrics)."""
        return self._orders.health()

    @property
    def journal(self) -> Journal:
        return self._orders.journal

    def __repr__(self) -> str:
        return f"IBConnectionManager({self._connection!r})"


def _seconds(variable: str, text: str) -> float:
    """A non-negative number of seconds from an environment variable, or ConfigError."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{variable} must be a number of seconds, got {text!r}") from None
    require_range(variable, value, low=0.0)
    return value
