"""IB's pacing rules as the gateway enforces them (pure: every call takes ``now``)."""

from __future__ import annotations

import pytest

from v6.protocol.codes import (
    TEXT_HISTORICAL_PACING,
    TEXT_MAX_TICKERS,
    TEXT_OPEN_HISTORICAL_LIMIT,
    TEXT_REALTIME_PACING,
)
from v6.protocol.pacing import NO_PACING, HistoricalQuery, PacingLimits
from v6.testing.gateway.ib_pacing import IbPacingRules


def query(
    contract: str = "265598", bar: str = "5 secs", what: str = "TRADES", duration: str = "30 S"
) -> HistoricalQuery:
    return HistoricalQuery(contract, "SMART", what, bar, duration, "", False, False)


def codes(rules: IbPacingRules, now: float, queries: list[HistoricalQuery]) -> list[int | None]:
    """The answer to each query sent at ``now`` (None: served)."""
    out = []
    for q in queries:
        refusal = rules.admit_historical(now, q, open_requests=0)
        out.append(None if refusal is None else refusal.code)
    return out


def test_identical_small_bar_request_within_15_s_gets_162() -> None:
    rules = IbPacingRules(PacingLimits(same_contract=None))
    assert rules.admit_historical(0.0, query(), 0) is None
    refusal = rules.admit_historical(14.9, query(), 0)
    assert refusal is not None
    assert (refusal.code, refusal.text, refusal.rule) == (162, TEXT_HISTORICAL_PACING, "identical")
    assert rules.admit_historical(15.0, query(), 0) is None  # the window is 15 s from the first
    assert rules.admit_historical(15.1, query(bar="1 min"), 0) is None  # not a small bar
    assert rules.admit_historical(15.2, query(bar="1 min"), 0) is None
    assert rules.refusals == {162: 1}


def test_sixth_request_for_one_contract_exchange_and_tick_type_within_2_s_gets_162() -> None:
    rules = IbPacingRules(PacingLimits(identical_window=None))
    durations = [f"{n} S" for n in range(30, 36)]
    assert codes(rules, 0.0, [query(duration=d) for d in durations]) == [None] * 5 + [162]
    assert codes(rules, 1.9, [query(what="BID")]) == [None]  # another tick type
    assert codes(rules, 1.9, [query(contract="1")]) == [None]  # another contract
    assert codes(rules, 2.0, [query(duration="40 S")]) == [None]  # the first five have aged out


def test_sixty_one_requests_in_ten_minutes_get_162_and_bid_ask_counts_twice() -> None:
    rules = IbPacingRules(PacingLimits(identical_window=None, same_contract=None))
    assert codes(rules, 0.0, [query(duration=f"{n} S") for n in range(58)]) == [None] * 58
    assert codes(rules, 1.0, [query(what="BID_ASK", duration="1 D")]) == [None]  # 60 units
    refusal = rules.admit_historical(599.9, query(duration="2 D"), 0)
    assert refusal is not None
    assert refusal.rule == "historical"
    assert codes(rules, 599.9, [query(bar="1 min")]) == [None]  # bars >= 1 min are exempt
    assert codes(rules, 600.0, [query(duration="3 D")]) == [None]  # the first 58 aged out


def test_bid_ask_does_not_fit_in_the_last_unit() -> None:
    rules = IbPacingRules(PacingLimits(identical_window=None, same_contract=None, historical=3))
    assert codes(rules, 0.0, [query(duration="1 D"), query(duration="2 D")]) == [None, None]
    assert codes(rules, 0.0, [query(what="BID_ASK")]) == [162]
    assert codes(rules, 0.0, [query(what="MIDPOINT")]) == [None]


def test_open_historical_cap_gets_322() -> None:
    rules = IbPacingRules(PacingLimits())
    assert rules.admit_historical(0.0, query(duration="1 D"), open_requests=49) is None
    refusal = rules.admit_historical(0.0, query(duration="2 D"), open_requests=50)
    assert refusal is not None
    assert (refusal.code, refusal.text) == (322, TEXT_OPEN_HISTORICAL_LIMIT)


def test_a_refused_request_is_not_counted() -> None:
    rules = IbPacingRules(PacingLimits(identical_window=None, same_contract=None, historical=1))
    assert codes(rules, 0.0, [query(), query(), query()]) == [None, 162, 162]
    rules.limits = PacingLimits(identical_window=None, same_contract=None, historical=2)
    assert codes(rules, 0.0, [query()]) == [None]  # the two refused ones took nothing


def test_realtime_bars_over_60_in_ten_minutes_get_420_and_hold_a_line() -> None:
    rules = IbPacingRules(PacingLimits())
    assert all(rules.admit_realtime_bars(float(i), lines_in_use=0) is None for i in range(60))
    refusal = rules.admit_realtime_bars(100.0, lines_in_use=0)
    assert refusal is not None
    assert (refusal.code, refusal.text) == (420, TEXT_REALTIME_PACING)
    assert rules.admit_realtime_bars(600.0, lines_in_use=0) is None  # the first aged out
    full = rules.admit_realtime_bars(1300.0, lines_in_use=100)
    assert full is not None
    assert (full.code, full.text) == (101, TEXT_MAX_TICKERS)
    assert rules.used(1300.0)["realtime_bars"] == 0  # the refused one was not counted


def test_market_data_lines_get_101_beyond_the_limit() -> None:
    rules = IbPacingRules(PacingLimits(market_data_lines=2))
    assert rules.admit_line(1) is None
    refusal = rules.admit_line(2)
    assert refusal is not None
    assert refusal.code == 101
    assert rules.refusals == {101: 1}


@pytest.mark.parametrize("limits", [None, NO_PACING])
def test_every_rule_off(limits: PacingLimits | None) -> None:
    rules = IbPacingRules(limits)
    assert codes(rules, 0.0, [query()] * 100) == [None] * 100
    assert rules.admit_historical(0.0, query(), open_requests=10_000) is None
    assert all(rules.admit_realtime_bars(0.0, lines_in_use=10_000) is None for _ in range(100))
    assert rules.admit_line(10_000) is None
    assert not rules.refusals


def test_each_rule_alone_is_off_when_none() -> None:
    rules = IbPacingRules(PacingLimits(identical_window=None, same_contract=None, historical=None))
    assert codes(rules, 0.0, [query()] * 100) == [None] * 100
    rules = IbPacingRules(PacingLimits(open_historical=None))
    assert rules.admit_historical(0.0, query(), open_requests=10_000) is None
    rules = IbPacingRules(PacingLimits(realtime_bars=None, market_data_lines=None))
    assert all(rules.admit_realtime_bars(0.0, lines_in_use=10_000) is None for _ in range(100))


def test_scale_shortens_every_window() -> None:
    rules = IbPacingRules(PacingLimits(scale=0.01, same_contract=None))
    assert codes(rules, 0.0, [query(), query()]) == [None, 162]
    assert codes(rules, 0.15, [query()]) == [None]  # 15 s * 0.01
    rules = IbPacingRules(PacingLimits(scale=0.01, identical_window=None, same_contract=None))
    assert codes(rules, 0.0, [query(duration=f"{n} S") for n in range(61)])[-1] == 162
    assert codes(rules, 6.0, [query()]) == [None]  # 10 min * 0.01
    rules = IbPacingRules(PacingLimits(scale=0.01, identical_window=None))
    assert codes(rules, 0.0, [query(duration=f"{n} S") for n in range(6)])[-1] == 162
    assert codes(rules, 0.02, [query()]) == [None]  # 2 s * 0.01
