"""Pure parts of a session's intake: pacing before decoding, and counted reports."""

from __future__ import annotations

from v6.testing.gateway.config import PACING_WINDOW
from v6.testing.gateway.intake import DROPPED_PER_WINDOW, Pacer, Tally


def test_tally_reports_at_most_once_per_interval_with_the_count() -> None:
    tally = Tally(1.0)
    assert tally.add(10.0) == 1  # the first one is reported at once
    assert [tally.add(10.0 + i / 10) for i in range(1, 10)] == [0] * 9
    assert tally.add(11.0) == 10  # nine held back plus this one
    assert tally.add(11.5, 5) == 0
    assert tally.take() == 5
    assert tally.take() == 0


def test_pacer_admits_the_limit_per_sliding_window() -> None:
    pacer = Pacer()
    assert [pacer.admit(100.0 + i / 100, 3) for i in range(5)] == [True] * 3 + [False] * 2
    assert not pacer.admit(100.0 + PACING_WINDOW - 0.001, 3)
    assert pacer.admit(100.0 + PACING_WINDOW, 3)  # the first stamp has left the window
    assert all(pacer.admit(100.0, None) for _ in range(1000))  # no limit


def test_pacer_reports_going_over_once_per_window() -> None:
    pacer = Pacer()
    assert pacer.report_due(5.0)
    assert not pacer.report_due(5.0 + PACING_WINDOW / 2)
    assert pacer.report_due(5.0 + PACING_WINDOW)


def test_reading_stops_only_once_the_drop_allowance_is_spent_in_a_full_window() -> None:
    pacer = Pacer()
    for _ in range(2):
        assert pacer.admit(10.0, 2)
    assert not pacer.admit(10.1, 2)
    assert pacer.drop_allowance() == DROPPED_PER_WINDOW
    pacer.dropped += DROPPED_PER_WINDOW - 1
    assert pacer.reopens_at(10.2, 2) is None  # a burst: dropped, still read
    pacer.dropped += 1
    assert pacer.drop_allowance() == 0
    assert pacer.reopens_at(10.2, 2) == 10.0 + PACING_WINDOW  # a flood: not read until then
    assert pacer.reopens_at(10.2, None) is None  # pacing switched off: read at once
    assert pacer.reopens_at(10.0 + PACING_WINDOW, 2) is None
    assert pacer.admit(10.0 + PACING_WINDOW, 2)
    assert pacer.dropped == 0  # a new allowance with every admitted message
