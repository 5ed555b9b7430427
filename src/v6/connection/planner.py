"""The reconnect planner: circuit breaker + backoff + client-id rotation -> what to do next.

Pure: no asyncio, no I/O, no clock of its own (the breaker carries the clock). The manager runs
one *plan* per connect loop and obeys it::

    planner.begin(max_retries=3)              # None: never give up (supervision)
    while True:
        match planner.next():
            case TryNow(client_id):  try once; report succeeded() / failed(exc, verdict)
            case Sleep(seconds):     sleep, then ask again
            case GiveUp(error):      raise error

Rules, in the order they apply after an attempt fails:

* a fatal verdict gives up at once (the trial, if any, is given back to the breaker);
* TWS error 326 moves on to the next client id, unless ``may_rotate()`` says no (the manager
  has working orders, which only this id may modify or cancel: back off and retry it); while
  the list has an id not yet tried in this round, the next one is tried at once and the
  breaker is not told (the gateway answered);
* otherwise the breaker records a failure (not inside a known maintenance window: ``expected``
  failures only back off); a bounded plan gives up after ``max_retries`` retries,
  or at once with :class:`CircuitOpenError` when the breaker opens; an unbounded plan waits the
  breaker out; else it sleeps ``backoff.delay(failures)``.

The client-id rotation and the consecutive-failure count outlive a plan; the rest is per plan.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from v6.connection.circuit_breaker import CircuitBreaker, CircuitState
from v6.connection.retry import Verdict
from v6.connection.state import ConnectionState
from v6.errors import (
    CircuitOpenError,
    ClientIdInUse,
    ConnectFailed,
    FatalConnectError,
    V6Error,
)


class Backoff(Protocol):
    """What the planner needs of a backoff strategy (:class:`ExponentialBackoff` is one)."""

    def delay(self, failures: int, rng: random.Random) -> float: ...

    def first_reconnect_delay(self, rng: random.Random) -> float: ...


@dataclass(frozen=True)
class TryNow:
    client_id: int
    reason: str


@dataclass(frozen=True)
class Sleep:
    seconds: float
    reason: str
    state: ConnectionState  # BACKING_OFF, or CIRCUIT_OPEN while the breaker refuses


@dataclass(frozen=True)
class GiveUp:
    error: BaseException
    reason: str
    state: ConnectionState  # DISCONNECTED, or CIRCUIT_OPEN


Decision = TryNow | Sleep | GiveUp


class ReconnectPlanner:
    """Decides every step of a connect loop; see the module docstring for the rules.

    ``poll_delay``: how long an unbounded plan waits when the breaker is HALF_OPEN with someone
    else's trial (a shared breaker), so it has no retry time to offer. ``target`` names the
    gateway in the errors it makes.
    """

    def __init__(
        self,
        client_ids: Sequence[int],
        breaker: CircuitBreaker,
        backoff: Backoff,
        rng: random.Random,
        *,
        poll_delay: float,
        target: str,
        may_rotate: Callable[[], bool] = lambda: True,
    ) -> None:
        self._ids = tuple(client_ids)
        self._breaker = breaker
        self._backoff = backoff
        self._rng = rng
        self._poll_delay = poll_delay
        self._target = target
        self._may_rotate = may_rotate
        self._index = 0
        self.consecutive_failures = 0
        # Per plan (begin()):
        self._max_retries: int | None = None
        self._failures = 0
        self._untried_ids = len(self._ids) - 1
        self._pending: Decision | None = None

    @property
    def client_id(self) -> int:
        """The id of the current (or next) attempt."""
        return self._ids[self._index]

    def begin(self, *, max_retries: int | None, after_loss: bool = False) -> None:
        """Start a plan. ``max_retries=None``: never give up. ``after_loss``: a live connection
        was just lost, so wait ``first_reconnect_delay`` first (spreads a herd)."""
        self._max_retries = max_retries
        self._failures = 0
        self._untried_ids = len(self._ids) - 1
        self._pending = None
        if after_loss:
            delay = self._backoff.first_reconnect_delay(self._rng)
            if delay:
                self._pending = Sleep(
                    delay, f"reconnecting in {delay:.2f}s", ConnectionState.BACKING_OFF
                )

    def next(self) -> Decision:
        if self._pending is not None:
            decision, self._pending = self._pending, None
            return decision
        if not self._breaker.can_attempt():
            return self._circuit_open()
        return TryNow(
            self.client_id, f"attempt {self._failures + 1} with client id {self.client_id}"
        )

    def succeeded(self) -> None:
        self._breaker.record_success()
        self.consecutive_failures = 0

    def abandoned(self) -> None:
        """The attempt ended with no outcome (cancelled): give the breaker's trial back."""
        self._breaker.release_trial()

    def gateway_ready(self) -> None:
        """A readiness probe answered during a wait: the next attempt may start at once (as the
        breaker's single HALF_OPEN trial when it is open)."""
        self._breaker.gateway_ready()

    def failed(self, exc: BaseException, verdict: Verdict, *, expected: bool = False) -> None:
        """Record a failed attempt. ``expected`` (inside a known maintenance window): backoff
        as usual, but the breaker does not count it."""
        if verdict is Verdict.FATAL:
            self._breaker.release_trial()
            self._pending = GiveUp(
                self._as_fatal(exc), f"fatal error: {exc!r}", ConnectionState.DISCONNECTED
            )
            return
        self.consecutive_failures += 1
        if isinstance(exc, ClientIdInUse) and self._may_rotate():
            self._index = (self._index + 1) % len(self._ids)
            if self._untried_ids:  # another id may be free: try it now, not the gateway's fault
                self._untried_ids -= 1
                self._breaker.release_trial()
                return
        self._untried_ids = len(self._ids) - 1
        if expected:
            self._breaker.release_trial()
        else:
            self._breaker.record_failure()
        self._failures += 1
        self._pending = self._after_failure(exc)

    def _after_failure(self, exc: BaseException) -> Decision | None:
        bounded = self._max_retries is not None
        if self._max_retries is not None and self._failures > self._max_retries:
            return GiveUp(
                self._as_connect_failed(exc),
                f"gave up after {self._failures} attempt(s): {exc}",
                ConnectionState.DISCONNECTED,
            )
        if self._breaker.state is CircuitState.OPEN:
            if not bounded:
                return None  # next() waits for HALF_OPEN
            error = CircuitOpenError(self._breaker.retry_after())
            error.__cause__ = exc
            return GiveUp(error, f"breaker opened: {exc}", ConnectionState.CIRCUIT_OPEN)
        delay = self._backoff.delay(self._failures, self._rng)
        return Sleep(delay, f"{exc}; retry in {delay:.2f}s", ConnectionState.BACKING_OFF)

    def _circuit_open(self) -> Decision:
        retry_after = self._breaker.retry_after()
        reason = f"breaker open, next trial in {retry_after:.1f}s"
        if self._max_retries is not None:
            return GiveUp(CircuitOpenError(retry_after), reason, ConnectionState.CIRCUIT_OPEN)
        # retry_after is 0 when a shared breaker's HALF_OPEN trial is someone else's.
        return Sleep(retry_after or self._poll_delay, reason, ConnectionState.CIRCUIT_OPEN)

    def _as_fatal(self, exc: BaseException) -> BaseException:
        if isinstance(exc, V6Error):
            return exc
        error = FatalConnectError(f"cannot connect to {self._target}: {exc!r}")
        error.__cause__ = exc
        return error

    def _as_connect_failed(self, exc: BaseException) -> BaseException:
        if isinstance(exc, V6Error):
            return exc  # already ours, with the underlying error as its cause
        error = ConnectFailed(f"failed after {self._failures} attempt(s): {exc!r}")
        error.__cause__ = exc
        return error
