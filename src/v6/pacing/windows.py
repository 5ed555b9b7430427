"""Sliding windows with an injected clock (pure): "at most N units in any W seconds".

Written here rather than taken from a limiter library: ``limits`` reads ``time.time()`` inside its
storage (no injected clock, so its users' tests sleep and a wall-clock step corrupts a window),
and pyrate-limiter's buckets admit-and-record in one call and tell the wait only after a refusal,
so a request that must pass several windows under different keys at once (identical request,
same contract, all historical requests) cannot be decided atomically, nor asked when it could
pass all of them. A log of timestamps does both in a few lines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class SlidingLog:
    """At most ``limit`` units in any ``window`` seconds (a unit per timestamp; a request of
    weight 2 is two units at the same time)."""

    __slots__ = ("_stamps", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._stamps: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._stamps)

    def expire(self, now: float) -> None:
        stamps = self._stamps
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()

    def earliest(self, now: float, weight: int = 1, limit: int | None = None) -> float:
        """The earliest time >= ``now`` at which ``weight`` more units fit (``now`` if they do
        already), under ``limit`` (default: this log's). A weight above the limit waits for an
        empty window."""
        limit = self.limit if limit is None else limit
        self.expire(now)
        stamps = self._stamps
        over = len(stamps) + min(weight, limit) - limit
        if over <= 0:
            return now
        return stamps[over - 1] + self.window

    def add(self, now: float, weight: int = 1) -> None:
        self._stamps.extend([now] * weight)

    def take(self, now: float, limit: int) -> bool:
        """Add one unit now if it fits under ``limit`` (``earliest(now, 1, limit) == now``
        then ``add(now)``, in one pass: the short way of every order and start-up request)."""
        stamps = self._stamps
        while stamps and now - stamps[0] >= self.window:  # expire(), inline: per message sent
            stamps.popleft()
        if len(stamps) >= limit:
            return False
        stamps.append(now)
        return True

    def used(self, now: float) -> int:
        """Units inside the window at ``now``."""
        self.expire(now)
        return len(self._stamps)


class KeyedLogs(Generic[K]):
    """One :class:`SlidingLog` per key, made on first use and forgotten once empty (memory stays
    bounded by the keys active within one window)."""

    __slots__ = ("_logs", "_next_sweep", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._logs: dict[K, SlidingLog] = {}
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._logs)

    def earliest(self, key: K, now: float, weight: int = 1) -> float:
        log = self._logs.get(key)
        return now if log is None else log.earliest(now, weight)

    def add(self, key: K, now: float, weight: int = 1) -> None:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = SlidingLog(self.limit, self.window)
        log.add(now, weight)
        if now >= self._next_sweep:  # once a window, not on every add
            self._next_sweep = now + self.window
            for gone in [k for k, log in self._logs.items() if log.used(now) == 0]:
                del self._logs[gone]



class TokenBucket:
    """Bursts of up to ``capacity``, refilled at ``rate`` per second: a stream beyond its burst
    is spread evenly, and a late timer does not push later sends back (the tokens it missed are
    still there)."""

    __slots__ = ("_at", "_tokens", "capacity", "rate")

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self._tokens = float(capacity)
        self._at = 0.0

    def _refilled(self, now: float) -> float:
        return min(self.capacity, self._tokens + max(0.0, now - self._at) * self.rate)

    def earliest(self, now: float) -> float:
        """The earliest time >= ``now`` at which a token is there."""
        tokens = self._refilled(now)
        return now if tokens >= 1 else now + (1 - tokens) / self.rate

    def take(self, now: float) -> None:
        self._tokens = self._refilled(now) - 1
        self._at = max(self._at, now)
