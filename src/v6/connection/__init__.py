"""The core of v6: one IB connection, kept alive and honest.

Pure (no I/O, injected clock and rng; table-tested): ``circuit_breaker``, ``backoff``, ``retry``
(which errors are retried), ``planner`` (breaker + backoff + client-id rotation -> try / sleep /
give up), ``state`` (enum + transition table, and the holder that enforces it),
``system_messages`` (TWS code -> effect), ``settings`` and ``defaults``, ``validation``,
``health``, ``session``.

The edge: ``link`` (the only module that touches ib_async internals).

asyncio glue: ``connector`` (the connect loop obeying the planner), ``heartbeat`` (watching a
live connection), ``supervisor`` (the one background task), ``listeners`` (users' hooks), and
``manager`` (:class:`IBConnectionManager`, the shell that wires them).
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
