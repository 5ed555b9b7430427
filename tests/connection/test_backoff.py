from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from v6.connection import ExponentialBackoff


def test_plan_schedule_without_jitter() -> None:
    backoff = ExponentialBackoff(base=2.0, cap=60.0, jitter=0)
    rng = random.Random(0)
    assert [backoff.delay(n, rng) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff.first_reconnect_delay(rng) == 0


def test_huge_failure_counts_do_not_overflow() -> None:
    assert ExponentialBackoff(jitter=0).nominal(10_000) == 60.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base": 0}, "retry_delay"),
        ({"base": -1}, "retry_delay"),
        ({"base": 5, "cap": 4}, "max_delay"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_invalid_configuration(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ExponentialBackoff(**kwargs)


@given(
    base=st.floats(min_value=0.01, max_value=10),
    cap_factor=st.floats(min_value=1, max_value=100),
    jitter=st.floats(min_value=0, max_value=1),
    failures=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_bounds(
    base: float, cap_factor: float, jitter: float, failures: int, seed: int
) -> None:
    backoff = ExponentialBackoff(base=base, cap=base * cap_factor, jitter=jitter)
    rng = random.Random(seed)
    nominal = backoff.nominal(failures)
    delay = backoff.delay(failures, rng)
    assert nominal == min(backoff.cap, base * 2 ** (failures - 1))
    assert nominal * (1 - jitter) - 1e-9 <= delay <= min(backoff.cap, nominal * (1 + jitter)) + 1e-9
    assert delay <= backoff.cap
    assert 0 <= backoff.first_reconnect_delay(rng) <= base


@given(
    base=st.floats(min_value=0.01, max_value=10),
    failures=st.integers(min_value=1, max_value=60),
)
def test_nominal_is_monotonic(base: float, failures: int) -> None:
    backoff = ExponentialBackoff(base=base, cap=base * 1000, jitter=0)
    assert backoff.nominal(failures) <= backoff.nominal(failures + 1)
