from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import WallClock
from v6.connection.defaults import DEFAULT_MAINTENANCE_GRACE
from v6.connection.maintenance import (
    ENV_MAINTENANCE_WINDOWS,
    MaintenanceEscalation,
    MaintenancePhase,
    MaintenanceSchedule,
    parse_window,
)
from v6.errors import ConfigError

NIGHTLY = "23:45-00:05 America/New_York daily"
WEEKEND = "Sat 23:00-Sun 03:00 America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_daily_window_crosses_midnight_in_summer_time() -> None:
    schedule = MaintenanceSchedule.parse(NIGHTLY)
    # 2024-07-01 is EDT (UTC-4): 23:45 local = 03:45 UTC on the 2nd, 00:05 local = 04:05 UTC.
    assert schedule.active(utc(2024, 7, 2, 3, 44, 59)) is None
    assert schedule.active(utc(2024, 7, 2, 3, 45)) is schedule.windows[0]
    assert schedule.active(utc(2024, 7, 2, 4, 0)) is not None
    assert schedule.ends_at(utc(2024, 7, 2, 4, 0)) == utc(2024, 7, 2, 4, 5)
    assert schedule.active(utc(2024, 7, 2, 4, 5)) is None
    assert schedule.ends_at(utc(2024, 7, 2, 4, 5)) is None


def test_daily_window_in_winter_time_is_an_hour_later_in_utc() -> None:
    schedule = MaintenanceSchedule.parse(NIGHTLY)
    assert schedule.active(utc(2024, 1, 10, 3, 50)) is None  # 22:50 EST
    assert schedule.ends_at(utc(2024, 1, 10, 4, 50)) == utc(2024, 1, 10, 5, 5)


def test_dst_change_day_in_new_york() -> None:
    # 2024-03-10 02:00 EST -> 03:00 EDT: 01:00-04:00 local lasts two real hours that night.
    schedule = MaintenanceSchedule.parse("01:00-04:00 America/New_York")
    occurrence = schedule.current(utc(2024, 3, 10, 6, 30))
    assert occurrence is not None
    assert occurrence.start == utc(2024, 3, 10, 6, 0)  # 01:00 EST
    assert occurrence.end == utc(2024, 3, 10, 8, 0)  # 04:00 EDT
    assert occurrence.end - occurrence.start == timedelta(hours=2)
    assert schedule.active(utc(2024, 3, 10, 8, 0)) is None
    # the day before it was three hours, 06:00-09:00 UTC
    assert schedule.ends_at(utc(2024, 3, 9, 8, 30)) == utc(2024, 3, 9, 9, 0)
    # 2024-11-03 01:59 EDT -> 01:00 EST: the same window lasts four real hours
    autumn = schedule.current(utc(2024, 11, 3, 6, 0))
    assert autumn is not None
    assert autumn.end - autumn.start == timedelta(hours=4)


def test_weekly_window_crosses_the_week_end() -> None:
    schedule = MaintenanceSchedule.parse(WEEKEND)
    # Sat 2024-07-06 23:00 EDT = Sun 03:00 UTC ; Sun 03:00 EDT = Sun 07:00 UTC
    assert schedule.active(utc(2024, 7, 7, 2, 59)) is None
    assert schedule.ends_at(utc(2024, 7, 7, 3, 0)) == utc(2024, 7, 7, 7, 0)
    assert schedule.active(utc(2024, 7, 7, 7, 0)) is None
    assert schedule.active(utc(2024, 7, 8, 3, 30)) is None  # Monday night: not weekly


def test_weekly_window_spanning_the_whole_week_end_round() -> None:
    schedule = MaintenanceSchedule.parse("Sun 22:00-Sun 21:00 UTC weekly")
    # starts Sunday 22:00, ends the next Sunday 21:00: six days and 23 hours
    occurrence = schedule.current(utc(2024, 7, 10, 12, 0))
    assert occurrence is not None
    assert occurrence.end - occurrence.start == timedelta(days=6, hours=23)
    assert schedule.active(utc(2024, 7, 14, 21, 30)) is None


def test_several_windows_separated_by_semicolons_or_a_list() -> None:
    text = f"{NIGHTLY}; {WEEKEND}"
    from_text = MaintenanceSchedule.parse(text)
    from_list = MaintenanceSchedule.parse([NIGHTLY, parse_window(WEEKEND)])
    assert [str(w) for w in from_text.windows] == [NIGHTLY, WEEKEND]
    assert from_text.windows == from_list.windows
    assert not MaintenanceSchedule.parse(None)
    assert not MaintenanceSchedule.parse("  ")


def test_day_names_are_case_insensitive_and_may_be_full() -> None:
    a = parse_window("saturday 23:00-SUNDAY 03:00 America/New_York weekly")
    b = parse_window(WEEKEND)
    assert (a.start_day, a.end_day, a.start, a.end) == (b.start_day, b.end_day, b.start, b.end)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("23:45 to 00:05 America/New_York", "'23:45 to 00:05 America/New_York'"),
        ("23:45-00:05", "'23:45-00:05'"),
        ("25:00-01:00 America/New_York", "25:00"),
        ("23:61-01:00 America/New_York", "23:61"),
        ("Sat 23:00-Sunday 03:00 America/New_York daily", "daily"),
        ("Sam 23:00-Sun 03:00 America/New_York", "'Sam'"),
        ("10:00-10:00 UTC", "'10:00-10:00 UTC'"),
    ],
)
def test_bad_text_names_the_field_and_quotes_the_part(text: str, quoted: str) -> None:
    with pytest.raises(ConfigError, match="maintenance_windows") as info:
        MaintenanceSchedule.parse(f"{NIGHTLY}; {text}")
    assert quoted in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_text_says_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"HH:MM-HH:MM <Area/City> \[daily\]"):
        MaintenanceSchedule.parse("nightly")


def test_unknown_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'America/Nowhere'"):
        MaintenanceSchedule.parse("23:45-00:05 America/Nowhere")
    with pytest.raises(ConfigError, match=r"unknown time zone '\.\./etc'"):
        MaintenanceSchedule.parse("23:45-00:05 ../etc")


def test_non_text_item_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="maintenance_windows: 5 is not text"):
        MaintenanceSchedule.parse([NIGHTLY, 5])  # type: ignore[list-item]


def test_from_env_names_the_variable() -> None:
    schedule = MaintenanceSchedule.from_env({ENV_MAINTENANCE_WINDOWS: f"{NIGHTLY};{WEEKEND}"})
    assert len(schedule.windows) == 2
    assert not MaintenanceSchedule.from_env({})
    with pytest.raises(ConfigError, match=ENV_MAINTENANCE_WINDOWS):
        MaintenanceSchedule.from_env({ENV_MAINTENANCE_WINDOWS: "23:45-00:05 Mars/Olympus"})


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MaintenanceSchedule.parse(NIGHTLY).active(datetime(2024, 7, 2, 4, 0))


# ---- escalation

WINDOW_START = utc(2024, 7, 2, 3, 45)
WINDOW_END = utc(2024, 7, 2, 4, 5)


def escalation(start: datetime, grace: float = DEFAULT_MAINTENANCE_GRACE) -> tuple[
    MaintenanceEscalation, WallClock
]:
    clock = WallClock(start)
    return MaintenanceEscalation(MaintenanceSchedule.parse(NIGHTLY), grace, clock), clock


def test_restart_inside_the_window_is_expected_and_never_escalates() -> None:
    policy, clock = escalation(WINDOW_START - timedelta(minutes=5))
    assert policy.evaluate(connected=True).phase is MaintenancePhase.NORMAL
    clock.now = WINDOW_START + timedelta(minutes=1)
    verdict = policy.evaluate(connected=False)
    assert verdict.phase is MaintenancePhase.INSIDE
    assert verdict.expected
    assert verdict.maintenance
    assert verdict.healthy
    clock.now = WINDOW_START + timedelta(minutes=3)
    assert policy.evaluate(connected=True).phase is MaintenancePhase.INSIDE
    clock.now = WINDOW_END + timedelta(hours=1)
    assert policy.evaluate(connected=True).phase is MaintenancePhase.NORMAL
    assert policy.escalations == 0


def test_overrun_escalates_once_per_window_after_the_grace() -> None:
    policy, clock = escalation(WINDOW_START - timedelta(minutes=1), grace=120)
    policy.evaluate(connected=True)
    clock.now = WINDOW_START + timedelta(minutes=2)
    assert policy.evaluate(connected=False).phase is MaintenancePhase.INSIDE
    clock.now = WINDOW_END + timedelta(seconds=119)
    grace = policy.evaluate(connected=False)
    assert grace.phase is MaintenancePhase.GRACE
    assert grace.expected
    assert not grace.escalate
    clock.advance(1)
    first = policy.evaluate(connected=False)
    assert first.phase is MaintenancePhase.OVERRUN
    assert first.escalate
    assert not first.healthy
    assert not first.expected
    assert first.occurrence is not None
    assert first.occurrence.end == WINDOW_END
    clock.advance(600)
    again = policy.evaluate(connected=False)
    assert again.phase is MaintenancePhase.OVERRUN
    assert not again.escalate
    assert policy.escalations == 1
    clock.advance(60)
    assert policy.evaluate(connected=True).phase is MaintenancePhase.NORMAL
    assert policy.evaluate(connected=True).healthy
    # the next night's overrun is a new window: one more escalation
    clock.now = WINDOW_START + timedelta(days=1, minutes=1)
    assert policy.evaluate(connected=False).phase is MaintenancePhase.INSIDE
    clock.now = WINDOW_END + timedelta(days=1, seconds=121)
    assert policy.evaluate(connected=False).escalate
    assert policy.escalations == 2


def test_connection_held_past_the_window_then_lost_is_an_ordinary_outage() -> None:
    policy, clock = escalation(WINDOW_START - timedelta(minutes=1))
    policy.evaluate(connected=True)  # the last report before the drop, long before the end
    clock.now = WINDOW_END + timedelta(hours=3)
    verdict = policy.evaluate(connected=False)
    assert verdict.phase is MaintenancePhase.NORMAL
    assert not verdict.escalate


def test_reconnected_in_window_then_lost_again_before_its_end_escalates() -> None:
    policy, clock = escalation(WINDOW_START)
    clock.now = WINDOW_START + timedelta(minutes=5)
    policy.evaluate(connected=True)
    clock.now = WINDOW_START + timedelta(minutes=10)
    policy.evaluate(connected=False)
    clock.now = WINDOW_END + timedelta(seconds=DEFAULT_MAINTENANCE_GRACE)
    assert policy.evaluate(connected=False).escalate


def test_windows_that_ended_before_start_up_never_escalate() -> None:
    policy, _clock = escalation(WINDOW_END + timedelta(hours=2))
    assert policy.evaluate(connected=False).phase is MaintenancePhase.NORMAL
    assert policy.escalations == 0


def test_zero_grace_escalates_at_the_window_end_and_negative_grace_is_refused() -> None:
    policy, clock = escalation(WINDOW_START, grace=0)
    clock.now = WINDOW_END
    assert policy.evaluate(connected=False).escalate
    with pytest.raises(ConfigError, match=r"maintenance_grace must be in \[0, inf\)"):
        escalation(WINDOW_START, grace=-1)
