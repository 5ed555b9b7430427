"""v6: a reliable Interactive Brokers connection layer.

``from v6 import IBConnectionManager, CircuitBreaker, CircuitState, ConnectionState, errors``

The names are loaded on first use, so ``import v6.errors`` or ``import v6.protocol`` does not
import ib_async.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from v6 import errors
    from v6.connection import CircuitBreaker, CircuitState, ConnectionState
    from v6.manager import IBConnectionManager

__version__ = "0.1.0"

_LAZY = {
    "CircuitBreaker": "v6.connection",
    "CircuitState": "v6.connection",
    "ConnectionState": "v6.connection",
    "IBConnectionManager": "v6.manager",
}

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "ConnectionState",
    "IBConnectionManager",
    "__version__",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("v6.errors")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'v6' has no attribute {name!r}")
