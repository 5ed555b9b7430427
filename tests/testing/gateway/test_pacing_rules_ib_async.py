"""IB's pacing rules at the fake gateway, hit by a naive unmodified ib_async client (no scheduler):
every rule gets IB's code and text for the request's id (``errorEvent``), counted per login."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from ib_async import IB, Contract, RealTimeBarList

from tests.helpers import T
from tests.testing.helpers import wait_until
from v6.errors import ConfigError
from v6.protocol.codes import (
    TEXT_HISTORICAL_PACING,
    TEXT_MAX_TICKERS,
    TEXT_OPEN_HISTORICAL_LIMIT,
    TEXT_REALTIME_PACING,
)
from v6.testing import FakeGateway, PacingLimits

MakeGateway = Callable[..., Awaitable[FakeGateway]]
IBFactory = Callable[[], IB]
Errors = list[tuple[int, int, str]]

#: Only the rule under test is on (each test names it).
OFF = PacingLimits(identical_window=None, same_contract=None, historical=None,
                   open_historical=None, realtime_bars=None, market_data_lines=None)  # fmt: skip


def aapl() -> Contract:
    return Contract(conId=265598, symbol="AAPL", secType="STK", exchange="SMART", currency="USD")


async def connect(make: IBFactory, gw: FakeGateway, client_id: int = 1) -> tuple[IB, Errors]:
    ib = make()
    errors: Errors = []

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        if req_id != -1:  # not a farm notice
            errors.append((req_id, code, text))

    ib.errorEvent += on_error
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=2)
    return ib, errors


async def history(ib: IB, duration: str = "30 S", what: str = "TRADES", **kw: object) -> int:
    """Bars of one historical request (0 if it was refused)."""
    bars = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(aapl(), "", duration, "5 secs", what, False, **kw), 2
    )
    return len(bars)


def last_request_id(ib: IB) -> int:
    return ib.client._reqIdSeq - 1  # the id ib_async gave its latest request


async def test_identical_request_within_15_s_gets_162(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway()  # IB's defaults
    ib, errors = await connect(ib_client, gw)
    assert await history(ib) == 6
    assert await history(ib) == 0
    assert errors == [(last_request_id(ib), 162, TEXT_HISTORICAL_PACING)]
    assert await history(ib, duration="60 S") == 12  # not identical
    assert gw.pacing_errors == {162: 1}


async def test_sixth_request_for_one_contract_within_2_s_gets_162(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(pacing_rules=PacingLimits(identical_window=None))
    ib, errors = await connect(ib_client, gw)
    served = await asyncio.gather(*(history(ib, f"{30 + 5 * n} S") for n in range(6)))
    assert sorted(served).count(0) == 1
    assert [(code, text) for _, code, text in errors] == [(162, TEXT_HISTORICAL_PACING)]
    assert await history(ib, what="MIDPOINT") == 6  # another tick type


async def test_historical_window_and_its_scale(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    window = 12 * T  # 10 min scaled
    limits = PacingLimits(identical_window=None, same_contract=None, historical=2,
                          scale=window / 600)  # fmt: skip
    gw = await make_gateway(pacing_rules=limits)
    ib, errors = await connect(ib_client, gw)
    assert [await history(ib, d) for d in ("30 S", "60 S", "90 S")] == [6, 12, 0]
    assert [(code, text) for _, code, text in errors] == [(162, TEXT_HISTORICAL_PACING)]
    await asyncio.sleep(window)
    assert await history(ib, "90 S") == 18


async def test_open_historical_cap_gets_322_until_one_closes(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(
        pacing_rules=PacingLimits(identical_window=None, same_contract=None, open_historical=2),
        historical_latency=6 * T,
    )
    ib, errors = await connect(ib_client, gw)
    # a kept-up-to-date request stays open until cancelled
    live = await asyncio.wait_for(ib.reqHistoricalDataAsync(
        aapl(), "", "30 S", "5 secs", "TRADES", False, keepUpToDate=True), 2)  # fmt: skip
    now = time.time()
    assert live[-1].date.timestamp() == pytest.approx(now // 5 * 5, abs=5)  # the current bar
    slow = asyncio.ensure_future(history(ib, "60 S"))  # open until its reply, 6 T from now
    await wait_until(lambda: gw.open_historical_requests == 2, what="two open")
    assert await history(ib, "90 S") == 0
    assert errors[-1][1:] == (322, TEXT_OPEN_HISTORICAL_LIMIT)
    assert await slow == 12
    assert gw.open_historical_requests == 1
    ib.cancelHistoricalData(live)
    await wait_until(lambda: gw.open_historical_requests == 0, what="cancelled")
    assert gw.pacing_errors == {322: 1}


async def test_realtime_bars_are_served_and_the_61st_in_ten_minutes_gets_420(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(pacing_rules=PacingLimits(realtime_bars=2), realtime_bar_interval=T)
    ib, errors = await connect(ib_client, gw)
    first = ib.reqRealTimeBars(aapl(), 5, "TRADES", False)
    await wait_until(lambda: len(first) >= 3, what="three bars")
    assert [b.time.timestamp() % 5 for b in first] == [0, 0, 0]
    times = [b.time for b in first]
    assert times == sorted(set(times))  # one bar per 5 s, never repeated
    assert all(b.low <= min(b.open_, b.close) <= max(b.open_, b.close) <= b.high for b in first)
    ib.cancelRealTimeBars(first)
    second = ib.reqRealTimeBars(aapl(), 5, "MIDPOINT", False)
    third: RealTimeBarList = ib.reqRealTimeBars(aapl(), 5, "BID", False)
    await wait_until(lambda: bool(errors), what="420")
    assert errors == [(third.reqId, 420, TEXT_REALTIME_PACING)]
    await wait_until(lambda: len(second) >= 1, what="the second streams")
    assert gw.market_data_lines == 1  # the cancelled one and the refused one hold none


async def test_market_data_lines_beyond_the_limit_get_101(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(pacing_rules=PacingLimits(market_data_lines=2))
    ib, errors = await connect(ib_client, gw)
    ib.reqMktData(aapl())
    ib.reqRealTimeBars(aapl(), 5, "TRADES", False)
    await wait_until(lambda: gw.market_data_lines == 2, what="two lines")
    other = Contract(conId=272093, symbol="MSFT", secType="STK", exchange="SMART", currency="USD")
    ticker = ib.reqMktData(other)
    await wait_until(lambda: bool(errors), what="101")
    assert errors == [(last_request_id(ib), 101, TEXT_MAX_TICKERS)]
    assert ticker.bid != ticker.bid  # nothing streams for it
    snapshot = await asyncio.wait_for(ib.reqTickersAsync(other), 2)  # a snapshot holds no line
    assert snapshot[0].ask > 0
    ib.cancelMktData(aapl())
    await wait_until(lambda: gw.market_data_lines == 1, what="a line freed")
    ib.reqMktData(other)
    await wait_until(lambda: gw.market_data_lines == 2, what="the line taken")
    assert gw.pacing_errors == {101: 1}


async def test_two_clients_share_one_budget_and_a_leaving_client_frees_its_lines(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(pacing_rules=PacingLimits(market_data_lines=1))
    first, _ = await connect(ib_client, gw, client_id=1)
    second, errors = await connect(ib_client, gw, client_id=2)
    assert await history(first) == 6
    assert await history(second) == 0  # identical to the other client's request
    first.reqMktData(aapl())
    await wait_until(lambda: gw.market_data_lines == 1, what="the line taken")
    second.reqMktData(aapl())
    await wait_until(lambda: len(errors) == 2, what="101")
    assert [code for _, code, _ in errors] == [162, 101]
    first.disconnect()
    await wait_until(lambda: gw.market_data_lines == 0, what="the line freed")
    second.reqMktData(aapl())
    await wait_until(lambda: gw.market_data_lines == 1, what="the line taken again")


@pytest.mark.parametrize("rules", ["constructor", "runtime"])
async def test_none_turns_ibs_rules_off(
    make_gateway: MakeGateway, ib_client: IBFactory, rules: str
) -> None:
    gw = await make_gateway(pacing_rules=None if rules == "constructor" else PacingLimits())
    if rules == "runtime":
        gw.pacing_rules = None
    assert gw.pacing_rules is None
    ib, errors = await connect(ib_client, gw)
    assert [await history(ib) for _ in range(7)] == [6] * 7
    assert errors == []
    assert not gw.pacing_errors


async def test_each_rule_is_off_alone(make_gateway: MakeGateway, ib_client: IBFactory) -> None:
    gw = await make_gateway(pacing_rules=OFF)
    ib, errors = await connect(ib_client, gw)
    assert [await history(ib) for _ in range(7)] == [6] * 7
    assert errors == []
    gw.pacing_rules = PacingLimits(identical_window=None, same_contract=None)
    assert await history(ib) == 6


@pytest.mark.parametrize("bad", ["scale=0.01", 0.01, {"historical": 3}])
def test_pacing_rules_are_validated(bad: object) -> None:
    with pytest.raises(ConfigError, match="pacing_rules must be a PacingLimits or None"):
        FakeGateway(pacing_rules=bad)  # type: ignore[arg-type]
    gw = FakeGateway()
    with pytest.raises(ConfigError, match="pacing_rules must be a PacingLimits or None"):
        gw.pacing_rules = bad  # type: ignore[assignment]
    assert gw.pacing_rules == PacingLimits()
    with pytest.raises(ConfigError, match="scale"):
        PacingLimits(scale=0)
