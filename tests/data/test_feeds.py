"""The staleness policy, gap filling and IB's data messages (pure, no clock)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import pytest
from ib_async import Stock

from v6.data.feeds import Feed, FeedAction, FeedState, judge
from v6.data.gaps import gap_duration, merge_bars
from v6.data.responses import Episodes, Response, response_to
from v6.data.specs import MarketData

RETRY = 900.0


def feed(stale_after: float | None = 10.0) -> Feed:
    made = Feed(1, MarketData(Stock("AAPL", "SMART", "USD", conId=1)), object(), stale_after)
    made.state = FeedState.STREAMING
    made.requested(7, 100.0)
    return made


def verdict(f: Feed, now: float) -> FeedAction:
    return judge(f, now, max_resubscribes=2, competing_retry=RETRY)


def test_silence_is_counted_from_the_last_update_or_the_last_request() -> None:
    f = feed()
    assert verdict(f, 109.9) is FeedAction.NONE
    assert verdict(f, 110.0) is FeedAction.RESUBSCRIBE
    f.updated(105.0)
    assert verdict(f, 110.0) is FeedAction.NONE  # the request at 100 is older than the update
    assert f.due(RETRY) == 115.0


def test_re_requests_then_one_reconnect_then_dead() -> None:
    f = feed()
    steps = []
    now = 110.0
    for _ in range(5):
        action = verdict(f, now)
        steps.append(action)
        if action is FeedAction.RESUBSCRIBE:
            f.failures += 1
            f.requested(8, now)
        elif action is FeedAction.RECONNECT:
            f.reconnected = True
            f.requested(9, now)  # the replay after the reconnect
        now += 10.0
    assert steps == [FeedAction.RESUBSCRIBE, FeedAction.RESUBSCRIBE, FeedAction.RECONNECT,
                     FeedAction.GIVE_UP, FeedAction.GIVE_UP]  # fmt: skip


def test_any_update_ends_the_episode() -> None:
    f = feed()
    f.failures, f.reconnected, f.state = 2, True, FeedState.RESUBSCRIBING
    f.updated(150.0)
    assert (f.failures, f.reconnected, f.state) == (0, False, FeedState.STREAMING)


@pytest.mark.parametrize(
    "state", [FeedState.PENDING, FeedState.REFUSED, FeedState.DEAD, FeedState.FARM_DOWN,
              FeedState.CANCELLED],
)  # fmt: skip
def test_only_streaming_feeds_are_judged(state: FeedState) -> None:
    f = feed()
    f.state = state
    assert f.due(RETRY) == math.inf
    assert verdict(f, 1e9) is FeedAction.NONE


def test_off_means_never_and_a_competing_feed_waits_its_retry() -> None:
    assert verdict(feed(None), 1e9) is FeedAction.NONE
    f = feed()
    f.state = FeedState.COMPETING
    assert verdict(f, 100.0 + RETRY - 1) is FeedAction.NONE
    assert verdict(f, 100.0 + RETRY) is FeedAction.RESUBSCRIBE


def test_the_gap_asked_for_covers_the_outage_with_overlap_within_the_series() -> None:
    assert gap_duration(95.0, 5.0, "1 D") == ("105 S", True)  # 95 s + two 5 s bars
    assert gap_duration(2 * 86_400.0, 60.0, "1 W") == ("3 D", True)
    assert gap_duration(10 * 86_400.0, 60.0, "2 D") == ("2 D", False)  # a hole stays
    assert gap_duration(3600.0, 86_400.0, "1 Y") == ("3 D", True)  # daily bars: in days


@dataclass
class Bar:
    date: datetime
    close: float


def t(minute: int) -> datetime:
    return datetime(2026, 12, 3, 15, minute)


def test_merge_appends_what_is_newer_and_replaces_the_forming_bar() -> None:
    held = [Bar(t(0), 1.0), Bar(t(1), 2.0)]
    fresh = [Bar(t(0), 1.0), Bar(t(1), 2.5), Bar(t(2), 3.0), Bar(t(3), 4.0)]
    assert merge_bars(held, fresh) == (2, True)
    assert held == [Bar(t(0), 1.0), Bar(t(1), 2.5), Bar(t(2), 3.0), Bar(t(3), 4.0)]
    assert merge_bars(held, fresh) == (0, False)  # nothing new: no duplicate
    empty: list[Bar] = []
    assert merge_bars(empty, fresh) == (4, False)


def test_each_ib_message_gets_its_response() -> None:
    assert response_to(10182) is Response.RESUBSCRIBE
    assert response_to(10197) is Response.COMPETING
    assert response_to(101) is Response.REFUSED
    assert response_to(200) is Response.REFUSED
    assert response_to(10167) is Response.NONE  # delayed data: a warning


def test_a_burst_is_one_episode() -> None:
    episodes = Episodes(15.0)
    assert [episodes.seen(t) for t in (0.0, 0.1, 3.0, 14.0, 40.0)] == [
        True, False, False, False, True]  # fmt: skip
    assert episodes.count == 2
