"""IB's official client decodes every live-data message and data-fault notice of the fake
gateway: tick-by-tick of each type, PnL, contract details, 2103/2104, 2105/2106, 10197, 10182
(ibapi drops a message with one field too many: every test here fails on any such drop or any
ibapi error log)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.helpers import T
from tests.testing.gateway.data_clients import IBApiDataClient
from tests.testing.gateway.test_pacing_rules_ibapi import aapl, ready
from tests.testing.helpers import wait_until
from v6.protocol.codes import TEXT_COMPETING_LIVE_SESSION, TEXT_LIVE_UPDATES_FAILED
from v6.testing import AccountState, FakeGateway, Position

MakeGateway = Callable[..., Awaitable[FakeGateway]]
Factory = Callable[[], IBApiDataClient]
NOW = 1_795_518_499.0


@pytest.fixture(autouse=True)
def no_dropped_messages(ibapi_log: pytest.LogCaptureFixture) -> object:
    yield
    errors = [r.getMessage() for r in ibapi_log.records if r.name.startswith("ibapi")]
    assert errors == [], errors


async def test_tick_by_tick_pnl_and_contract_details_decode(
    make_gateway: MakeGateway, ibapi_data_client: Factory
) -> None:
    state = AccountState(accounts=("DU1",), positions=(
        Position("DU1", "AAPL", 100, 150.0, market_price=151.0, con_id=265598),
    ))  # fmt: skip
    gw = await make_gateway(account_state=state, tick_rate=100.0, pnl_interval=T,
                            wall_clock=lambda: NOW)  # fmt: skip
    app = await ready(gw, ibapi_data_client)
    for req_id, kind in enumerate(("Last", "AllLast", "BidAsk", "MidPoint"), 1):
        app.reqTickByTickData(req_id, aapl(), kind, 0, False)
    last = await app.wait_for("tickByTickAllLast")
    assert last[2] == int(NOW)
    assert last[3] > 0
    assert last[4] > 0
    bid_ask = await app.wait_for("tickByTickBidAsk")
    assert (bid_ask[0], bid_ask[1]) == (3, int(NOW))
    assert 0 < bid_ask[2] < bid_ask[3]
    mid = await app.wait_for("tickByTickMidPoint")
    assert mid[0] == 4
    assert mid[2] > 0
    for req_id in range(1, 5):
        app.cancelTickByTickData(req_id)
    app.reqPnL(5, "DU1", "")
    assert await app.wait_for("pnl") == (5, 100.0, 100.0, 0.0)
    app.reqPnLSingle(6, "DU1", "", 265598)
    assert await app.wait_for("pnlSingle") == (6, 100.0, 100.0, 100.0, 0.0, 15_100.0)
    app.cancelPnL(5)
    app.cancelPnLSingle(6)
    app.reqContractDetails(7, aapl())
    req_id, details = await app.wait_for("contractDetails")
    assert (req_id, details.contract.conId, details.timeZoneId) == (7, 265598, "US/Eastern")
    assert details.liquidHours.split(";")[1] == "20261124:0930-20261124:1600"
    assert details.minTick == 0.01
    assert await app.wait_for("contractDetailsEnd") == (7,)


async def test_data_fault_notices_decode(
    make_gateway: MakeGateway, ibapi_data_client: Factory
) -> None:
    gw = await make_gateway(tick_rate=100.0)
    app = await ready(gw, ibapi_data_client)
    app.reqMktData(1, aapl(), "", False, False, [])
    await app.wait_for("tickPrice")
    gw.farm_flap("usfarm", 2 * T)
    assert await app.wait_for("error") == (-1, 2103, "Market data farm connection is broken:usfarm")
    assert await app.wait_for("error") == (-1, 2104, "Market data farm connection is OK:usfarm")
    gw.farm_flap("ushmds", 0)
    assert await app.wait_for("error") == (-1, 2105, "HMDS data farm connection is broken:ushmds")
    assert await app.wait_for("error") == (-1, 2106, "HMDS data farm connection is OK:ushmds")
    app.cancelMktData(1)
    app.reqMktData(2, aapl(), "", False, False, [])
    await app.wait_for("tickPrice")
    gw.fail_live_updates(2)
    assert await app.wait_for("error") == (2, 10182, TEXT_LIVE_UPDATES_FAILED)
    app.reqMktData(3, aapl(), "", False, False, [])
    await wait_until(lambda: len(gw.live_requests) == 2, what="request 3 at the gateway")
    gw.competing_session()
    burst = [await app.wait_for("error") for _ in range(10)]
    assert set(burst) == {(2, 10197, TEXT_COMPETING_LIVE_SESSION),
                          (3, 10197, TEXT_COMPETING_LIVE_SESSION)}  # fmt: skip
