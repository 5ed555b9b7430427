"""Pure parts of the per-socket session."""

from __future__ import annotations

from v6.testing.gateway.intake import Tally


def test_tally_reports_at_most_once_per_interval_with_the_count() -> None:
    tally = Tally(1.0)
    assert tally.add(10.0) == 1  # the first one is reported at once
    assert [tally.add(10.0 + i / 10) for i in range(1, 10)] == [0] * 9
    assert tally.add(11.0) == 10  # nine held back plus this one
    assert tally.add(11.5) == 0
    assert tally.take() == 1
    assert tally.take() == 0
