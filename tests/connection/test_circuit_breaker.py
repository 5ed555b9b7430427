from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import FakeClock
from v6.connection import CircuitBreaker, CircuitState
from v6.errors import ConfigError


def test_plan_defaults() -> None:
    breaker = CircuitBreaker()
    assert (breaker.failure_threshold, breaker.timeout) == (5, 60)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
    ],
)
def test_invalid_configuration_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ConfigError)


def test_full_cycle_closed_open_half_open_closed(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, timeout=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
        assert breaker.can_attempt()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.can_attempt()
    assert breaker.retry_after() == 10
    clock.advance(9.999)
    assert not breaker.can_attempt()
    clock.advance(0.001)
    assert breaker.can_attempt()
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0


def test_half_open_admits_exactly_one_trial_among_concurrent_callers(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    admitted = [breaker.can_attempt() for _ in range(10)]
    assert admitted == [True] + [False] * 9
    assert breaker.state is CircuitState.HALF_OPEN


def test_failure_in_half_open_reopens_and_restarts_the_timer(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=5, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(7)
    assert breaker.can_attempt()
    breaker.record_failure()  # one failure is enough in HALF_OPEN
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == 5  # counted from the trial's failure, not the first opening
    clock.advance(4.9)
    assert not breaker.can_attempt()
    clock.advance(0.1)
    assert breaker.can_attempt()


def test_released_trial_lets_the_next_caller_try(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=1, clock=clock)
    breaker.record_failure()
    clock.advance(1)
    assert breaker.can_attempt()
    assert not breaker.can_attempt()
    breaker.release_trial()
    assert breaker.can_attempt()


def test_success_resets_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED


def test_no_wall_clock_used(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=60, clock=clock)
    breaker.record_failure()
    assert breaker.last_failure_time == clock.now


# --- property-based: the breaker against a tiny reference model ---------------------------

_ops = st.lists(
    st.one_of(
        st.just(("fail", 0.0)),
        st.just(("ok", 0.0)),
        st.just(("ask", 0.0)),
        st.tuples(st.just("tick"), st.floats(min_value=0, max_value=30)),
    ),
    max_size=60,
)


@given(
    threshold=st.integers(min_value=1, max_value=6),
    timeout=st.floats(min_value=0.5, max_value=20),
    ops=_ops,
)
def test_breaker_matches_model(
    threshold: int, timeout: float, ops: list[tuple[str, float]]
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=threshold, timeout=timeout, clock=clock)
    state, failures, opened_at, trial = "closed", 0, 0.0, False
    for op, arg in ops:
        if op == "tick":
            clock.advance(arg)
        elif op == "fail":
            breaker.record_failure()
            failures += 1
            trial = False
            if state == "half_open" or (state == "closed" and failures >= threshold):
                state, opened_at = "open", clock.now
        elif op == "ok":
            breaker.record_success()
            state, failures, trial = "closed", 0, False
        else:
            allowed = breaker.can_attempt()
            if state == "open" and clock.now - opened_at >= timeout:
                state = "half_open"
            expected = state == "closed" or (state == "half_open" and not trial)
            if state == "half_open" and expected:
                trial = True
            assert allowed == expected
        assert breaker.state.value == state
        assert breaker.failure_count == failures
        # invariants: never OPEN below the threshold unless a trial failed; retry_after bounded
        assert 0 <= breaker.retry_after() <= timeout
