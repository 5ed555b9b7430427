"""The plan's import path: ``from v6.utils import IBConnectionManager, CircuitBreaker``.

Re-exports only; the code lives in :mod:`v6.connection`.
"""

from v6.connection import (
    CircuitBreaker,
    CircuitState,
    ConnectionSettings,
    ConnectionState,
    ConnectionStats,
    ExponentialBackoff,
    IBConnectionManager,
    Verdict,
    classify,
)

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
