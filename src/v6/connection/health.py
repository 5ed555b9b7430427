"""The manager's counters, and a frozen snapshot of its health (``as_dict()`` is what
connection_health() returns)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from v6.connection.circuit_breaker import CircuitState
from v6.connection.state import ConnectionState

if TYPE_CHECKING:
    from v6.connection.maintenance import MaintenanceVerdict
    from v6.connection.session import Session
    from v6.connection.settings import ConnectionSettings

#: Seconds in as_dict() are rounded to a microsecond: enough, and stable in JSON.
_DIGITS = 6


@dataclass
class ConnectionStats:
    """Counters since the manager was made (read by metrics and connection_health)."""

    attempts: dict[str, int] = field(default_factory=dict)  # result -> count
    reconnects: int = 0
    probes_sent: int = 0
    probes_failed: int = 0

    def count_attempt(self, result: str) -> None:
        self.attempts[result] = self.attempts.get(result, 0) + 1


@dataclass(frozen=True)
class Health:
    """One reading of the manager. ``healthy``: CONNECTED, API up, a recent proof of life, and
    no maintenance window overrun (window + grace passed without a connection)."""

    connected: bool
    last_heartbeat_age: float | None
    circuit_breaker_state: CircuitState
    healthy: bool
    state: ConnectionState
    last_rtt: float | None
    consecutive_failures: int
    reconnect_count: int
    last_error: str | None
    host: str
    port: int
    client_id: int
    supervised: bool
    degraded_for: float | None
    farms: Mapping[str, str]  # read-only
    maintenance: bool = False  # inside a known restart window (or its grace): failures expected

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, with the keys (and order) connection_health() has always had."""
        return {
            "connected": self.connected,
            "last_heartbeat_age_seconds": _seconds(self.last_heartbeat_age),
            "circuit_breaker_state": self.circuit_breaker_state.value,
            "healthy": self.healthy,
            "state": self.state.value,
            "last_rtt_seconds": _seconds(self.last_rtt),
            "consecutive_failures": self.consecutive_failures,
            "reconnect_count": self.reconnect_count,
            "last_error": self.last_error,
            "host": self.host,
            "port": self.port,
            "client_id": self.client_id,
            "supervised": self.supervised,
            "degraded_for_seconds": _seconds(self.degraded_for),
            "farms": dict(self.farms),
            "maintenance": self.maintenance,
        }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, _DIGITS)


def read_health(
    settings: ConnectionSettings,
    session: Session | None,
    *,
    state: ConnectionState,
    connected: bool,
    heartbeat_age: float | None,
    last_rtt: float | None,
    maintenance: MaintenanceVerdict,
    clock: Callable[[], float],
    breaker: CircuitState,
    consecutive_failures: int,
    reconnects: int,
    last_error: str | None,
    client_id: int,
    supervised: bool,
) -> Health:
    """Assemble one :class:`Health` from the manager's parts (``clock``: for ``degraded_for``)."""
    window = settings.heartbeat_interval + settings.heartbeat_timeout
    fresh = heartbeat_age is not None and heartbeat_age <= window
    since = None if session is None else session.degraded_since
    return Health(
        connected=connected,
        last_heartbeat_age=heartbeat_age,
        circuit_breaker_state=breaker,
        healthy=state is ConnectionState.CONNECTED and connected and fresh and maintenance.healthy,
        state=state,
        last_rtt=last_rtt,
        consecutive_failures=consecutive_failures,
        reconnect_count=reconnects,
        last_error=last_error,
        host=settings.host,
        port=settings.port,
        client_id=client_id,
        supervised=supervised,
        degraded_for=None if since is None else clock() - since,
        farms=MappingProxyType({} if session is None else dict(session.farms)),
        maintenance=maintenance.maintenance,
    )
