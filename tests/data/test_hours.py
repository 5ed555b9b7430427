"""Liquid hours from contract details (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from v6.data.hours import parse_liquid_hours

NEW = "20261203:0930-20261203:1600;20261204:0930-20261204:1600;20261205:CLOSED"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_current_format_in_its_time_zone() -> None:
    hours = parse_liquid_hours(NEW, "US/Eastern")
    assert hours is not None
    assert hours.is_open(at("2026-12-03T14:30"))  # 09:30 New York (EST, UTC-5)
    assert not hours.is_open(at("2026-12-03T14:29"))
    assert not hours.is_open(at("2026-12-03T21:00"))  # 16:00: closed
    assert not hours.is_open(at("2026-12-05T15:00"))  # a CLOSED day
    assert hours.known_until == at("2026-12-04T21:00")


def test_the_older_format_with_several_sessions_and_one_past_midnight() -> None:
    hours = parse_liquid_hours("20261203:1700-0400,0930-1600", "America/Chicago")
    assert hours is not None
    assert hours.is_open(at("2026-12-04T08:00"))  # 02:00 Chicago, the evening session
    assert hours.is_open(at("2026-12-03T16:00"))  # 10:00 Chicago
    assert not hours.is_open(at("2026-12-03T22:30"))  # 16:30 Chicago


def test_unreadable_hours_or_zone_mean_unknown() -> None:
    assert parse_liquid_hours(NEW, "Mars/Olympus") is None
    assert parse_liquid_hours("20261203:9:30-16:00", "US/Eastern") is None
    assert parse_liquid_hours("", "US/Eastern") is None
    assert parse_liquid_hours("20261203:CLOSED", "US/Eastern") is None
