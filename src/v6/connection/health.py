"""The manager's counters, and a frozen snapshot of its health (``as_dict()`` is what
connection_health() returns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from v6.connection.circuit_breaker import CircuitState
from v6.connection.state import ConnectionState

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
