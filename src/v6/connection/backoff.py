"""Exponential backoff as a small pure strategy object (no I/O, no clock)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from v6.connection.defaults import DEFAULT_JITTER, DEFAULT_MAX_DELAY, DEFAULT_RETRY_DELAY
from v6.validation import require_range

# 2**60 times any sane base is far beyond any cap; stops float overflow for huge failure counts.
_MAX_EXPONENT = 60


@dataclass(frozen=True)
class ExponentialBackoff:
    """Delays ``base * 2**(n-1)`` after the n-th consecutive failure, capped at ``cap``.

    With ``jitter=j`` each delay is scaled by a uniform factor in ``[1-j, 1+j]`` and then capped,
    so a herd of clients spreads out but no delay ever exceeds ``cap``. ``jitter=0`` gives the
    exact schedule 2 s, 4 s, 8 s ... for ``base=2``.
    """

    base: float = DEFAULT_RETRY_DELAY
    cap: float = DEFAULT_MAX_DELAY
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        require_range("retry_delay", self.base, low=0.0, low_open=True)
        require_range("max_delay", self.cap, low=self.base)
        require_range("jitter", self.jitter, low=0.0, high=1.0)

    def nominal(self, failures: int) -> float:
        """The un-jittered delay after ``failures`` consecutive failures (``failures >= 1``)."""
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        return min(self.cap, self.base * 2.0 ** min(failures - 1, _MAX_EXPONENT))

    def delay(self, failures: int, rng: random.Random) -> float:
        """The delay to wait after ``failures`` consecutive failures."""
        nominal = self.nominal(failures)
        if not self.jitter:
            return nominal
        return min(self.cap, nominal * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter))

    def first_reconnect_delay(self, rng: random.Random) -> float:
        """Wait before the first reconnect after a lost connection.

        Zero without jitter. With jitter, uniform in ``[0, base]`` ("full jitter" over one base
        delay): when a gateway restart drops every client at the same instant, a +-20 % spread
        around zero would still send them all back within a few milliseconds.
        """
        return rng.uniform(0.0, self.base) if self.jitter else 0.0
