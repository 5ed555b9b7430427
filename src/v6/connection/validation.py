"""Construction-time checks that raise ConfigError naming the field and the allowed range.

The one validation helper of v6 (the connection's settings, breaker and backoff, and the fake
gateway's options): every message reads ``<field> must be ..., got <value>``.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TypeVar

from v6.errors import ConfigError

E = TypeVar("E", bound=Enum)


def require_range(
    field: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    finite: bool = True,
) -> None:
    """Raise ConfigError unless ``low <= value <= high`` (``low < value`` with ``low_open``).

    Infinity is refused unless ``finite=False`` (then ``inf`` passes a ``high=None`` check)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{field} must be a number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high or (finite and math.isinf(value)):
        span = _describe(low, high, low_open, finite)
        raise ConfigError(f"{field} must be in {span}, got {value!r}")


def require_int(field: str, value: int, *, low: int, high: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field} must be an integer, got {value!r}")
    require_range(field, value, low=low, high=high)


def require_member(field: str, value: object, kind: type[E]) -> E:
    """``kind(value)``, or ConfigError listing the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise ConfigError(f"{field} must be one of {allowed}, got {value!r}") from None


def _describe(low: float | None, high: float | None, low_open: bool, finite: bool) -> str:
    left = "(" if low_open else "["
    lo = "-inf" if low is None else f"{low:g}"
    hi = ("inf)" if finite else "inf]") if high is None else f"{high:g}]"
    return f"{left}{lo}, {hi}"
