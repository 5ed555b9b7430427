"""The manager's read side: its state, its last proof of life, its health and whether an order
may go out now, read from the parts the manager wires (a mixin of
:class:`~v6.connection.manager.IBConnectionManager`). The one write here is the plan's writable
``heartbeat_interval``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from v6.connection.circuit_breaker import CircuitBreaker, Clock
from v6.connection.connector import Connector
from v6.connection.health import ConnectionStats, Health, read_health
from v6.connection.heartbeat import Heartbeat
from v6.connection.link import Link
from v6.connection.planner import ReconnectPlanner
from v6.connection.restarts import Restarts
from v6.connection.session import Session
from v6.connection.settings import ConnectionSettings
from v6.connection.state import LIVE_STATES, ConnectionState, StateHolder
from v6.connection.supervisor import Supervisor


class ManagerStatus:
    """Read-only views of a manager's parts: the plan's attributes and ``connection_health()``."""

    settings: ConnectionSettings
    stats: ConnectionStats
    circuit_breaker: CircuitBreaker
    restarts: Restarts
    _planner: ReconnectPlanner
    _states: StateHolder
    _link: Link
    _heartbeat: Heartbeat
    _connector: Connector
    _supervisor: Supervisor
    _clock: Clock
    _last_error: str | None

    trading_stats: Callable[[], dict[str, Any]]  # v6.orders.wiring.TradingHooks

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
        self._heartbeat.wake()

    @property
    def state(self) -> ConnectionState:
        return self._states.current

    @property
    def is_connected(self) -> bool:
        """True only while the API connection is ready (CONNECTED, or DEGRADED: TWS is up but
        cut off from IB)."""
        return self._states.current in LIVE_STATES and self._link.is_connected

    @property
    def last_heartbeat(self) -> datetime | None:
        """Wall-clock time of the last proof of life (any message or probe answer), or None."""
        age = self.last_heartbeat_age
        return None if age is None else datetime.now(UTC) - timedelta(seconds=age)

    @property
    def last_heartbeat_age(self) -> float | None:
        """Seconds (monotonic) since the last proof of life, or None before the first."""
        return self._heartbeat.age()

    @property
    def consecutive_failures(self) -> int:
        """Failed connection attempts since the last success."""
        return self._planner.consecutive_failures

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def health(self) -> Health:
        """A snapshot of the connection's health."""
        connected = self.is_connected
        return read_health(
            self.settings, self._session, state=self._states.current, connected=connected,
            heartbeat_age=self.last_heartbeat_age, last_rtt=self._heartbeat.last_rtt,
            maintenance=self.restarts.evaluate(connected), clock=self._clock,
            breaker=self.circuit_breaker.state, consecutive_failures=self.consecutive_failures,
            reconnects=self.stats.reconnects, last_error=self._last_error,
            client_id=self.client_id, supervised=self._supervisor.running,
        )  # fmt: skip

    async def connection_health(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the connection's health (``health().as_dict()``),
        with the trading state: ``open_orders``, ``fills_delivered``, ``fills_recovered``
        (delivered by reconciliation, not live) and ``last_reconcile_seconds``."""
        return {**self.health().as_dict(), **self.trading_stats()}

    def _order_refusal(self) -> str | None:
        if not self._link.is_connected:
            return "not connected"
        if self._states.current is ConnectionState.CONNECTING:
            return "connecting: reconciliation not finished; retry after wait_connected()"
        return None

    @property
    def _session(self) -> Session | None:
        """The connection (or the attempt under way), dropped at teardown."""
        return self._connector.session

    def __repr__(self) -> str:
        return (
            f"IBConnectionManager({self.settings.host}:{self.settings.port}, "
            f"client_id={self.client_id}, "
            f"state={self._states.current.name}, breaker={self.circuit_breaker.state.name})"
        )
