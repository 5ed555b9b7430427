"""The plan's import path: ``from v6.utils import IBConnectionManager, CircuitBreaker``.

Re-exports only; the manager lives in :mod:`v6.manager`, the rest in :mod:`v6.connection`.
"""

from v6.connection import (
    CircuitBreaker,
    CircuitState,
    ConnectionSettings,
    ConnectionState,
    ConnectionStats,
    ExponentialBackoff,
    Verdict,
    classify,
)
from v6.manager import IBConnectionManager

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
