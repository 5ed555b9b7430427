"""Live data as TWS serves it, to an unmodified ib_async client: tick-by-tick, PnL, bars kept up
to date, contract details with market hours; and the live-data faults (a silent stream, a farm
flap, a competing session, 10182) with what the gateway shows of its live requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ib_async import IB, BarDataList, Contract

from tests.helpers import FakeClock, T
from tests.testing.helpers import wait_until
from v6.protocol.codes import TEXT_COMPETING_LIVE_SESSION, TEXT_LIVE_UPDATES_FAILED
from v6.testing import (
    ALWAYS_OPEN,
    AccountState,
    FakeGateway,
    LiveRequest,
    Position,
    StreamKind,
)

MakeGateway = Callable[..., Awaitable[FakeGateway]]
IBFactory = Callable[[], IB]
Errors = list[tuple[int, int, str]]
NOW = 1_795_518_499.0  # Tuesday 24 November 2026, 11:08:19 UTC
AAPL, MSFT = 265598, 272093


def stock(con_id: int = AAPL, symbol: str = "AAPL") -> Contract:
    return Contract(conId=con_id, symbol=symbol, secType="STK", exchange="SMART", currency="USD")


async def connect(make: IBFactory, gw: FakeGateway, client_id: int = 1) -> tuple[IB, Errors]:
    ib = make()
    errors: Errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=2)
    errors.clear()  # the farm notices of the start-up
    return ib, errors


async def request_again(ib: IB, gw: FakeGateway) -> None:
    """Cancel AAPL's market data and request it again: the new request flows."""
    ib.cancelMktData(stock())
    ib.reqMktData(stock())

    def flows() -> bool:
        found = [
            r for r in gw.live_requests if (r.kind, r.instrument) == (StreamKind.MARKET_DATA, AAPL)
        ]
        return len(found) == 1 and found[0].flowing and found[0].updates > 1

    await wait_until(flows, what="requested again, it flows")


def live(gw: FakeGateway, kind: StreamKind, instrument: int = AAPL) -> LiveRequest:
    [request] = [r for r in gw.live_requests if r.kind is kind and r.instrument == instrument]
    return request


async def test_tick_by_tick_of_every_type(make_gateway: MakeGateway, ib_client: IBFactory) -> None:
    gw = await make_gateway(tick_rate=100.0, wall_clock=lambda: NOW)
    ib, errors = await connect(ib_client, gw)
    tickers = {
        kind: ib.reqTickByTickData(stock(con_id, kind), kind)
        for con_id, kind in enumerate(("Last", "AllLast", "BidAsk", "MidPoint"), 1)
    }
    await wait_until(lambda: all(len(t.tickByTicks) >= 2 for t in tickers.values()), what="ticks")
    last, all_last = tickers["Last"].tickByTicks[0], tickers["AllLast"].tickByTicks[:3]
    assert (last.tickType, last.exchange) == (1, "NASDAQ")
    assert last.price > 0
    assert last.size > 0
    assert len({t.exchange for t in all_last}) > 1  # AllLast prints on every exchange
    bid_ask = tickers["BidAsk"].tickByTicks[0]
    assert 0 < bid_ask.bidPrice < bid_ask.askPrice
    assert tickers["MidPoint"].tickByTicks[0].midPoint > 0
    assert gw.market_data_lines == 4
    for kind, ticker in tickers.items():
        ib.cancelTickByTickData(ticker.contract, kind)
    await wait_until(lambda: gw.market_data_lines == 0, what="cancelled")
    assert errors == []


async def test_pnl_and_pnl_of_one_position(make_gateway: MakeGateway, ib_client: IBFactory) -> None:
    state = AccountState(accounts=("DU1",), positions=(
        Position("DU1", "AAPL", 100, 150.0, market_price=151.0, con_id=AAPL, realized_pnl=20.0),
    ))  # fmt: skip
    gw = await make_gateway(account_state=state, pnl_interval=T)
    ib, errors = await connect(ib_client, gw)
    pnl = ib.reqPnL("DU1")
    single = ib.reqPnLSingle("DU1", "", AAPL)
    await wait_until(lambda: pnl.unrealizedPnL == 100.0 and single.value == 15_100.0, what="PnL")
    assert (pnl.dailyPnL, pnl.realizedPnL) == (120.0, 20.0)
    assert (single.position, single.unrealizedPnL, single.realizedPnL) == (100, 100.0, 20.0)
    first = gw.stream_updates(pnl_request_id(gw, StreamKind.PNL), kind=StreamKind.PNL)
    await wait_until(
        lambda: gw.stream_updates(pnl_request_id(gw, StreamKind.PNL)) >= first + 2, what="updates"
    )
    ib.cancelPnL("DU1")
    ib.cancelPnLSingle("DU1", "", AAPL)
    await wait_until(lambda: not gw.live_requests, what="cancelled")
    assert errors == []


def pnl_request_id(gw: FakeGateway, kind: StreamKind) -> int:
    [request] = [r for r in gw.live_requests if r.kind is kind]
    return request.req_id


async def test_kept_up_to_date_bars_agree_with_a_later_request(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    clock = FakeClock(NOW)
    gw = await make_gateway(wall_clock=clock, realtime_bar_interval=T)
    ib, _ = await connect(ib_client, gw)
    bars: BarDataList = await asyncio.wait_for(ib.reqHistoricalDataAsync(
        stock(), "", "30 S", "5 secs", "TRADES", False, keepUpToDate=True), 2)  # fmt: skip
    assert [b.date.timestamp() for b in bars] == [NOW - 29 + 5 * n for n in range(6)]
    volume = bars[-1].volume  # the current bar, 4 of its 5 seconds gone
    new_bars: list[bool] = []
    bars.updateEvent += lambda _, has_new_bar: new_bars.append(has_new_bar)
    clock.advance(0.5)
    await wait_until(lambda: len(new_bars) >= 1, what="an update of the current bar")
    assert new_bars[0] is False  # the same bar, grown
    assert bars[-1].volume > volume
    clock.advance(5)  # the next bar starts
    await wait_until(lambda: True in new_bars, what="a new bar")
    assert bars[-1].date.timestamp() == NOW + 1
    later = await ib.reqHistoricalDataAsync(stock(), "", "60 S", "5 secs", "TRADES", False)
    by_time = {b.date: (b.open, b.high, b.low, b.close, b.volume) for b in later}
    finished = bars[:-2]  # the last two were seen while being built
    assert all(by_time[b.date] == (b.open, b.high, b.low, b.close, b.volume) for b in finished)
    assert later[-1].date == bars[-2].date  # a later request has that bar, finished
    assert later[-1].volume > bars[-2].volume
    ib.cancelHistoricalData(bars)
    await wait_until(lambda: gw.open_historical_requests == 0, what="cancelled")


async def test_contract_details_report_the_market_hours(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(wall_clock=lambda: NOW)
    ib, _ = await connect(ib_client, gw)
    [details] = await asyncio.wait_for(ib.reqContractDetailsAsync(stock()), 2)
    assert (details.contract.conId, details.contract.symbol, details.timeZoneId) == (
        AAPL, "AAPL", "US/Eastern",
    )  # fmt: skip
    assert details.tradingHours.split(";")[1] == "20261124:0400-20261124:2000"
    [monday, *_] = details.liquidSessions()  # the day before first: Monday the 23rd
    assert (monday.start.day, monday.start.hour, monday.start.minute, monday.end.hour) == (
        23, 9, 30, 16,
    )  # fmt: skip
    assert "20261128:CLOSED" in details.liquidHours  # a Saturday
    gw.set_market_hours(ALWAYS_OPEN, "MSFT")
    unqualified = Contract(symbol="MSFT", secType="STK", exchange="SMART", currency="USD")
    [msft] = await ib.reqContractDetailsAsync(unqualified)
    assert msft.contract.conId > 0
    assert (msft.timeZoneId, msft.liquidHours.split(";")[1]) == (
        "UTC", "20261124:0000-20261125:0000",
    )  # fmt: skip
    [qualified] = await ib.qualifyContractsAsync(unqualified)
    assert qualified.conId == msft.contract.conId


async def test_a_silenced_stream_stops_alone_and_a_new_request_flows(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(tick_rate=100.0)
    ib, errors = await connect(ib_client, gw)
    ib.reqMktData(stock())
    other = ib.reqMktData(stock(MSFT, "MSFT"))
    await wait_until(lambda: len(gw.live_requests) == 2, what="two streams")
    silenced = live(gw, StreamKind.MARKET_DATA).req_id
    gw.silence_stream(silenced)
    await asyncio.sleep(T)
    frozen = gw.stream_updates(silenced)
    seen = other.volume
    await asyncio.sleep(3 * T)
    assert gw.stream_updates(silenced) == frozen
    assert other.volume > seen  # the other stream flows
    assert await asyncio.wait_for(ib.reqCurrentTimeAsync(), 1)  # probes are answered
    assert not live(gw, StreamKind.MARKET_DATA).flowing
    await request_again(ib, gw)
    assert gw.live_request_counts()[(1, StreamKind.MARKET_DATA, AAPL)] == 1
    assert errors == []


async def test_silence_switched_off_lets_the_stream_flow(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(pnl_interval=T)
    ib, _ = await connect(ib_client, gw)
    ib.reqPnL("DU1234567")
    await wait_until(lambda: bool(gw.live_requests), what="the PnL stream")
    req_id = gw.live_requests[0].req_id
    gw.silence_stream(req_id, client_id=1)
    frozen = gw.stream_updates(req_id)
    await asyncio.sleep(3 * T)
    assert gw.stream_updates(req_id) == frozen
    gw.silence_stream(req_id, client_id=1, on=False)
    await wait_until(lambda: gw.stream_updates(req_id) > frozen, what="it flows again")


async def test_a_market_data_farm_flap_stops_its_streams_until_requested_again(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(tick_rate=100.0, pnl_interval=T)
    ib, errors = await connect(ib_client, gw)
    ib.reqMktData(stock())
    bars = ib.reqRealTimeBars(stock(), 5, "TRADES", False)
    ib.reqPnL("DU1234567")  # on no farm
    await wait_until(lambda: len(gw.live_requests) == 3, what="three streams")
    gw.farm_flap("usfarm", 4 * T)
    await wait_until(lambda: bool(errors), what="2103")
    assert errors == [(-1, 2103, "Market data farm connection is broken:usfarm")]
    assert live(gw, StreamKind.MARKET_DATA).stopped
    assert live(gw, StreamKind.REALTIME_BARS).stopped
    assert live(gw, StreamKind.PNL, 0).flowing
    ticker = ib.reqMktData(stock(MSFT, "MSFT"))  # requested during the flap: waits for the farm
    await asyncio.sleep(T)
    assert not live(gw, StreamKind.MARKET_DATA, MSFT).flowing
    await wait_until(lambda: len(errors) == 2, what="2104")
    assert errors[1] == (-1, 2104, "Market data farm connection is OK:usfarm")
    await wait_until(lambda: ticker.volume > 0, what="the waiting request flows")
    assert live(gw, StreamKind.MARKET_DATA).stopped  # the old ones stay silent
    assert not bars
    await request_again(ib, gw)


async def test_an_hmds_farm_flap_holds_historical_requests(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(realtime_bar_interval=T)
    ib, errors = await connect(ib_client, gw)
    kept = await ib.reqHistoricalDataAsync(stock(), "", "30 S", "5 secs", "TRADES", False,
                                           keepUpToDate=True)  # fmt: skip
    gw.farm_flap("ushmds", 4 * T)
    asked = asyncio.get_running_loop().time()
    bars = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(stock(), "", "60 S", "5 secs", "TRADES", False), 2
    )
    assert len(bars) == 12
    assert asyncio.get_running_loop().time() - asked >= 3 * T  # answered once the farm was back
    assert [e[1:] for e in errors] == [
        (2105, "HMDS data farm connection is broken:ushmds"),
        (2106, "HMDS data farm connection is OK:ushmds"),
    ]
    assert live(gw, StreamKind.HISTORICAL).stopped
    assert kept  # its updates stopped; the bars it had stay


async def test_a_competing_session_stops_every_market_data_subscription(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(tick_rate=100.0)
    ib, errors = await connect(ib_client, gw)
    ib.reqMktData(stock())
    ib.reqRealTimeBars(stock(), 5, "TRADES", False)
    await wait_until(lambda: len(gw.live_requests) == 2, what="two streams")
    ids = {r.req_id for r in gw.live_requests}
    gw.competing_session()
    await wait_until(lambda: len(errors) >= 10, what="the burst")
    assert {(code, text) for _, code, text in errors} == {(10197, TEXT_COMPETING_LIVE_SESSION)}
    assert {req_id for req_id, _, _ in errors} == ids
    assert all(r.stopped for r in gw.live_requests)
    assert gw.faults.active == ()  # an event, over at once
    await request_again(ib, gw)


async def test_failed_live_updates_stop_one_stream(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(tick_rate=100.0)
    ib, errors = await connect(ib_client, gw)
    ib.reqMktData(stock())
    ib.reqMktData(stock(MSFT, "MSFT"))
    await wait_until(lambda: len(gw.live_requests) == 2, what="two streams")
    failed = live(gw, StreamKind.MARKET_DATA).req_id
    gw.fail_live_updates(failed)
    await wait_until(lambda: bool(errors), what="10182")
    assert errors == [(failed, 10182, TEXT_LIVE_UPDATES_FAILED)]
    assert live(gw, StreamKind.MARKET_DATA).stopped
    assert live(gw, StreamKind.MARKET_DATA, MSFT).flowing
    gw.fail_live_updates(failed)  # an event: it happens again
    await wait_until(lambda: len(errors) == 2, what="10182 again")


async def test_1101_ends_every_live_request(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(tick_rate=100.0)
    ib, errors = await connect(ib_client, gw)
    ib.reqMktData(stock())
    ib.reqPnL("DU1234567")
    await wait_until(lambda: len(gw.live_requests) == 2, what="two live requests")
    gw.broadcast_error(1102)  # data maintained: they stay
    assert len(gw.live_requests) == 2
    gw.broadcast_error(1101)  # data lost: each must be requested again
    assert gw.live_requests == ()
    assert gw.market_data_lines == 0
    await request_again(ib, gw)
    await wait_until(lambda: len(errors) == 2, what="1102 and 1101")
    assert [code for _, code, _ in errors] == [1102, 1101]
