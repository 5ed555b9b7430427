"""The IB connection layer: ``from v6.utils import IBConnectionManager, CircuitBreaker``."""

from v6.utils.backoff import ExponentialBackoff
from v6.utils.circuit_breaker import CircuitBreaker, CircuitState
from v6.utils.ib_connection import ConnectionStats, IBConnectionManager
from v6.utils.retry import Verdict, classify
from v6.utils.settings import ConnectionSettings
from v6.utils.state import ConnectionState

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "ConnectionSettings",
    "ConnectionState",
    "ConnectionStats",
    "ExponentialBackoff",
    "IBConnectionManager",
    "Verdict",
    "classify",
]
