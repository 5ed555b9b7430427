"""The core of v6: one IB connection, kept alive and honest.

Pure parts: :mod:`~v6.connection.circuit_breaker`, :mod:`~v6.connection.backoff`,
:mod:`~v6.connection.retry` (classify), :mod:`~v6.connection.planner`,
:mod:`~v6.connection.state`, :mod:`~v6.connection.system_messages`,
:mod:`~v6.connection.settings`; the edge: :mod:`~v6.connection.link` (ib_async); the shell:
:mod:`~v6.connection.manager`.
"""

from v6.connection.backoff import ExponentialBackoff
from v6.connection.circuit_breaker import CircuitBreaker, CircuitState
from v6.connection.health import ConnectionStats, Health
from v6.connection.link import IbAsyncLink, Link
from v6.connection.manager import IBConnectionManager
from v6.connection.retry import Verdict, classify
from v6.connection.settings import ConnectionSettings
from v6.connection.state import ConnectionState

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "ConnectionSettings",
    "ConnectionState",
    "ConnectionStats",
    "ExponentialBackoff",
    "Health",
    "IBConnectionManager",
    "IbAsyncLink",
    "Link",
    "Verdict",
    "classify",
]
