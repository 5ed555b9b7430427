"""The reconnect planner, table-tested on an injected clock: outcomes in, decisions out."""

from __future__ import annotations

import errno
import random
import socket

import pytest

from tests.helpers import FakeClock
from v6.connection.backoff import ExponentialBackoff
from v6.connection.circuit_breaker import CircuitBreaker, CircuitState
from v6.connection.planner import GiveUp, ReconnectPlanner, Sleep, TryNow
from v6.connection.retry import classify
from v6.connection.state import ConnectionState
from v6.errors import (
    CircuitOpenError,
    ClientIdInUse,
    ConnectFailed,
    FatalConnectError,
    HandshakeFailed,
)

REFUSED = ConnectFailed("connection refused")
CLOSED = HandshakeFailed("closed")
NO_HOST = socket.gaierror(socket.EAI_NONAME, "no such host")
OK = None


def make(
    clock: FakeClock,
    ids: tuple[int, ...] = (1,),
    threshold: int = 100,
    breaker_timeout: float = 10.0,
    jitter: float = 0.0,
) -> ReconnectPlanner:
    return ReconnectPlanner(
        ids,
        CircuitBreaker(threshold, breaker_timeout, clock=clock),
        ExponentialBackoff(base=2.0, cap=60.0, jitter=jitter),
        random.Random(0),
        poll_delay=2.0,
        target="127.0.0.1:4002",
    )


def play(
    planner: ReconnectPlanner, clock: FakeClock, outcomes: list[BaseException | None]
) -> list[str]:
    """Obey the planner until it connects or gives up; each TryNow takes the next outcome."""
    seen: list[str] = []
    pending = list(outcomes)
    while len(seen) < 50:
        decision = planner.next()
        match decision:
            case TryNow(client_id):
                seen.append(f"try {client_id}")
                outcome = pending.pop(0)
                if outcome is None:
                    planner.succeeded()
                    return seen
                planner.failed(outcome, classify(outcome))
            case Sleep(seconds, _, state):
                seen.append(f"sleep {seconds:g} {state.value}")
                clock.advance(seconds)
            case GiveUp(error, _, state):
                seen.append(f"give up {type(error).__name__} {state.value}")
                return seen
    raise AssertionError(f"no end: {seen}")


@pytest.mark.parametrize(
    ("ids", "max_retries", "threshold", "outcomes", "expected"),
    [
        pytest.param((1,), 3, 100, [OK], ["try 1"], id="connects at once"),
        pytest.param(
            (1,),
            3,
            100,
            [REFUSED] * 4,
            "try 1 | sleep 2 backing_off | try 1 | sleep 4 backing_off | try 1 | "
            "sleep 8 backing_off | try 1 | give up ConnectFailed disconnected",
            id="the plan's 2 s, 4 s, 8 s then gives up",
        ),
        pytest.param(
            (1,),
            3,
            100,
            [NO_HOST],
            ["try 1", "give up FatalConnectError disconnected"],
            id="fatal at once",
        ),
        pytest.param(
            (5, 6),
            0,
            100,
            [ClientIdInUse(5), OK],
            ["try 5", "try 6"],
            id="326 moves to the next id at once",
        ),
        pytest.param(
            (5, 6),
            1,
            100,
            [ClientIdInUse(5), ClientIdInUse(6), ClientIdInUse(5), ClientIdInUse(6)],
            "try 5 | try 6 | sleep 2 backing_off | try 5 | try 6 | "
            "give up ClientIdInUse disconnected",
            id="every id in use: back off per round",
        ),
        pytest.param(
            (1,),
            5,
            2,
            [CLOSED, CLOSED],
            ["try 1", "sleep 2 backing_off", "try 1", "give up CircuitOpenError circuit_open"],
            id="breaker opening ends a bounded plan",
        ),
        pytest.param(
            (1,),
            None,
            1,
            [CLOSED, OK],
            ["try 1", "sleep 10 circuit_open", "try 1"],
            id="unbounded plan waits the breaker out",
        ),
    ],
)
def test_plans(
    clock: FakeClock,
    ids: tuple[int, ...],
    max_retries: int | None,
    threshold: int,
    outcomes: list[BaseException | None],
    expected: str | list[str],
) -> None:
    """``expected``: the decisions in order (one string, `` | `` between them, for long ones)."""
    planner = make(clock, ids, threshold)
    planner.begin(max_retries=max_retries)
    if isinstance(expected, str):
        expected = expected.split(" | ")
    assert play(planner, clock, outcomes) == expected


def test_326_with_an_untried_id_does_not_feed_the_breaker(clock: FakeClock) -> None:
    planner = make(clock, (5, 6), threshold=1)
    planner.begin(max_retries=0)
    assert play(planner, clock, [ClientIdInUse(5), OK]) == ["try 5", "try 6"]
    assert planner._breaker.failure_count == 0
    assert planner.client_id == 6  # the rotation outlives the plan
    planner.begin(max_retries=0)
    assert planner.next() == TryNow(6, "attempt 1 with client id 6")


def test_consecutive_failures_span_plans_and_reset_on_success(clock: FakeClock) -> None:
    planner = make(clock)
    planner.begin(max_retries=1)
    play(planner, clock, [REFUSED, REFUSED])
    assert planner.consecutive_failures == 2
    planner.begin(max_retries=0)
    play(planner, clock, [OK])
    assert planner.consecutive_failures == 0


@pytest.mark.parametrize(
    ("threshold", "exc", "error_type", "text"),
    [
        (1, CLOSED, CircuitOpenError, "circuit breaker is OPEN"),
        (100, ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ConnectFailed, "1 attempt"),
        (100, NO_HOST, FatalConnectError, "cannot connect to 127.0.0.1:4002"),
    ],
)
def test_the_error_given_up_with_carries_its_cause(
    clock: FakeClock,
    threshold: int,
    exc: BaseException,
    error_type: type[BaseException],
    text: str,
) -> None:
    planner = make(clock, threshold=threshold)
    planner.begin(max_retries=0 if threshold > 1 else 3)
    planner.next()
    planner.failed(exc, classify(exc))
    decision = planner.next()
    assert isinstance(decision, GiveUp)
    assert type(decision.error) is error_type
    assert text in str(decision.error)
    assert decision.error.__cause__ is exc


def test_open_breaker_refuses_a_bounded_plan_without_a_try(clock: FakeClock) -> None:
    planner = make(clock, threshold=1)
    planner._breaker.record_failure()
    planner.begin(max_retries=3)
    decision = planner.next()
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, CircuitOpenError)
    assert decision.state is ConnectionState.CIRCUIT_OPEN


def test_someone_elses_half_open_trial_makes_an_unbounded_plan_poll(clock: FakeClock) -> None:
    planner = make(clock, threshold=1)
    breaker = planner._breaker
    breaker.record_failure()
    clock.advance(10)
    assert breaker.can_attempt()  # another manager sharing the breaker took the trial
    planner.begin(max_retries=None)
    assert planner.next() == Sleep(
        2.0, "breaker open, next trial in 0.0s", ConnectionState.CIRCUIT_OPEN
    )


def test_abandoned_attempt_gives_the_trial_back(clock: FakeClock) -> None:
    planner = make(clock, threshold=1)
    planner._breaker.record_failure()
    clock.advance(10)
    planner.begin(max_retries=None)
    assert isinstance(planner.next(), TryNow)
    assert planner._breaker.state is CircuitState.HALF_OPEN
    planner.abandoned()
    assert isinstance(planner.next(), TryNow)  # not refused: the trial was released


@pytest.mark.parametrize(("jitter", "sleeps"), [(0.0, False), (0.2, True)])
def test_after_loss_waits_a_first_jittered_delay(
    clock: FakeClock, jitter: float, sleeps: bool
) -> None:
    planner = make(clock, jitter=jitter)
    planner.begin(max_retries=None, after_loss=True)
    decision = planner.next()
    if sleeps:
        assert isinstance(decision, Sleep)
        assert 0 < decision.seconds <= 2.0
        assert decision.state is ConnectionState.BACKING_OFF
        decision = planner.next()
    assert isinstance(decision, TryNow)


def test_a_custom_backoff_is_obeyed(clock: FakeClock) -> None:
    class Fixed:
        def delay(self, failures: int, rng: random.Random) -> float:
            return 0.5 * failures

        def first_reconnect_delay(self, rng: random.Random) -> float:
            return 0.0

    planner = ReconnectPlanner(
        (1,), CircuitBreaker(clock=clock), Fixed(), random.Random(0), poll_delay=1, target="x"
    )
    planner.begin(max_retries=2)
    assert play(planner, clock, [REFUSED, REFUSED, OK]) == [
        "try 1",
        "sleep 0.5 backing_off",
        "try 1",
        "sleep 1 backing_off",
        "try 1",
    ]
