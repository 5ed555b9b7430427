"""IB's official client decodes the pacing errors, the real-time bars and the kept-up-to-date bars
of the fake gateway (ibapi drops a message with one field too many: every test here fails on any
such drop or any ibapi error log)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from ibapi.contract import Contract

from tests.helpers import T
from tests.testing.gateway.data_clients import IBApiDataClient
from tests.testing.helpers import wait_until
from v6.protocol.codes import (
    TEXT_HISTORICAL_PACING,
    TEXT_MAX_TICKERS,
    TEXT_OPEN_HISTORICAL_LIMIT,
    TEXT_REALTIME_PACING,
)
from v6.testing import FakeGateway, PacingLimits

MakeGateway = Callable[..., Awaitable[FakeGateway]]
Factory = Callable[[], IBApiDataClient]


@pytest.fixture(autouse=True)
def no_dropped_messages(ibapi_log: pytest.LogCaptureFixture) -> object:
    yield
    errors = [r.getMessage() for r in ibapi_log.records if r.name.startswith("ibapi")]
    assert errors == [], errors


def aapl() -> Contract:
    c = Contract()
    c.conId, c.symbol, c.secType, c.exchange, c.currency = 265598, "AAPL", "STK", "SMART", "USD"
    return c


async def ready(gw: FakeGateway, make: Factory, client_id: int = 1) -> IBApiDataClient:
    app = make()
    app.start(gw.port, client_id)
    await app.wait_for("nextValidId")
    for _ in range(3):
        await app.wait_for("error")  # the farm notices
    return app


def history(app: IBApiDataClient, req_id: int, duration: str = "30 S", keep: bool = False) -> None:
    app.reqHistoricalData(req_id, aapl(), "", duration, "5 secs", "TRADES", 0, 1, keep, [])


async def test_pacing_errors_decode(make_gateway: MakeGateway, ibapi_data_client: Factory) -> None:
    limits = PacingLimits(same_contract=None, open_historical=1, realtime_bars=1,
                          market_data_lines=2)  # fmt: skip
    gw = await make_gateway(pacing_rules=limits)
    app = await ready(gw, ibapi_data_client)
    history(app, 1, keep=True)  # stays open
    assert (await app.wait_for("historicalDataEnd"))[0] == 1
    history(app, 2, duration="60 S")
    assert await app.wait_for("error") == (2, 322, TEXT_OPEN_HISTORICAL_LIMIT)
    app.cancelHistoricalData(1)
    await wait_until(lambda: gw.open_historical_requests == 0, what="cancelled")
    history(app, 3, keep=True)  # identical to request 1
    assert await app.wait_for("error") == (3, 162, TEXT_HISTORICAL_PACING)
    app.reqRealTimeBars(4, aapl(), 5, "TRADES", False, [])
    app.reqRealTimeBars(5, aapl(), 5, "MIDPOINT", False, [])
    assert await app.wait_for("error") == (5, 420, TEXT_REALTIME_PACING)
    app.reqMktData(6, aapl(), "", False, False, [])
    app.reqMktData(7, aapl(), "", False, False, [])
    assert await app.wait_for("error") == (7, 101, TEXT_MAX_TICKERS)
    assert gw.pacing_errors == {322: 1, 162: 1, 420: 1, 101: 1}


async def test_realtime_and_kept_up_to_date_bars_decode(
    make_gateway: MakeGateway, ibapi_data_client: Factory
) -> None:
    gw = await make_gateway(realtime_bar_interval=T, wall_clock=lambda: 1_795_518_499.0)
    app = await ready(gw, ibapi_data_client)
    app.reqRealTimeBars(1, aapl(), 5, "TRADES", False, [])
    bars = [await app.wait_for("realtimeBar") for _ in range(2)]
    assert [b[0] for b in bars] == [1, 1]
    assert bars[0][1] == 1_795_518_495  # the clock's 5-second boundary
    assert bars[1][1] - bars[0][1] == 5  # one 5-second bar after the other
    assert all(b[4] <= min(b[2], b[5]) <= max(b[2], b[5]) <= b[3] and b[6] > 0 for b in bars)
    app.cancelRealTimeBars(1)
    history(app, 2, keep=True)
    end = await app.wait_for("historicalDataEnd")
    assert end[0] == 2
    last = [e[1][1] for e in app.seen if e[0] == "historicalData"][-1]
    update = await app.wait_for("historicalDataUpdate")
    assert update[0] == 2
    assert update[1].date == last.date  # the current bar, as the reply ended with it
    assert (update[1].open, update[1].close) == (last.open, last.close)
    app.cancelHistoricalData(2)
    await wait_until(lambda: gw.open_historical_requests == 0, what="cancelled")
