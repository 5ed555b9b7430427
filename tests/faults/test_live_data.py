"""Fault matrix, live data (issue 18): three subscriptions through ``manager.data`` (market data,
real-time bars, a keepUpToDate series of 1-second bars) against each fault, three runs each.
details = live requests per subscription at the gateway after recovery (exactly 1: none doubled,
none missing) and whether each of the application's own objects kept updating."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from ib_async import BarDataList, RealTimeBarList, Stock, Ticker

from tests.faults.harness import RUNS, Harness, T
from tests.helpers import wait_until
from tests.orders.trading import reconnected
from v6.data.feeds import FeedState
from v6.protocol.codes import ErrorCode
from v6.protocol.pacing import PacingLimits
from v6.testing.gateway import ALWAYS_OPEN

SECTION = "Live data"
ROWS: dict[str, str] = {
    "FIN drop (data)": "reconnect: each subscription replayed once onto the same object",
    "gateway restart (data)": "down, up: each replayed once onto the same object",
    "1100 -> 1101 (data)": "data lost: each cancelled and asked for again, once",
    "1100 -> 1102 (data)": "data maintained: nothing asked for again, all keep updating",
    "farm flap": "2103 -> 2104: only that farm's silent feeds asked for again; no reconnect",
    "silenced stream": "stale after stale_after: that feed alone asked for again; no reconnect",
    "10182 live updates failed": "that feed asked for again at once; no reconnect",
    "competing session": "10197 burst: one episode, reported once, not retried in a loop",
    "101 at the line limit": "the feed over the limit refused and reported once; the others stream",
    "outage across a bar boundary": "the series gets the missed bars: in order, no duplicate, no "
    "hole",
}

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("run", RUNS, ids=lambda r: f"run{r}")]
GATEWAY = {"tick_rate": 40, "realtime_bar_interval": T, "market_hours": ALWAYS_OPEN}
STALE = 6 * T

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
MSFT = Stock("MSFT", "SMART", "USD", conId=272093)
IBM = Stock("IBM", "SMART", "USD", conId=8314)


@dataclass
class Subscribed:
    ticker: Ticker
    bars: RealTimeBarList
    series: BarDataList

    @property
    def handles(self) -> tuple[Any, ...]:
        return (self.ticker, self.bars, self.series)


async def subscribe(h: Harness, **options: Any) -> Subscribed:
    options.setdefault("stale_after", STALE)
    manager = await h.start(**options)
    data = manager.data
    subscribed = Subscribed(data.market_data(AAPL), data.realtime_bars(MSFT),
                            await data.historical_bars(IBM, "20 S", "1 secs"))  # fmt: skip
    await updating(subscribed.handles)
    return subscribed


async def updating(handles: tuple[Any, ...], count: int = 2) -> None:
    """Each object fires ``count`` more updates."""
    seen = [0] * len(handles)
    for i, handle in enumerate(handles):
        handle.updateEvent += lambda *args, i=i: seen.__setitem__(i, seen[i] + 1)
    await wait_until(lambda: min(seen) >= count, timeout=100 * T)


def live_requests(h: Harness) -> list[int]:
    counts = h.gateway.live_request_counts()
    return [counts[(1, kind, con_id)] for kind, con_id in
            (("market_data", AAPL.conId), ("realtime_bars", MSFT.conId),
             ("historical", IBM.conId))]  # fmt: skip


async def recovered(h: Harness, s: Subscribed, detail: str = "") -> None:
    await updating(s.handles)  # the application's own objects kept updating
    counts = live_requests(h)
    assert counts == [1, 1, 1], counts
    h.obs.details = f"live requests per subscription {counts}; all three kept updating" + detail


@pytest.mark.fault("FIN drop (data)")
@pytest.mark.gateway(**GATEWAY)
async def test_fin_drop(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    await harness.gateway.drop_all()
    await reconnected(harness.manager, 1)  # type: ignore[arg-type]
    await recovered(harness, s)
    await harness.finish()


@pytest.mark.fault("gateway restart (data)")
@pytest.mark.gateway(**GATEWAY)
async def test_gateway_restart(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    await harness.gateway.stop()
    await asyncio.sleep(2 * T)
    await harness.gateway.start()
    await reconnected(harness.manager, 1)  # type: ignore[arg-type]
    await recovered(harness, s)
    await harness.finish()


@pytest.mark.fault("1100 -> 1101 (data)")
@pytest.mark.gateway(**GATEWAY)
async def test_1101(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    harness.gateway.broadcast_error(ErrorCode.CONNECTIVITY_LOST)
    harness.gateway.broadcast_error(ErrorCode.RESTORED_DATA_LOST)
    manager = harness.manager
    assert manager is not None
    await wait_until(lambda: all(f.resubscribes == 1 for f in manager.data.feeds), 40 * T)
    await recovered(harness, s)
    assert manager.stats.reconnects == 0
    await harness.finish()


@pytest.mark.fault("1100 -> 1102 (data)")
@pytest.mark.gateway(**GATEWAY)
async def test_1102(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    harness.gateway.broadcast_error(ErrorCode.CONNECTIVITY_LOST)
    harness.gateway.broadcast_error(ErrorCode.RESTORED_DATA_MAINTAINED)
    await recovered(harness, s)
    manager = harness.manager
    assert manager is not None
    assert [f.resubscribes for f in manager.data.feeds] == [0, 0, 0]
    await harness.finish()


@pytest.mark.fault("farm flap")
@pytest.mark.gateway(**GATEWAY)
async def test_farm_flap(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    manager = harness.manager
    assert manager is not None
    harness.gateway.farm_flap("usfarm", 4 * T)
    feeds = manager.data.feeds
    await wait_until(lambda: feeds[0].resubscribes == 1 and feeds[1].resubscribes == 1, 60 * T)
    await recovered(harness, s, "; asked again: " + str([f.resubscribes for f in feeds]))
    assert feeds[2].resubscribes == 0  # the historical farm did not break
    assert manager.stats.reconnects == 0
    await harness.finish()


@pytest.mark.fault("silenced stream")
@pytest.mark.gateway(**GATEWAY)
async def test_silenced_stream(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    manager = harness.manager
    assert manager is not None
    feed = manager.data.feeds[0]
    assert feed.req_id is not None
    silenced = harness.now()
    harness.gateway.silence_stream(feed.req_id)
    await wait_until(lambda: feed.resubscribes == 1, timeout=60 * T)
    harness.timed("silenced -> asked for again", harness.now() - silenced, STALE + 10 * T)
    await recovered(harness, s)
    assert [f.resubscribes for f in manager.data.feeds] == [1, 0, 0]
    assert manager.stats.reconnects == 0
    await harness.finish()


@pytest.mark.fault("10182 live updates failed")
@pytest.mark.gateway(**GATEWAY)
async def test_live_updates_failed(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    manager = harness.manager
    assert manager is not None
    feed = manager.data.feeds[1]
    assert feed.req_id is not None
    harness.gateway.fail_live_updates(feed.req_id)
    await wait_until(lambda: feed.resubscribes == 1, timeout=40 * T)
    await recovered(harness, s)
    assert manager.stats.reconnects == 0
    await harness.finish()


@pytest.mark.fault("competing session")
@pytest.mark.gateway(**GATEWAY)
async def test_competing_session(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    manager = harness.manager
    assert manager is not None
    manager.data.watch.competing_retry = 3 * STALE  # 15 minutes, scaled
    harness.gateway.competing_session(seconds=STALE)
    feeds = manager.data.feeds
    await wait_until(lambda: feeds[0].state is FeedState.COMPETING, timeout=40 * T)
    await asyncio.sleep(2 * STALE)  # longer than stale_after: no re-request meanwhile
    assert feeds[0].resubscribes == 0
    await recovered(harness, s)  # asked again once, after competing_retry
    health = await manager.connection_health()
    assert health["data"]["competing_sessions"] == 1
    assert feeds[0].resubscribes == 1
    await harness.finish()


@pytest.mark.fault("101 at the line limit")
@pytest.mark.gateway(**GATEWAY, pacing_rules=PacingLimits(market_data_lines=2))
async def test_line_limit(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    manager = harness.manager
    assert manager is not None
    extra = manager.data.market_data(Stock("SPY", "SMART", "USD", conId=756733))
    feed = manager.data.feeds[3]
    await wait_until(lambda: feed.state is FeedState.REFUSED, timeout=40 * T)
    await asyncio.sleep(2 * STALE)  # not retried in a loop
    assert feed.resubscribes == 0
    assert extra is feed.handle
    await recovered(harness, s, "; the fourth refused (101), reported once")
    assert (await manager.connection_health())["data"]["refusals"] == 1
    await harness.finish()


@pytest.mark.fault("outage across a bar boundary")
@pytest.mark.gateway(**GATEWAY)
async def test_outage_across_a_bar_boundary(harness: Harness, run: int) -> None:
    s = await subscribe(harness)
    await harness.gateway.stop()
    await asyncio.sleep(2.2)  # at least two 1-second bars are missed
    last = s.series[-1].date
    await harness.gateway.start()
    await reconnected(harness.manager, 1)  # type: ignore[arg-type]
    await wait_until(lambda: s.series[-1].date >= last + timedelta(seconds=3), 100 * T)
    dates = [bar.date for bar in s.series]
    steps = {later - earlier for earlier, later in itertools.pairwise(dates)}
    assert steps == {timedelta(seconds=1)}, steps
    await recovered(harness, s, f"; {len(dates)} bars, one second apart, no gap")
    await harness.finish()
