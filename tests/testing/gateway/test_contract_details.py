"""Market hours as contract details report them, and the bar being built (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from v6.errors import ConfigError
from v6.testing import ALWAYS_OPEN, US_EQUITY_HOURS, MarketHours
from v6.testing.gateway.market import bar_at, bar_so_far


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_us_equity_hours_over_a_week_in_new_york() -> None:
    now = epoch("2026-11-24T15:00:00")  # Tuesday, 10:00 in New York
    trading = US_EQUITY_HOURS.trading_hours(now).split(";")
    assert trading[0] == "20261123:0400-20261123:2000"  # from the day before
    assert trading[4:6] == ["20261127:0400-20261127:2000", "20261128:CLOSED"]
    assert len(trading) == 8
    assert US_EQUITY_HOURS.liquid_hours(now).split(";")[1] == "20261124:0930-20261124:1600"


@pytest.mark.parametrize(
    ("when", "liquid"),
    [("2026-11-24T15:00:00", True), ("2026-11-24T14:29:59", False),
     ("2026-11-24T14:30:00", True), ("2026-11-24T21:00:00", False),
     ("2026-11-28T15:00:00", False)],  # 10:00, 09:29:59, 09:30, 16:00 in New York; a Saturday
)  # fmt: skip
def test_is_liquid(when: str, liquid: bool) -> None:
    assert US_EQUITY_HOURS.is_liquid(epoch(when)) is liquid


def test_overnight_and_round_the_clock_sessions() -> None:
    fx = MarketHours("US/Eastern", ("1715", "1700"), ("1715", "1700"), frozenset(range(7)))
    assert fx.trading_hours(epoch("2026-11-24T15:00:00")).split(";")[1] == (
        "20261124:1715-20261125:1700"
    )
    assert fx.is_liquid(epoch("2026-11-24T15:00:00"))  # 10:00: inside Monday's session
    assert not fx.is_liquid(epoch("2026-11-24T22:05:00"))  # 17:05: the daily break
    assert ALWAYS_OPEN.liquid_hours(epoch("2026-11-28T00:00:00")).split(";")[1] == (
        "20261128:0000-20261129:0000"
    )
    assert ALWAYS_OPEN.is_liquid(epoch("2026-11-28T03:00:00"))
    closed = MarketHours(liquid=None)
    assert not closed.is_liquid(epoch("2026-11-24T15:00:00"))
    assert set(closed.liquid_hours(0).split(";")) == {
        f"{d}:CLOSED" for d in ("19691230", "19691231", "19700101", "19700102", "19700103",
                                "19700104", "19700105", "19700106")
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"time_zone_id": "Mars/Olympus"}, "unknown time zone"),
     ({"trading": ("0930", "2400")}, "two HHMM times"),
     ({"liquid": ("930", "1600")}, "two HHMM times"),
     ({"weekdays": frozenset({7})}, "weekdays must be in 0..6")],
)  # fmt: skip
def test_market_hours_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MarketHours(**kwargs)  # type: ignore[arg-type]


def test_a_bar_being_built_grows_toward_the_finished_bar() -> None:
    start, step, level = 1_795_518_495, 5, 150.0
    final = bar_at(start, step, level)
    steps = [bar_so_far(start, step, level, start + t) for t in (0.0, 1.0, 2.5, 4.9, 5.0)]
    assert all(b.date == final.date and b.open == final.open for b in steps)
    assert [b.volume for b in steps] == sorted(b.volume for b in steps)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in steps)
    assert steps[-1] == final
