"""The core of v6: one IB connection, kept alive and honest.

Pure (no I/O, injected clock and rng; table-tested): ``circuit_breaker``, ``backoff``, ``retry``
(which errors are retried), ``planner`` (breaker + backoff + client-id rotation -> try / sleep /
give up), ``state`` (enum + transition table, and the holder that enforces it),
``system_messages`` (TWS code -> effect), ``settings`` and ``defaults``,
``health``, ``session``.

The edge: ``link`` (the only module that touches ib_async internals).

asyncio glue: ``connector`` (the connect loop obeying the planner), ``heartbeat`` (watching a
live connection), ``supervisor`` (the one background task), ``listeners`` (users' hooks), and
``manager`` (:class:`IBConnectionManager`, the shell that wires them).

The names below are loaded on first use, so importing a pure module (``v6.connection.state``,
``v6.connection.backoff``, ...) does not import ib_async: the fake gateway uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from v6.connection.backoff import ExponentialBackoff
    from v6.connection.circuit_breaker import CircuitBreaker, CircuitState
    from v6.connection.health import ConnectionStats, Health
    from v6.connection.link import IbAsyncLink, Link
    from v6.connection.manager import IBConnectionManager
    from v6.connection.retry import Verdict, classify
    from v6.connection.settings import ConnectionSettings
    from v6.connection.state import ConnectionState

_LAZY = {
    "ExponentialBackoff": "backoff",
    "CircuitBreaker": "circuit_breaker",
    "CircuitState": "circuit_breaker",
    "ConnectionStats": "health",
    "Health": "health",
    "IbAsyncLink": "link",
    "Link": "link",
    "IBConnectionManager": "manager",
    "Verdict": "retry",
    "classify": "retry",
    "ConnectionSettings": "settings",
    "ConnectionState": "state",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"v6.connection.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'v6.connection' has no attribute {name!r}")
