"""Stale feeds and IB's data messages over real sockets: each gets its proportional response,
never a socket teardown for a data-level problem (v6.data.responses, v6.data.feeds)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ib_async import Stock, Ticker

from tests.helpers import T, fast_settings, log_lines, wait_until
from tests.orders.trading import reconnected
from v6.connection.system_messages import FarmStatus
from v6.data.feeds import FeedState
from v6.manager import IBConnectionManager
from v6.protocol.pacing import PacingLimits
from v6.testing import FakeGateway
from v6.testing.gateway import ALWAYS_OPEN, MarketHours

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
MSFT = Stock("MSFT", "SMART", "USD", conId=272093)
STALE = 6 * T
Make = Callable[..., Any]


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0, tick_rate=40, market_hours=ALWAYS_OPEN) as gw:
        yield gw


@pytest.fixture
async def make(gateway: FakeGateway) -> AsyncIterator[Make]:
    made: list[IBConnectionManager] = []

    async def start(**options: Any) -> IBConnectionManager:
        options.setdefault("stale_after", STALE)
        manager = IBConnectionManager(port=gateway.port, **fast_settings(**options))
        made.append(manager)
        await manager.start()
        await manager.wait_connected(timeout=40 * T)
        return manager

    yield start
    for manager in made:
        await manager.stop()


async def streaming(ticker: Ticker, count: int = 3) -> None:
    seen: list[int] = []
    ticker.updateEvent += lambda t: seen.append(1)
    await wait_until(lambda: len(seen) >= count, timeout=40 * T)


def req_id(manager: IBConnectionManager, number: int) -> int:
    found = manager.data.feeds[number - 1].req_id
    assert found is not None
    return found


async def test_a_silent_stream_is_re_requested_alone(make: Make, gateway: FakeGateway) -> None:
    manager = await make()
    quiet, busy = manager.data.market_data(AAPL), manager.data.market_data(MSFT)
    await streaming(quiet)
    with log_lines("WARNING") as lines:
        gateway.silence_stream(req_id(manager, 1))
        await wait_until(lambda: manager.data.feeds[0].resubscribes == 1, timeout=40 * T)
        await streaming(quiet)  # the same Ticker streams again
    assert manager.data.feeds[1].resubscribes == 0  # the other was not touched
    assert [line for line in lines if "silent" in line] == [
        line for line in lines if "AAPL (265598)" in line]  # fmt: skip  logged with its contract
    assert manager.stats.reconnects == 0
    assert gateway.live_request_counts()[(1, "market_data", AAPL.conId)] == 1
    await streaming(busy)


async def test_still_silent_it_costs_one_reconnect_then_it_is_dead(
    make: Make, gateway: FakeGateway
) -> None:
    manager = await make(max_resubscribes=2)
    ticker = manager.data.market_data(AAPL)
    await streaming(ticker)
    gateway.silence_instrument(AAPL.conId)
    await wait_until(lambda: manager.stats.reconnects == 1, timeout=200 * T)
    feed = manager.data.feeds[0]
    assert feed.resubscribes >= 2
    await wait_until(lambda: feed.state is FeedState.DEAD, timeout=200 * T)
    assert manager.stats.reconnects == 1  # once, not a loop
    health = await manager.connection_health()
    assert health["data"]["dead"] == 1
    assert health["subscriptions"][0]["state"] == "dead"
    gateway.silence_instrument(AAPL.conId, on=False)
    before = feed.resubscribes
    await gateway.drop_all()  # a later reconnect replays it: data flows, it lives again
    await reconnected(manager, 2)
    await streaming(ticker)
    assert feed.state is FeedState.STREAMING
    assert feed.resubscribes == before


async def test_a_farm_flap_re_requests_only_that_farms_silent_feeds(
    make: Make, gateway: FakeGateway
) -> None:
    manager = await make(stale_after=None)
    ticker = manager.data.market_data(AAPL)
    pnl = manager.data.pnl("DU123456")
    await streaming(ticker)
    gateway.farm_flap("usfarm", 4 * T)
    await wait_until(lambda: manager.data.feeds[0].resubscribes == 1, timeout=40 * T)
    await streaming(ticker)
    assert manager.data.feeds[1].resubscribes == 0  # PnL is on no market-data farm
    assert manager.stats.reconnects == 0  # a farm is not the socket
    assert gateway.live_request_counts()[(1, "market_data", AAPL.conId)] == 1
    assert (await manager.connection_health())["data"]["farm_flaps"] == 1
    assert pnl is manager.data.feeds[1].handle


async def test_a_broken_farm_is_not_judged_stale_meanwhile(
    make: Make, gateway: FakeGateway
) -> None:
    manager = await make()
    ticker = manager.data.market_data(AAPL)
    await streaming(ticker)
    gateway.farm_flap("usfarm", 3 * STALE)
    await wait_until(lambda: manager.data.feeds[0].resubscribes == 1, timeout=100 * T)
    assert manager.data.feeds[0].failures == 0  # re-requested for the farm, not for silence
    await streaming(ticker)


async def test_10182_re_requests_that_feed(make: Make, gateway: FakeGateway) -> None:
    manager = await make(stale_after=None)
    ticker = manager.data.market_data(AAPL)
    await streaming(ticker)
    gateway.fail_live_updates(req_id(manager, 1))
    await wait_until(lambda: manager.data.feeds[0].resubscribes == 1, timeout=40 * T)
    await streaming(ticker)
    assert manager.data.feeds[0].last_error is not None
    assert manager.data.feeds[0].last_error.startswith("10182")


async def test_a_competing_session_is_one_episode_and_not_retried_in_a_loop(
    make: Make, gateway: FakeGateway
) -> None:
    manager = await make()
    tickers = [manager.data.market_data(AAPL), manager.data.market_data(MSFT)]
    await streaming(tickers[0])
    with log_lines("WARNING") as lines:
        gateway.competing_session()
        await wait_until(lambda: all(f.state is FeedState.COMPETING
                                     for f in manager.data.feeds), timeout=40 * T)  # fmt: skip
        resubscribes = [f.resubscribes for f in manager.data.feeds]
        probes = manager.stats.probes_sent
        await wait_until(lambda: manager.stats.probes_sent >= probes + 2 * STALE / (2 * T),
                         timeout=100 * T)  # fmt: skip  two stale_after spans, silent
    assert sum("competing" in line for line in lines) == 1  # one burst, one line
    health = await manager.connection_health()
    assert health["data"]["competing_sessions"] == 1
    assert [f.resubscribes for f in manager.data.feeds] == resubscribes  # no loop
    assert manager.stats.reconnects == 0


async def test_101_at_the_line_limit_is_reported_once(gateway: FakeGateway) -> None:
    gateway.pacing_rules = PacingLimits(market_data_lines=1)  # TWS uses lines of its own
    manager = IBConnectionManager(port=gateway.port, stale_after=STALE, **fast_settings())
    try:
        await manager.start()
        await manager.wait_connected(timeout=40 * T)
        manager.data.market_data(AAPL)
        refused = manager.data.market_data(MSFT)
        feed = manager.data.feeds[1]
        await wait_until(lambda: feed.state is FeedState.REFUSED, timeout=40 * T)
        assert refused is feed.handle
        assert (await manager.connection_health())["data"]["refusals"] == 1
        assert feed.last_error is not None
        assert feed.last_error.startswith("101")
        requests = feed.resubscribes
        await asyncio.sleep(2 * STALE)  # longer than stale_after: still not asked again
        assert feed.resubscribes == requests  # not retried in a loop
    finally:
        await manager.stop()


async def test_a_closed_market_is_not_an_alarm(gateway: FakeGateway, make: Make) -> None:
    gateway.set_market_hours(MarketHours("UTC", ("0000", "0001"), ("0000", "0001")))
    manager = await make()
    ticker = manager.data.market_data(AAPL)
    await streaming(ticker)
    gateway.silence_stream(req_id(manager, 1))
    probes = manager.stats.probes_sent
    await wait_until(lambda: manager.stats.probes_sent >= probes + 3 * STALE / (2 * T),
                     timeout=100 * T)  # fmt: skip  three stale_after spans, silent
    assert manager.data.feeds[0].resubscribes == 0


async def test_only_a_stream_familys_farm_notice_reaches_the_watch() -> None:
    """A sec-def farm serves look-ups, no stream: its notice marks nothing down (the farm
    notices' parsing is in tests/connection/test_system_messages.py)."""
    manager = IBConnectionManager(port=1, stale_after=None)
    manager.data.farm(FarmStatus("sec_def", "secdefnj", ok=False))
    assert manager.data.registry.farm_flaps == 0
    manager.data.farm(FarmStatus("market_data", "usfarm", ok=False))
    assert manager.data.registry.farm_flaps == 1
    await manager.stop()
