"""Every kind of subscription replays onto the application's own object after a reconnect, with
exactly one live request at the gateway; a keepUpToDate series gets the bars it missed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from ib_async import Stock

from tests.helpers import T, wait_until
from tests.orders.trading import reconnected
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway
from v6.testing.gateway import ALWAYS_OPEN

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
ACCOUNT = "DU111"


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0, tick_rate=40, market_hours=ALWAYS_OPEN, accounts=[ACCOUNT],
                           realtime_bar_interval=T, pnl_interval=T) as gw:  # fmt: skip
        yield gw


async def updated(event: Any, count: int = 2) -> None:
    seen: list[int] = []
    event += lambda *args: seen.append(1)
    await wait_until(lambda: len(seen) >= count, timeout=40 * T)


async def test_every_kind_replays_onto_the_same_object(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    data = manager.data
    bars = data.realtime_bars(AAPL)
    ticker = data.tick_by_tick(AAPL, "BidAsk")
    pnl = data.pnl(ACCOUNT)
    single = data.pnl_single(ACCOUNT, "", AAPL.conId)
    await updated(bars.updateEvent)
    await updated(ticker.updateEvent)
    await updated(manager.ib.pnlEvent)
    await gateway.drop_all()
    await reconnected(manager, 1)
    await updated(bars.updateEvent)  # the same objects, their events still firing
    await updated(ticker.updateEvent)
    await wait_until(lambda: manager.ib.pnl(ACCOUNT) == [pnl], timeout=40 * T)
    await wait_until(lambda: manager.ib.pnlSingle(ACCOUNT) == [single], timeout=40 * T)
    counts = gateway.live_request_counts()
    assert sorted(counts.values()) == [1, 1, 1, 1]  # one live request each, none doubled
    assert all(feed.state.value == "streaming" for feed in data.feeds)


async def test_a_bar_series_gets_the_bars_an_outage_missed(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    bars = await manager.data.historical_bars(AAPL, "20 S", "1 secs")
    await wait_until(lambda: len(bars) >= 22, timeout=100 * T)  # updates append new bars
    await gateway.stop()
    await asyncio.sleep(2.5)  # across two bar boundaries at least
    last_before = bars[-1].date
    await gateway.start()
    await reconnected(manager, 1)
    await wait_until(lambda: bars[-1].date >= last_before + timedelta(seconds=4), 100 * T)
    dates = [bar.date for bar in bars]
    steps = {later - earlier for earlier, later in itertools.pairwise(dates)}
    assert steps == {timedelta(seconds=1)}  # in order, no duplicate, no hole
    assert manager.data.feeds[0].resubscribes == 0  # the replay, not a staleness re-request
    assert gateway.live_request_counts()[(1, "historical", AAPL.conId)] == 1
