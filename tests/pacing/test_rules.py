"""Each of IB's pacing rules, enforced by the gateway, hit by a workload sent straight through
``manager.ib``: the scheduler holds what would be refused, so the gateway answers no 162, 322,
420 or 101 and every request completes. (A naive client gets each error:
tests/testing/gateway/test_pacing_rules_ib_async.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from ib_async import IB, BarDataList, Contract, Stock

from tests.helpers import T, fast_settings, wait_until
from v6.manager import IBConnectionManager
from v6.protocol.pacing import PacingLimits
from v6.testing import FakeGateway

#: Only the rule under test is on (each test names it); windows scaled so 10 min = 1.2 s.
OFF = PacingLimits(identical_window=None, same_contract=None, historical=None,
                   open_historical=None, realtime_bars=None, market_data_lines=None,
                   scale=0.002)  # fmt: skip
Make = Callable[[PacingLimits], Any]


def stock(con_id: int = 265598) -> Contract:
    return Stock(f"S{con_id}", "SMART", "USD", conId=con_id)


@pytest.fixture
async def pair() -> AsyncIterator[Make]:
    """``await pair(limits)``: a gateway enforcing ``limits`` and a live manager pacing by them."""
    opened: list[tuple[FakeGateway, IBConnectionManager]] = []

    async def make(limits: PacingLimits, **gateway: Any) -> tuple[FakeGateway, IBConnectionManager]:
        gw = FakeGateway(port=0, pacing_rules=limits, **gateway)
        await gw.start()
        manager = IBConnectionManager(port=gw.port, pacing=limits, stale_after=None,
                                      **fast_settings(heartbeat_timeout=20 * T))  # fmt: skip
        opened.append((gw, manager))
        await manager.start()
        await manager.wait_connected(timeout=40 * T)
        return gw, manager

    yield make
    for gw, manager in opened:
        await manager.stop()
        await gw.stop()


def history(ib: IB, contract: Contract, end: str = "", what: str = "TRADES",
            bar: str = "5 secs", keep: bool = False) -> Any:  # fmt: skip
    return ib.reqHistoricalDataAsync(contract, end, "60 S", bar, what, False,
                                     keepUpToDate=keep, timeout=0)  # fmt: skip


async def all_answered(requests: list[Any]) -> list[BarDataList]:
    bars: list[BarDataList] = await asyncio.wait_for(asyncio.gather(*requests), 200 * T)
    return bars


async def test_identical_requests_wait_out_the_window(pair: Make) -> None:
    gw, manager = await pair(replace(OFF, identical_window=15.0))
    bars = await all_answered([history(manager.ib, stock()) for _ in range(3)])
    assert all(bars)
    assert gw.pacing_errors == {}


async def test_the_sixth_request_for_a_contract_waits(pair: Make) -> None:
    gw, manager = await pair(replace(OFF, same_contract=5))
    ends = [f"20261203 15:{minute:02d}:00 UTC" for minute in range(8)]
    bars = await all_answered([history(manager.ib, stock(), end) for end in ends])
    assert all(bars)
    assert gw.pacing_errors == {}


async def test_the_historical_window_with_bid_ask_counting_twice(pair: Make) -> None:
    gw, manager = await pair(replace(OFF, historical=6))
    requests = [history(manager.ib, stock(i), what="BID_ASK" if i % 2 else "TRADES")
                for i in range(1, 7)]  # fmt: skip  9 units over a window of 6
    assert all(await all_answered(requests))
    assert gw.pacing_errors == {}
    assert (await manager.connection_health())["pacing"]["waited"] >= 2


async def test_open_requests_wait_for_one_to_end(pair: Make) -> None:
    gw, manager = await pair(replace(OFF, open_historical=2),
                             historical_latency=4 * T)  # fmt: skip
    assert all(await all_answered([history(manager.ib, stock(i)) for i in range(1, 6)]))
    assert gw.pacing_errors == {}


async def test_keep_up_to_date_requests_hold_their_slot_until_cancelled(pair: Make) -> None:
    gw, manager = await pair(replace(OFF, open_historical=2))
    live = await all_answered([history(manager.ib, stock(i), keep=True) for i in (1, 2)])
    third = asyncio.ensure_future(history(manager.ib, stock(3)))
    await asyncio.sleep(4 * T)
    assert not third.done()  # held: two open requests already
    manager.ib.cancelHistoricalData(live[0])
    assert await asyncio.wait_for(third, 40 * T)
    assert gw.pacing_errors == {}


async def test_realtime_bars_wait_out_their_window(pair: Make) -> None:
    gw, manager = await pair(replace(OFF, realtime_bars=2),
                             realtime_bar_interval=T)  # fmt: skip
    subscriptions = [manager.ib.reqRealTimeBars(stock(i), 5, "TRADES", False)
                     for i in range(1, 5)]  # fmt: skip
    await wait_until(lambda: all(subscriptions), timeout=200 * T)  # every one streams
    assert gw.pacing_errors == {}


async def test_market_data_beyond_the_lines_waits_for_a_free_one(pair: Make) -> None:
    gw, manager = await pair(replace(OFF, market_data_lines=2))
    tickers = [manager.ib.reqMktData(stock(i)) for i in range(1, 4)]
    await asyncio.sleep(4 * T)
    assert gw.market_data_lines == 2
    assert tickers[2].bid != tickers[2].bid  # NaN: the third has no line, no data
    manager.ib.cancelMktData(tickers[0].contract)
    await wait_until(lambda: tickers[2].bid > 0, timeout=40 * T)  # it got the freed line
    assert gw.market_data_lines == 2
    assert gw.pacing_errors == {}
