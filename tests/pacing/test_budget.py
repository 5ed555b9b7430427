"""The pacing budget (pure, no clock): IB's rules as windows and caps, and the lanes' margins."""

from __future__ import annotations

import math

import pytest

from v6.connection.lanes import Lane
from v6.pacing.budget import Budget, Cost
from v6.pacing.windows import KeyedLogs, SlidingLog
from v6.protocol.pacing import NO_PACING, HistoricalQuery, PacingLimits


def query(contract: str = "265598", *, bar: str = "5 secs", what: str = "TRADES",
          end: str = "", keep: bool = False) -> HistoricalQuery:  # fmt: skip
    return HistoricalQuery(contract, "SMART", what, bar, "1800 S", end, True, keep)


def historical(req_id: int, q: HistoricalQuery | None = None, lane: Lane = Lane.BULK) -> Cost:
    return Cost(lane, req_id, historical=q or query(end=str(req_id)))


def test_a_sliding_log_says_when_the_oldest_unit_leaves() -> None:
    log = SlidingLog(3, 10.0)
    for t in (0.0, 1.0, 2.0):
        assert log.earliest(t) == t
        log.add(t)
    assert log.earliest(5.0) == 10.0  # the unit of t=0 leaves at 10
    assert log.earliest(5.0, weight=2) == 11.0  # two must leave
    assert log.earliest(10.0) == 10.0
    assert log.used(12.0) == 0


def test_take_adds_a_unit_exactly_when_earliest_says_now() -> None:
    taker, asker = SlidingLog(3, 10.0), SlidingLog(3, 10.0)
    for t in (0.0, 1.0, 2.0, 3.0, 9.9, 10.0, 10.5, 11.0, 11.5, 25.0):
        for limit in (2, 3):
            fits = asker.earliest(t, 1, limit) == t
            if fits:
                asker.add(t)
            assert taker.take(t, limit) is fits
            assert taker.used(t) == asker.used(t)


def test_a_weight_above_the_limit_waits_for_an_empty_window() -> None:
    log = SlidingLog(2, 10.0)
    log.add(0.0)
    assert log.earliest(1.0, weight=5) == 10.0


def test_keyed_logs_forget_idle_keys() -> None:
    logs = KeyedLogs[str](1, 1.0)
    for i in range(100):
        logs.add(f"k{i}", float(i))
    assert len(logs) <= 2  # each sweep forgets the keys whose window emptied


def test_messages_keep_a_guard_and_a_reserve_for_urgent() -> None:
    budget = Budget(PacingLimits(messages_per_second=10), message_guard=0.5, urgent_reserve=2,
                    bulk_reserve=0)  # fmt: skip
    now = 100.0
    for _ in range(8):  # 10 - 2 reserve
        assert budget.earliest(Cost(Lane.SYNC), now) == now
        budget.spend(Cost(Lane.SYNC), now)
    assert budget.earliest(Cost(Lane.SYNC), now) == now + 1.5  # IB's second + the guard
    for _ in range(2):  # the reserve is the URGENT lane's
        assert budget.earliest(Cost(Lane.URGENT), now) == now
        budget.spend(Cost(Lane.URGENT), now)
    assert budget.earliest(Cost(Lane.URGENT), now) == now + 1.5


def test_streams_and_bulk_burst_then_spread_evenly() -> None:
    budget = Budget(PacingLimits(messages_per_second=11), message_guard=0.0, urgent_reserve=1,
                    bulk_reserve=0,
                    burst=5)  # fmt: skip
    now, sent = 0.0, []
    while now < 20.0:
        now = budget.earliest(Cost(Lane.BULK), now)
        budget.spend(Cost(Lane.BULK), now)
        sent.append(now)
    assert sent[:5] == [0.0] * 5  # the burst, of the 10 the other lanes have (11 - 1 reserved)
    window = [sum(1 for t in sent if start <= t < start + 1.0) for start in sent]
    assert max(window) == 10  # never more than the rate in any second ...
    assert len(sent) >= 0.95 * 20 * 10  # ... and the rate is used
    bursts = [sum(1 for t in sent if t == start) for start in sent[5:]]
    assert max(bursts) <= 5  # a boundary never sees more than the burst at once
    assert budget.earliest(Cost(Lane.URGENT), now) == now  # the reserve stays URGENT's


def test_sync_goes_as_a_burst_within_the_window() -> None:
    budget = Budget(PacingLimits(messages_per_second=11), message_guard=0.0, urgent_reserve=1,
                    bulk_reserve=0)  # fmt: skip
    for _ in range(10):
        assert budget.earliest(Cost(Lane.SYNC), 5.0) == 5.0
        budget.spend(Cost(Lane.SYNC), 5.0)
    assert budget.earliest(Cost(Lane.SYNC), 5.0) == 6.0


def test_identical_small_bar_requests_wait_the_identical_window() -> None:
    budget = Budget(PacingLimits(scale=0.1, messages_per_second=None), window_guard=0.0)
    q = query()
    budget.spend(Cost(Lane.BULK, 1, historical=q), 0.0)
    budget.ended(1)
    assert budget.earliest(Cost(Lane.BULK, 2, historical=q), 0.5) == pytest.approx(1.5)
    minute = query(bar="1 min")  # bars above 30 s: the identical rule does not apply
    budget.spend(Cost(Lane.BULK, 3, historical=minute), 0.5)
    assert budget.earliest(Cost(Lane.BULK, 4, historical=minute), 0.6) == 0.6


def test_the_sixth_request_for_one_contract_waits_two_seconds() -> None:
    budget = Budget(PacingLimits(scale=1.0, messages_per_second=None), window_guard=0.0)
    for i in range(5):
        budget.spend(historical(i, query(end=f"e{i}")), 10.0 + i * 0.1)
    assert budget.earliest(historical(9, query(end="e9")), 10.5) == pytest.approx(12.0)
    other = query("8314", end="e9")  # another contract is not held
    assert budget.earliest(historical(9, other), 10.5) == 10.5
    bid_ask = query(what="BID_ASK", end="e9")  # another tick type neither
    assert budget.earliest(historical(9, bid_ask), 10.5) == 10.5


def test_sixty_per_ten_minutes_with_bid_ask_counting_twice() -> None:
    budget = Budget(PacingLimits(scale=0.01, same_contract=None, messages_per_second=None),
                    window_guard=0.0)  # fmt: skip
    for i in range(29):
        budget.spend(historical(i, query(str(i), what="BID_ASK")), 0.0)
    budget.spend(historical(29, query("29")), 0.0)  # 2 * 29 + 1 = 59 units
    assert budget.earliest(historical(30, query("30")), 1.0) == 1.0
    assert budget.earliest(historical(30, query("30", what="BID_ASK")), 1.0) == pytest.approx(6.0)
    exempt = query("30", bar="1 min")  # bars of a minute and longer are exempt
    budget.spend(historical(31, query("31")), 1.0)
    assert budget.earliest(historical(32, exempt), 1.0) == 1.0


def test_fifty_open_historical_requests_wait_for_one_to_end() -> None:
    budget = Budget(PacingLimits(open_historical=2, same_contract=None, identical_window=None,
                                 messages_per_second=None), window_guard=0.0)  # fmt: skip
    budget.spend(historical(1, query(keep=True)), 0.0)
    budget.spend(historical(2, query("2")), 0.0)
    assert budget.earliest(historical(3, query("3")), 0.0) == math.inf
    budget.ended(2)
    assert budget.earliest(historical(3, query("3")), 0.0) == 0.0


def test_a_cancel_ends_what_it_cancels() -> None:
    budget = Budget(PacingLimits(market_data_lines=1), window_guard=0.0)
    budget.spend(Cost(Lane.STREAMS, 7, line=True), 0.0)
    assert budget.earliest(Cost(Lane.STREAMS, 8, line=True), 0.0) == math.inf
    budget.spend(Cost(Lane.URGENT, ends=7), 0.1)
    assert budget.earliest(Cost(Lane.STREAMS, 8, line=True), 0.1) == 0.1


def test_realtime_bars_sixty_per_window_and_a_line_each() -> None:
    budget = Budget(PacingLimits(realtime_bars=2, scale=0.01, messages_per_second=None),
                    window_guard=0.0)  # fmt: skip
    budget.spend(Cost(Lane.STREAMS, 1, realtime_bars=True), 0.0)
    budget.spend(Cost(Lane.STREAMS, 2, realtime_bars=True), 0.0)
    budget.ended(1)
    budget.ended(2)
    assert budget.earliest(Cost(Lane.STREAMS, 3, realtime_bars=True), 1.0) == pytest.approx(6.0)
    assert budget.usage(1.0)["market_data_lines"] == 0


def test_a_session_end_frees_open_requests_and_lines_but_not_the_windows() -> None:
    budget = Budget(PacingLimits(historical=1, scale=0.01, messages_per_second=None),
                    window_guard=0.0)  # fmt: skip
    budget.spend(historical(1), 0.0)
    budget.spend(Cost(Lane.STREAMS, 2, line=True), 0.0)
    budget.session_ended()
    assert budget.usage(0.0)["open_historical"] == 0
    assert budget.usage(0.0)["market_data_lines"] == 0
    assert budget.earliest(historical(3), 1.0) == pytest.approx(6.0)  # IB counts per login


def test_after_an_error_100_only_urgent_goes_until_the_pause_ends() -> None:
    budget = Budget(PacingLimits())
    budget.pause(until=5.0)
    assert budget.earliest(Cost(Lane.URGENT), 1.0) == 1.0
    assert budget.earliest(Cost(Lane.SYNC), 1.0) == 5.0


def test_every_rule_off() -> None:
    budget = Budget(NO_PACING)
    for i in range(1000):
        budget.spend(historical(i, query()), 0.0)
        budget.spend(Cost(Lane.STREAMS, 10_000 + i, line=True, realtime_bars=True), 0.0)
    assert budget.earliest(historical(5000, query()), 0.0) == 0.0
    assert budget.earliest(Cost(Lane.STREAMS, 9, realtime_bars=True), 0.0) == 0.0


def test_every_window_is_a_little_longer_than_ibs() -> None:
    """IB counts when it reads: a request that waited on its way must not meet the next one."""
    budget = Budget(PacingLimits(historical=1, scale=0.01, messages_per_second=None),
                    window_guard=0.05)  # fmt: skip
    budget.spend(historical(1), 0.0)
    assert budget.earliest(historical(2), 1.0) == pytest.approx(6.05)


def test_a_late_send_does_not_push_every_later_slot() -> None:
    budget = Budget(PacingLimits(messages_per_second=11), message_guard=0.0, urgent_reserve=1,
                    bulk_reserve=0, burst=3)  # fmt: skip
    for _ in range(3):  # the burst
        budget.spend(Cost(Lane.BULK), 0.0)
    assert budget.earliest(Cost(Lane.BULK), 0.0) == pytest.approx(0.1)
    budget.spend(Cost(Lane.BULK), 0.13)  # its timer fired 30 ms late
    assert budget.earliest(Cost(Lane.BULK), 0.13) == pytest.approx(0.2)  # not 0.23
