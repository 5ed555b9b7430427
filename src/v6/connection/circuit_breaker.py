"""A pure circuit breaker: CLOSED -> OPEN -> HALF_OPEN -> CLOSED, with an injected clock.

No asyncio and no I/O inside: the caller asks :meth:`CircuitBreaker.can_attempt` before touching
the network and reports the outcome with :meth:`record_success` / :meth:`record_failure`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from loguru import logger

from v6.connection.defaults import DEFAULT_BREAKER_TIMEOUT, DEFAULT_FAILURE_THRESHOLD
from v6.errors import IllegalTransition
from v6.validation import require_int, require_range

if TYPE_CHECKING:
    from loguru import Logger

Clock = Callable[[], float]


class CircuitState(Enum):
    CLOSED = "closed"  # normal operation
    OPEN = "open"  # failing: attempts are refused without touching the network
    HALF_OPEN = "half_open"  # one trial attempt is under way


class _Event(Enum):
    THRESHOLD_REACHED = "failure threshold reached"
    TIMEOUT_ELAPSED = "open timeout elapsed"
    GATEWAY_READY = "gateway answered a readiness probe"
    TRIAL_FAILED = "trial attempt failed"
    SUCCESS = "attempt succeeded"
    RESET = "reset"


# Every legal transition. A pair not listed is a bug in the caller and raises.
_TRANSITIONS: dict[tuple[CircuitState, _Event], CircuitState] = {
    (CircuitState.CLOSED, _Event.THRESHOLD_REACHED): CircuitState.OPEN,
    (CircuitState.OPEN, _Event.TIMEOUT_ELAPSED): CircuitState.HALF_OPEN,
    (CircuitState.OPEN, _Event.GATEWAY_READY): CircuitState.HALF_OPEN,
    (CircuitState.HALF_OPEN, _Event.TRIAL_FAILED): CircuitState.OPEN,
    (CircuitState.HALF_OPEN, _Event.SUCCESS): CircuitState.CLOSED,
    # An attempt admitted before the breaker opened may still succeed: the gateway is back.
    (CircuitState.OPEN, _Event.SUCCESS): CircuitState.CLOSED,
    (CircuitState.CLOSED, _Event.RESET): CircuitState.CLOSED,
    (CircuitState.OPEN, _Event.RESET): CircuitState.CLOSED,
    (CircuitState.HALF_OPEN, _Event.RESET): CircuitState.CLOSED,
}


class CircuitBreaker:
    """Stops retry storms against a gateway that keeps failing.

    * CLOSED: every attempt is allowed; ``failure_threshold`` consecutive failures open it.
    * OPEN: :meth:`can_attempt` is False until ``timeout`` seconds after it opened, then the
      breaker turns HALF_OPEN and admits exactly one trial.
    * HALF_OPEN: while the trial is under way every other caller is refused. Success closes the
      breaker; failure re-opens it at once and restarts the open timer. A trial that ends without
      an outcome (cancelled) must be given back with :meth:`release_trial`.

    ``clock`` must be monotonic (seconds); it is injected so tests need not sleep. ``log`` is
    the logger for its transitions (the manager passes its own, bound to host, port, client id).
    """

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        timeout: float = DEFAULT_BREAKER_TIMEOUT,
        *,
        clock: Clock = time.monotonic,
        log: Logger | None = None,
    ) -> None:
        require_int("failure_threshold", failure_threshold, low=1)
        require_range("timeout", timeout, low=0.0, low_open=True)
        self.failure_threshold = failure_threshold
        self.timeout = float(timeout)
        self._clock = clock
        self.log = log or logger
        self.state = CircuitState.CLOSED
        self.failure_count = 0  # consecutive failures since the last success
        self.last_failure_time = 0.0  # clock() reading of the last failure
        self._opened_at = 0.0
        self._trial_in_flight = False

    def can_attempt(self) -> bool:
        """May the caller touch the network now? In HALF_OPEN a True claims the single trial."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            if self.retry_after() > 0:
                return False
            self._fire(_Event.TIMEOUT_ELAPSED)
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self.failure_count = 0
        self._trial_in_flight = False
        if self.state is not CircuitState.CLOSED:
            self._fire(_Event.SUCCESS)

    def record_failure(self) -> None:
        self.failure_count += 1
        self.last_failure_time = self._clock()
        self._trial_in_flight = False
        if self.state is CircuitState.HALF_OPEN:
            self._open(_Event.TRIAL_FAILED)
        elif self.state is CircuitState.CLOSED and self.failure_count >= self.failure_threshold:
            self._open(_Event.THRESHOLD_REACHED)

    def gateway_ready(self) -> None:
        """The gateway answered a readiness probe: an OPEN breaker turns HALF_OPEN now, so its
        single trial may start at once (still one trial: API sessions stay bounded)."""
        if self.state is CircuitState.OPEN:
            self._fire(_Event.GATEWAY_READY)

    def release_trial(self) -> None:
        """Give back a HALF_OPEN trial that ended with no outcome (e.g. it was cancelled)."""
        self._trial_in_flight = False

    def reset(self) -> None:
        self.failure_count = 0
        self._trial_in_flight = False
        self._fire(_Event.RESET)

    def retry_after(self) -> float:
        """Seconds until an OPEN breaker admits a trial; 0 when not OPEN or already due."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.timeout - (self._clock() - self._opened_at))

    def _open(self, event: _Event) -> None:
        self._opened_at = self.last_failure_time
        self._fire(event)

    def _fire(self, event: _Event) -> None:
        old = self.state
        new = _TRANSITIONS.get((old, event))
        if new is None:
            raise IllegalTransition(
                f"illegal circuit breaker transition: {old.name} on {event.value}"
            )
        self.state = new
        if new is not old:
            self.log.log(
                "WARNING" if new is CircuitState.OPEN else "INFO",
                "Circuit breaker {} -> {}: {} (failures={})",
                old.name,
                new.name,
                event.value,
                self.failure_count,
            )

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state.name}, failure_count={self.failure_count}, "
            f"failure_threshold={self.failure_threshold}, timeout={self.timeout})"
        )
