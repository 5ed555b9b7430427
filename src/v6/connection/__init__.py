"""The connection layer of v6: one IB connection, kept alive and honest, knowing no participant.

Pure (no I/O, injected clock and rng; table-tested): ``circuit_breaker``, ``backoff``, ``retry``
(which errors are retried), ``planner`` (breaker + backoff + client-id rotation -> try / sleep /
give up), ``state`` (enum + transition table, and the holder that enforces it),
``system_messages`` (TWS code -> effect), ``settings`` and ``defaults``, ``health``, ``session``,
``maintenance``, ``readiness`` and ``ibc`` (policies beside their tiny I/O functions).

The edge: ``link`` (the only module of this package that touches ib_async internals).

asyncio glue: ``connector`` (the connect loop obeying the planner, one plan at a time),
``restarts`` (probing, windows and IBC during waits), ``heartbeat`` (watching a live
connection), ``supervisor`` (the one background task), ``event_loop`` (one loop per
connection), ``listeners`` (users' hooks), and
``keeper`` (:class:`Connection`, which wires them). ``lifecycle`` is the seam its participants
(orders, pacing, live data: packages above this one) implement; the manager (:mod:`v6.manager`)
composes them.

The names below are loaded on first use, so importing a pure module (``v6.connection.state``,
``v6.connection.backoff``, ...) does not import ib_async.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from v6.connection.backoff import ExponentialBackoff
    from v6.connection.circuit_breaker import CircuitBreaker, CircuitState
    from v6.connection.health import ConnectionStats, Health
    from v6.connection.keeper import Connection
    from v6.connection.lifecycle import Participant
    from v6.connection.link import IbAsyncLink, Link
    from v6.connection.retry import Verdict, classify
    from v6.connection.settings import ConnectionSettings
    from v6.connection.state import ConnectionState

_LAZY = {
    "ExponentialBackoff": "backoff",
    "CircuitBreaker": "circuit_breaker",
    "CircuitState": "circuit_breaker",
    "ConnectionStats": "health",
    "Health": "health",
    "Connection": "keeper",
    "Participant": "lifecycle",
    "IbAsyncLink": "link",
    "Link": "link",
    "Verdict": "retry",
    "classify": "retry",
    "ConnectionSettings": "settings",
    "ConnectionState": "state",
}

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "Connection",
    "ConnectionSettings",
    "ConnectionState",
    "ConnectionStats",
    "ExponentialBackoff",
    "Health",
    "IbAsyncLink",
    "Link",
    "Participant",
    "Verdict",
    "classify",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"v6.connection.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'v6.connection' has no attribute {name!r}")
