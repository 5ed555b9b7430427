"""Known gateway restart windows and what a failure inside or after one means (pure).

A window is written ``"23:45-00:05 America/New_York daily"`` (``daily`` may be left out) or
``"Sat 23:00-Sun 03:00 America/New_York"`` (weekly; ``weekly`` may follow). Several windows are
separated by ``;`` (a comma is not a separator: it keeps one rule for the argument and for
``IB_MAINTENANCE_WINDOWS``, where a comma-list would read like a list of zones). Times are wall
times in the named IANA zone (:mod:`zoneinfo`, with ``tzdata`` where the OS has no zone files), so a
window follows daylight saving time: ``23:45`` New York is 03:45 UTC in summer and 04:45 in winter.
A wall time that does not exist on a spring-forward day is read with the offset before the change
(zoneinfo's ``fold=0``). An end at or before the start crosses midnight (daily) or the week end
(weekly).

:class:`MaintenanceEscalation` turns "is the gateway connected now" observations into a verdict:
inside a window (failures expected, INFO), within ``grace`` after it (still expected: a restart at
the window's last minute needs time to log in), past window + grace without a connection since the
window ended (escalate once per window: ERROR and a counter), or normal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loguru import logger

from v6.connection.defaults import DEFAULT_MAINTENANCE_GRACE
from v6.errors import ConfigError
from v6.validation import require_range

ENV_MAINTENANCE_WINDOWS: Final = "IB_MAINTENANCE_WINDOWS"
FIELD_MAINTENANCE_WINDOWS: Final = "maintenance_windows"
WINDOW_SEPARATOR: Final = ";"

_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK: Final = timedelta(days=7)
_TIME = r"(\d{1,2}):(\d{2})"
_DAY = r"([A-Za-z]{3,9})"
_DAILY_RE: Final = re.compile(rf"{_TIME}\s*-\s*{_TIME}\s+(\S+)(?:\s+(daily))?", re.IGNORECASE)
_WEEKLY_RE: Final = re.compile(
    rf"{_DAY}\s+{_TIME}\s*-\s*{_DAY}\s+{_TIME}\s+(\S+)(?:\s+(weekly))?", re.IGNORECASE
)
ALLOWED_FORMS: Final = (
    '"HH:MM-HH:MM <Area/City> [daily]" or "Ddd HH:MM-Ddd HH:MM <Area/City> [weekly]" '
    f"(Ddd = Mon..Sun), several separated by {WINDOW_SEPARATOR!r}"
)


@dataclass(frozen=True, slots=True)
class Window:
    """One restart window. ``start_day``/``end_day`` are 0 (Monday) .. 6, or ``None`` (daily)."""

    start: time
    end: time
    zone: ZoneInfo
    start_day: int | None = None
    end_day: int | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if (self.start_day is None) != (self.end_day is None):
            raise ConfigError(f"{FIELD_MAINTENANCE_WINDOWS}: give both days or neither")
        if self.start == self.end and self.start_day == self.end_day:
            raise ConfigError(
                f"{FIELD_MAINTENANCE_WINDOWS}: {self.text or str(self.start)!r} has no duration"
            )

    @property
    def daily(self) -> bool:
        return self.start_day is None

    def occurrence_starting_on(self, day: date) -> Occurrence | None:
        """The occurrence that starts on local date ``day`` (None if a weekly one does not)."""
        if self.start_day is not None and day.weekday() != self.start_day:
            return None
        start = datetime.combine(day, self.start, tzinfo=self.zone)
        end = datetime.combine(day + self._span(), self.end, tzinfo=self.zone)
        return Occurrence(self, start.astimezone(UTC), end.astimezone(UTC))

    def _span(self) -> timedelta:
        """Calendar days from the start date to the end date."""
        if self.start_day is None or self.end_day is None:
            return timedelta(days=1 if self.end <= self.start else 0)
        days = (self.end_day - self.start_day) % 7
        if days == 0 and self.end <= self.start:
            days = 7
        return timedelta(days=days)

    def __str__(self) -> str:
        return self.text or f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone.key}"


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One concrete instance of a window, in UTC: ``start <= t < end``."""

    window: Window
    start: datetime
    end: datetime


@dataclass(frozen=True)
class MaintenanceSchedule:
    """A set of :class:`Window` s; ``MaintenanceSchedule.parse(value)`` builds one."""

    windows: tuple[Window, ...] = ()

    @classmethod
    def parse(
        cls,
        value: MaintenanceWindows,
        field: str = FIELD_MAINTENANCE_WINDOWS,
    ) -> MaintenanceSchedule:
        """From text (``;``-separated), a :class:`Window`, or a list of either; ``None``: none."""
        if value is None:
            return cls()
        if isinstance(value, MaintenanceSchedule):
            return value
        items: Iterable[str | Window] = [value] if isinstance(value, str | Window) else value
        windows: list[Window] = []
        for item in items:
            if isinstance(item, Window):
                windows.append(item)
            elif isinstance(item, str):
                parts = [p for p in item.split(WINDOW_SEPARATOR) if p.strip()]
                windows += [parse_window(part, field) for part in parts]
            else:
                raise ConfigError(f"{field}: {item!r} is not text; allowed: {ALLOWED_FORMS}")
        return cls(tuple(windows))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MaintenanceSchedule:
        """From ``IB_MAINTENANCE_WINDOWS`` (errors name the variable); unset or empty: none."""
        return cls.parse(environ.get(ENV_MAINTENANCE_WINDOWS), field=ENV_MAINTENANCE_WINDOWS)

    def __bool__(self) -> bool:
        return bool(self.windows)

    def current(self, now_utc: datetime) -> Occurrence | None:
        """The occurrence containing ``now_utc`` (the one ending last if windows overlap)."""
        found = [o for o in self._near(now_utc) if o.start <= now_utc < o.end]
        return max(found, key=lambda o: o.end, default=None)

    def active(self, now_utc: datetime) -> Window | None:
        occurrence = self.current(now_utc)
        return occurrence.window if occurrence else None

    def ends_at(self, now_utc: datetime) -> datetime | None:
        """When the active window ends (UTC), or None outside every window."""
        occurrence = self.current(now_utc)
        return occurrence.end if occurrence else None

    def previous(self, now_utc: datetime) -> Occurrence | None:
        """The occurrence that ended most recently at or before ``now_utc`` (within a week)."""
        ended = [o for o in self._near(now_utc) if o.end <= now_utc]
        return max(ended, key=lambda o: o.end, default=None)

    def _near(self, now_utc: datetime) -> list[Occurrence]:
        _require_aware(now_utc)
        found: list[Occurrence] = []
        for window in self.windows:
            today = now_utc.astimezone(window.zone).date()
            for back in range(-1, 9):  # a weekly window may have started 8 local days ago
                occurrence = window.occurrence_starting_on(today - timedelta(days=back))
                if occurrence is not None:
                    found.append(occurrence)
        return found


#: What ``maintenance_windows=`` accepts.
MaintenanceWindows = MaintenanceSchedule | str | Window | Iterable[str | Window] | None


def parse_window(text: str, field: str = FIELD_MAINTENANCE_WINDOWS) -> Window:
    """One window from text; ConfigError names ``field``, quotes ``text``, lists the forms."""
    stripped = text.strip()
    weekly = _WEEKLY_RE.fullmatch(stripped)
    daily = None if weekly else _DAILY_RE.fullmatch(stripped)
    if weekly:
        d1, h1, m1, d2, h2, m2, zone_key, _ = weekly.groups()
        days: tuple[int | None, int | None] = (_day(d1, field, text), _day(d2, field, text))
    elif daily:
        h1, m1, h2, m2, zone_key, _ = daily.groups()
        days = (None, None)
    else:
        raise ConfigError(f"{field}: {stripped!r} is not a window; allowed: {ALLOWED_FORMS}")
    start, end = _clock_time(h1, m1, field, text), _clock_time(h2, m2, field, text)
    return Window(start, end, _zone(zone_key, field, text), days[0], days[1], stripped)


def _day(name: str, field: str, text: str) -> int:
    key = name[:3].lower()
    full = {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday",
            "fri": "friday", "sat": "saturday", "sun": "sunday"}  # fmt: skip
    if key not in _DAYS or not full[key].startswith(name.lower()):
        raise ConfigError(f"{field}: {name!r} in {text.strip()!r} is not a day (Mon..Sun)")
    return _DAYS.index(key)


def _clock_time(hours: str, minutes: str, field: str, text: str) -> time:
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ConfigError(
            f"{field}: {hours}:{minutes} in {text.strip()!r} is not a time (00:00..23:59)"
        )
    return time(h, m)


def _zone(key: str, field: str, text: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{field}: unknown time zone {key!r} in {text.strip()!r} "
            "(an IANA name such as 'America/New_York')"
        ) from None


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")


# --------------------------------------------------------------------------------------------------
# Escalation


class MaintenancePhase(Enum):
    NORMAL = "normal"  # no window involved: today's handling
    INSIDE = "inside"  # inside a window: failures expected (INFO, breaker not counting)
    GRACE = "grace"  # the window ended less than ``grace`` ago: still expected
    OVERRUN = "overrun"  # window + grace passed without a connection since the window ended


@dataclass(frozen=True, slots=True)
class MaintenanceVerdict:
    phase: MaintenancePhase
    occurrence: Occurrence | None = None
    escalate: bool = False
    """True exactly once per overrun window: log ERROR, count it, report ``healthy: false``."""

    @property
    def expected(self) -> bool:
        """Failures are expected now: log them at INFO and keep them out of the breaker."""
        return self.phase in (MaintenancePhase.INSIDE, MaintenancePhase.GRACE)

    @property
    def maintenance(self) -> bool:
        """What health reports as ``maintenance``."""
        return self.expected

    @property
    def healthy(self) -> bool:
        return self.phase is not MaintenancePhase.OVERRUN


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MaintenanceEscalation:
    """Feed it ``evaluate(connected)`` on every state change and probe; read the verdict.

    Only windows that end after this object was created can escalate (a process started at 03:00
    facing a dead gateway has an ordinary outage, not a midnight window that overran).
    """

    schedule: MaintenanceSchedule
    grace: float = DEFAULT_MAINTENANCE_GRACE
    wall_clock: Callable[[], datetime] = utc_now
    escalations: int = 0
    _created: datetime = field(init=False)
    _last_connected: datetime | None = field(default=None, init=False)
    _was_connected: bool = field(default=False, init=False)
    _escalated: set[datetime] = field(default_factory=set, init=False)
    _announced: set[datetime] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        require_maintenance_grace(self.grace)
        self._created = self.wall_clock()
        _require_aware(self._created)

    def evaluate(self, connected: bool) -> MaintenanceVerdict:
        now = self.wall_clock()
        if connected or self._was_connected:  # a connection lasted at least until now
            self._last_connected = now
        self._was_connected = connected
        inside = self.schedule.current(now)
        if inside is not None:
            self._announce(inside)
            return MaintenanceVerdict(MaintenancePhase.INSIDE, inside)
        previous = self.schedule.previous(now)
        if connected or previous is None or previous.end <= self._created:
            return MaintenanceVerdict(MaintenancePhase.NORMAL)
        if self._last_connected is not None and self._last_connected >= previous.end:
            return MaintenanceVerdict(MaintenancePhase.NORMAL)  # back after it: ordinary outage
        if now < previous.end + timedelta(seconds=self.grace):
            return MaintenanceVerdict(MaintenancePhase.GRACE, previous)
        return MaintenanceVerdict(MaintenancePhase.OVERRUN, previous, self._escalate(previous))

    def _announce(self, occurrence: Occurrence) -> None:
        if occurrence.start not in self._announced:
            self._announced.add(occurrence.start)
            logger.info(
                "maintenance window {} active until {:%Y-%m-%d %H:%M} UTC: failures are expected",
                occurrence.window,
                occurrence.end,
            )

    def _escalate(self, occurrence: Occurrence) -> bool:
        if occurrence.start in self._escalated:
            return False
        self._escalated.add(occurrence.start)
        self.escalations += 1
        logger.error(
            "maintenance window {} ended {:%Y-%m-%d %H:%M} UTC and the gateway is still not "
            "connected after {:g} s of grace",
            occurrence.window,
            occurrence.end,
            self.grace,
        )
        return True


def require_maintenance_grace(value: float) -> None:
    """``maintenance_grace`` in [0, inf)."""
    require_range("maintenance_grace", value, low=0.0)
