"""Construction-time checks that raise ConfigError naming the field and the allowed range."""

from __future__ import annotations

import math

from v6.errors import ConfigError


def require_range(
    field: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    """Raise ConfigError unless ``low <= value <= high`` (``low < value`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{field} must be a number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high or math.isinf(value):
        raise ConfigError(f"{field} must be in {_describe(low, high, low_open)}, got {value!r}")


def require_int(field: str, value: int, *, low: int, high: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field} must be an integer, got {value!r}")
    require_range(field, value, low=low, high=high)


def _describe(low: float | None, high: float | None, low_open: bool) -> str:
    left = "(" if low_open else "["
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf)" if high is None else f"{high:g}]"
    return f"{left}{lo}, {hi}"
