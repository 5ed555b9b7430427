"""IB's official client (ibapi-stable 10.50, threaded) against the fake gateway, over real sockets.

ibapi drops a message whose field count is off by one and logs "diff len fields"; every test
here fails if any such line is logged (``ibapi_log``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from ibapi.contract import Contract

from tests.testing.helpers import IBApiClient, wait_until
from v6.testing import SYSTEM_MESSAGES, AccountState, FakeGateway, Position

MakeGateway = Callable[..., Awaitable[FakeGateway]]
IBApiFactory = Callable[[], IBApiClient]

STATE = AccountState(
    accounts=("DU111", "DU222"),
    positions=(Position("DU111", "AAPL", 100, 150.0, con_id=265598),),
)


@pytest.fixture(autouse=True)
def no_dropped_messages(ibapi_log: pytest.LogCaptureFixture) -> object:
    yield
    dropped = [r.getMessage() for r in ibapi_log.records if "diff len" in r.getMessage()]
    assert dropped == [], dropped
    errors = [r.getMessage() for r in ibapi_log.records if r.name.startswith("ibapi")]
    assert errors == [], errors


async def ready(gw: FakeGateway, make: IBApiFactory, client_id: int = 1) -> IBApiClient:
    app = make()
    app.start(gw.port, client_id)
    await app.wait_for("nextValidId")
    return app


def eurusd() -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "EUR", "CASH", "IDEALPRO", "USD"
    return c


async def test_connect_negotiates_178_and_gets_startup_messages(
    make_gateway: MakeGateway, ibapi_client: IBApiFactory
) -> None:
    gw = await make_gateway(account_state=STATE, next_order_id=17)
    app = ibapi_client()
    app.start(gw.port, 3)
    assert await app.wait_for("managedAccounts") == ("DU111,DU222",)
    assert await app.wait_for("nextValidId") == (17,)
    notices = [await app.wait_for("error") for _ in range(3)]
    assert [(n[0], n[1]) for n in notices] == [(-1, 2104), (-1, 2106), (-1, 2158)]
    assert notices[0][2] == SYSTEM_MESSAGES[2104]
    assert app.serverVersion() == 178  # ibapi 10.50 offers v100..226; the gateway caps at 178
    assert gw.client_ids == {3}


async def test_current_time(fake_gateway: FakeGateway, ibapi_client: IBApiFactory) -> None:
    app = await ready(fake_gateway, ibapi_client)
    app.reqCurrentTime()
    (epoch,) = await app.wait_for("currentTime")
    assert isinstance(epoch, int)
    assert epoch > 1_600_000_000


async def test_account_summary_and_the_322_limit(
    make_gateway: MakeGateway, ibapi_client: IBApiFactory
) -> None:
    gw = await make_gateway(account_state=STATE)
    app = await ready(gw, ibapi_client)
    app.drain()
    app.reqAccountSummary(11, "All", "NetLiquidation,BuyingPower")
    assert await app.wait_for("accountSummaryEnd") == (11,)
    rows = [e[1] for e in app.seen if e[0] == "accountSummary"]
    assert sorted((r[1], r[2]) for r in rows) == [
        ("DU111", "BuyingPower"), ("DU111", "NetLiquidation"),
        ("DU222", "BuyingPower"), ("DU222", "NetLiquidation"),
    ]  # fmt: skip
    app.reqAccountSummary(12, "All", "NetLiquidation")
    await app.wait_for("accountSummaryEnd")
    assert gw.active_account_summaries == 2

    app.seen.clear()
    app.reqAccountSummary(13, "All", "NetLiquidation")
    req_id, code, text = await app.wait_for("error")
    assert (req_id, code) == (13, 322)
    assert "Maximum number of account summary requests exceeded" in text
    app.reqCurrentTime()  # a marker: everything sent for request 13 precedes its answer
    await app.wait_for("currentTime")
    assert [e[0] for e in app.seen] == ["error", "currentTime"]
    assert gw.active_account_summaries == 2

    app.cancelAccountSummary(11)
    await wait_until(lambda: gw.active_account_summaries == 1, what="cancel")
    app.reqAccountSummary(14, "All", "NetLiquidation")
    assert await app.wait_for("accountSummaryEnd") == (14,)


async def test_historical_bars(fake_gateway: FakeGateway, ibapi_client: IBApiFactory) -> None:
    app = await ready(fake_gateway, ibapi_client)
    app.drain()
    app.reqHistoricalData(5, eurusd(), "", "30 S", "5 secs", "MIDPOINT", 1, 1, False, [])
    await app.wait_for("historicalDataEnd")
    bars = [e[1][1] for e in app.seen if e[0] == "historicalData"]
    assert len(bars) == 6
    assert all(b.low <= b.open <= b.high and b.volume > 0 for b in bars)


async def test_tick_stream(make_gateway: MakeGateway, ibapi_client: IBApiFactory) -> None:
    gw = await make_gateway(tick_rate=100.0)
    app = await ready(gw, ibapi_client)
    contract = eurusd()
    contract.conId = 12087792
    app.reqMktData(8, contract, "", False, False, [])
    prices = [await app.wait_for("tickPrice") for _ in range(5)]
    assert all(p[0] == 8 and p[1] in (1, 2, 4) and p[2] > 0 for p in prices)
    sizes = [e[1] for e in app.seen if e[0] == "tickSize"]
    assert any(s[1] == 8 for s in sizes)  # volume ticks arrive as tickSize
    app.cancelMktData(8)
    await wait_until(lambda: gw.market_data_subscriptions == 0, what="cancel")


async def test_duplicate_client_id_gets_326_and_close(
    fake_gateway: FakeGateway, ibapi_client: IBApiFactory
) -> None:
    await ready(fake_gateway, ibapi_client, client_id=9)
    second = ibapi_client()
    second.start(fake_gateway.port, 9)
    req_id, code, _text = await second.wait_for("error")
    assert (req_id, code) == (-1, 326)
    await second.wait_for("connectionClosed")
    assert not any(e[0] == "nextValidId" for e in second.seen)
    assert fake_gateway.client_ids == {9}


async def test_pacing_error_100(make_gateway: MakeGateway, ibapi_client: IBApiFactory) -> None:
    gw = await make_gateway(pacing_limit=20)
    app = await ready(gw, ibapi_client)
    app.drain()
    for _ in range(30):  # ibapi does not throttle itself
        app.reqCurrentTime()
    req_id, code, text = await app.wait_for("error")
    assert (req_id, code) == (-1, 100)
    assert "Max rate of messages per second has been exceeded" in text
    await wait_until(lambda: gw.request_counts[49] + gw.frames_dropped == 30, what="all received")
    answered = sum(1 for e in app.seen + app.drain() if e[0] == "currentTime")
    assert answered <= 20 - 1  # startApi counted against the same second


async def test_drop_all_and_broadcast_seen_by_ibapi(
    fake_gateway: FakeGateway, ibapi_client: IBApiFactory
) -> None:
    app = await ready(fake_gateway, ibapi_client)
    app.drain()
    fake_gateway.broadcast_error(1100)
    assert await app.wait_for("error") == (-1, 1100, SYSTEM_MESSAGES[1100])
    await fake_gateway.drop_all()
    await app.wait_for("connectionClosed")
    assert fake_gateway.client_ids == frozenset()
