"""What one client may make the gateway do: message pacing and counted reports (pure).

No I/O and no clock: every method takes ``now``. The session asks :class:`Pacer` about each frame
BEFORE decoding it, so a frame over the limit costs its framing only; and :class:`Tally` keeps
its reports about a flood to one log line per interval.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

from v6.testing.gateway.config import PACING_WINDOW

HANDLED_PER_TURN: Final = 16
"""Frames one client may have decoded and handled per event-loop turn: one socket cannot hold
the loop while others wait (the rest stay buffered and its reading is paused meanwhile)."""
OUTPUT_PER_TURN: Final = 64 * 1024
"""Bytes of replies one client's frames may produce per event-loop turn before the rest of its
frames wait for the next turn (one historical reply is about 100 KB)."""
DROPPED_PER_WINDOW: Final = 256
"""Frames over the pacing limit one client may have dropped (framed, not decoded: cheap) before
the gateway stops reading it until its window has room again; what it sends meanwhile waits in
the socket."""
READ_CHUNK: Final = 16 * 1024
"""Bytes read from one client at a time."""


class Pacer:
    """At most ``limit`` messages in any :data:`PACING_WINDOW`; ``None`` means no limit. The
    limit is passed on every call: ``gw.pacing_limit = ...`` takes effect at once."""

    __slots__ = ("_last_report", "_stamps", "dropped")

    def __init__(self) -> None:
        self._stamps: deque[float] = deque()
        self._last_report = -math.inf
        self.dropped = 0
        """Frames dropped since the window was last open."""

    def _expire(self, now: float) -> None:
        stamps = self._stamps
        while stamps and now - stamps[0] >= PACING_WINDOW:
            stamps.popleft()

    def admit(self, now: float, limit: int | None) -> bool:
        """Count one message if the window has room; False if it is over the limit."""
        if limit is None:
            return True
        self._expire(now)
        if len(self._stamps) >= limit:
            return False
        self._stamps.append(now)
        self.dropped = 0
        return True

    def drop_allowance(self) -> int:
        """Frames that may still be dropped before reading stops for this window."""
        return max(0, DROPPED_PER_WINDOW - self.dropped)

    def reopens_at(self, now: float, limit: int | None) -> float | None:
        """When the window has room again if the client has spent its drop allowance (stop
        reading it until then); ``None`` otherwise."""
        if limit is None or self.dropped < DROPPED_PER_WINDOW:
            return None
        self._expire(now)
        if len(self._stamps) < limit:
            return None
        return self._stamps[len(self._stamps) - limit] + PACING_WINDOW

    def report_due(self, now: float) -> bool:
        """True at most once per window: time to tell the client it went over (error 100)."""
        if now - self._last_report < PACING_WINDOW:
            return False
        self._last_report = now
        return True

    @property
    def in_window(self) -> int:
        return len(self._stamps)


class Tally:
    """Counts events and says when to report them: at most once per ``interval``, with the count
    since the last report."""

    __slots__ = ("interval", "last_report", "pending")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.pending = 0
        self.last_report = -math.inf

    def add(self, now: float, events: int = 1) -> int:
        """Count ``events``; the number to report now, or 0 to stay quiet."""
        self.pending += events
        if now - self.last_report < self.interval:
            return 0
        self.last_report = now
        return self.take()

    def take(self) -> int:
        """The unreported count, reset to zero."""
        count, self.pending = self.pending, 0
        return count
