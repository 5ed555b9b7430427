from __future__ import annotations

import math
from enum import Enum

import pytest

from v6.errors import ConfigError
from v6.validation import (
    require_bool,
    require_int,
    require_member,
    require_range,
    require_str,
    show,
)


class Mode(Enum):
    CLOSE = "close"
    SILENT = "silent"


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"low": 0.0, "low_open": True}, 0, r"x must be in \(0, inf\), got 0"),
        ({"low": 1, "high": 5}, 6, r"x must be in \[1, 5\], got 6"),
        ({"low": 0.0}, math.inf, r"x must be in \[0, inf\), got inf"),
        ({}, math.nan, "x must be a number, got nan"),
        ({}, True, "x must be a number, got True"),
        ({}, "3", "x must be a number, got '3'"),
    ],
)
def test_require_range_names_the_field_and_the_range(
    kwargs: dict[str, float], value: float, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        require_range("x", value, **kwargs)  # type: ignore[arg-type]


def test_require_range_accepts_what_is_inside() -> None:
    require_range("x", 0.5, low=0.0, high=1.0)
    require_range("x", math.inf, low=0.0, low_open=True, finite=False)


def test_require_int() -> None:
    require_int("n", 3, low=1, high=3)
    with pytest.raises(ConfigError, match=r"n must be an integer, got 2\.5"):
        require_int("n", 2.5, low=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"n must be in \[1, 3\], got 4"):
        require_int("n", 4, low=1, high=3)


def test_require_member() -> None:
    assert require_member("mode", "silent", Mode) is Mode.SILENT
    with pytest.raises(ConfigError, match="mode must be one of 'close', 'silent', got 'loud'"):
        require_member("mode", "loud", Mode)


def test_integers_too_large_for_a_float_are_config_errors_not_overflow() -> None:
    with pytest.raises(ConfigError, match=r"x must be in \[0, inf\), got an integer of about 401"):
        require_range("x", 10**400, low=0.0)
    with pytest.raises(ConfigError, match=r"x must be in \[0, inf\]"):
        require_range("x", 10**400, low=0.0, finite=False)
    with pytest.raises(ConfigError, match="n must be in"):
        require_int("n", -(10**5000), low=0)


def test_require_bool_and_str() -> None:
    require_bool("b", False)
    require_str("s", "", "anything")
    with pytest.raises(ConfigError, match="b must be True or False, got 1"):
        require_bool("b", 1)
    with pytest.raises(ConfigError, match=r"s must be a string \(an id\), got b'x'"):
        require_str("s", b"x", "an id")


def test_show_keeps_messages_short() -> None:
    assert show("x" * 500).endswith("...")
    assert len(show("x" * 500)) == 80
    assert show(2**70) == "an integer of about 22 digits"
    assert show(7) == "7"
