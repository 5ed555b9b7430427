"""A contract's liquid hours, from its contract details (pure): is its market open now?

IB gives ``liquidHours`` (and ``tradingHours``) with a ``timeZoneId``, in two formats:
``20261203:0930-20261203:1600;20261204:CLOSED`` (TWS 970 and later; a session may end the next
day) and ``20261203:0930-1600,1700-1800;20261204:CLOSED`` (earlier). A feed is judged stale only
inside these hours, so a closed market is not an alarm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_STAMP: Final = re.compile(r"^(\d{8}):(\d{4})$")
_TIME: Final = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class LiquidHours:
    """Open intervals in UTC; ``None`` hours (unknown) means always judged."""

    sessions: tuple[tuple[datetime, datetime], ...]

    def is_open(self, now: datetime) -> bool:
        return any(start <= now < end for start, end in self.sessions)

    @property
    def known_until(self) -> datetime | None:
        """The end of the last session listed (after it the hours say nothing)."""
        return max((end for _, end in self.sessions), default=None)


def parse_liquid_hours(text: str, time_zone: str) -> LiquidHours | None:
    """The sessions in ``text`` (IB's format, in ``time_zone``); None if either cannot be read
    (then staleness is judged at all hours, as without details)."""
    try:
        zone = ZoneInfo(time_zone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None
    sessions: list[tuple[datetime, datetime]] = []
    for day in filter(None, (part.strip() for part in text.split(";"))):
        date, _, spans = day.partition(":")
        if spans.upper() == "CLOSED":
            continue
        for span in spans.split(","):
            parsed = _session(date, span, zone)
            if parsed is None:
                return None
            sessions.append(parsed)
    return LiquidHours(tuple(sessions)) if sessions else None


def _session(date: str, span: str, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    start_text, _, end_text = span.partition("-")
    start = _moment(date, start_text, zone)
    end = _moment(date, end_text, zone)
    if start is None or end is None:
        return None
    if end <= start:  # an old-format session past midnight
        end += timedelta(days=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def _moment(date: str, text: str, zone: ZoneInfo) -> datetime | None:
    """``HHMM`` on ``date``, or ``YYYYMMDD:HHMM``, in ``zone``."""
    match = _STAMP.match(text)
    if match is not None:
        date, text = match.group(1), match.group(2)
    if _TIME.match(text) is None or len(date) != 8 or not date.isdigit():
        return None
    try:
        return datetime.strptime(date + text, "%Y%m%d%H%M").replace(tzinfo=zone)
    except ValueError:
        return None
