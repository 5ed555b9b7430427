"""Construction-time checks that raise ConfigError naming the field and the allowed range.

The one validation helper of v6, below every package that checks its arguments (the
connection's settings, breaker and backoff, order ids, and the fake gateway's options): every
message reads ``<field> must be ..., got <value>``.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TypeVar

from v6.errors import ConfigError

E = TypeVar("E", bound=Enum)

#: Error messages show values up to this long (longer ones are cut).
_SHOW_CHARS = 80
_SHOW_BITS = 64


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

    Infinity is refused unless ``finite=False`` (then ``inf`` passes a ``high=None`` check); so
    is an integer too large for a float (it would overflow wherever it is used)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or _is_nan(value):
        raise ConfigError(f"{field} must be a number, got {show(value)}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high or (finite and _is_infinite(value)) or _overflows(value):
        span = _describe(low, high, low_open, finite)
        raise ConfigError(f"{field} must be in {span}, got {show(value)}")


def require_int(field: str, value: int, *, low: int, high: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field} must be an integer, got {show(value)}")
    require_range(field, value, low=low, high=high)


def require_bool(field: str, value: object) -> None:
    """Raise ConfigError unless ``value`` is True or False (``"no"`` is truthy: refused)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{field} must be True or False, got {show(value)}")


def require_str(field: str, value: object, what: str) -> None:
    """Raise ConfigError unless ``value`` is a str (``what`` says what it should hold)."""
    if not isinstance(value, str):
        raise ConfigError(f"{field} must be a string ({what}), got {show(value)}")


def show(value: object) -> str:
    """``repr(value)`` for an error message, kept short (an int of 5,000 digits has no repr)."""
    if isinstance(value, int) and value.bit_length() > _SHOW_BITS:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 3] + "..."


def require_member(field: str, value: object, kind: type[E]) -> E:
    """``kind(value)``, or ConfigError listing the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise ConfigError(f"{field} must be one of {allowed}, got {show(value)}") from None


def _overflows(value: float) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _is_nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_infinite(value: float) -> bool:
    return isinstance(value, float) and math.isinf(value)


def _describe(low: float | None, high: float | None, low_open: bool, finite: bool) -> str:
    left = "(" if low_open else "["
    lo = "-inf" if low is None else f"{low:g}"
    hi = ("inf)" if finite else "inf]") if high is None else f"{high:g}]"
    return f"{left}{lo}, {hi}"
