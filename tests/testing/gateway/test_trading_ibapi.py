"""IB's official client (ibapi-stable 10.50, threaded) trading against the fake gateway over real
sockets. Every test fails on any ibapi log line at ERROR (a "diff len fields" or decode error)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from ibapi.contract import Contract
from ibapi.execution import ExecutionFilter
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel

from tests.testing.helpers import IBApiClient, wait_until
from v6.protocol.codec import ClientMessage
from v6.testing import FakeGateway

MakeGateway = Callable[..., Awaitable[FakeGateway]]
IBApiFactory = Callable[[], IBApiClient]
AAPL_ID = 265598


@pytest.fixture(autouse=True)
def no_decode_errors(ibapi_log: pytest.LogCaptureFixture) -> object:
    yield
    errors = [r.getMessage() for r in ibapi_log.records if r.name.startswith("ibapi")]
    assert errors == [], errors


def aapl() -> Contract:
    c = Contract()
    c.conId, c.symbol, c.secType, c.exchange, c.currency = AAPL_ID, "AAPL", "STK", "SMART", "USD"
    return c


def order(action: str, quantity: int, order_type: str = "MKT", limit: float | None = None) -> Order:
    o = Order()
    o.action, o.totalQuantity, o.orderType = action, Decimal(quantity), order_type
    if limit is not None:
        o.lmtPrice = limit
    o.tif, o.orderRef = "DAY", "ibapi-ref"
    return o


async def trading_gateway(make_gateway: MakeGateway, **kwargs: object) -> FakeGateway:
    gw = await make_gateway(market_interval=None, **kwargs)
    gw.set_quote(AAPL_ID, 100.00, 100.02)
    return gw


async def ready(gw: FakeGateway, make: IBApiFactory, client_id: int = 1) -> tuple[IBApiClient, int]:
    app = make()
    app.start(gw.port, client_id)
    (next_id,) = await app.wait_for("nextValidId")
    return app, next_id


async def test_market_order_fills_with_executions_and_commission(
    make_gateway: MakeGateway, ibapi_client: IBApiFactory
) -> None:
    gw = await trading_gateway(make_gateway)
    app, order_id = await ready(gw, ibapi_client)
    app.placeOrder(order_id, aapl(), order("BUY", 30))
    _, contract, placed, _state = await app.wait_for("openOrder")
    assert (contract.symbol, placed.orderRef, placed.totalQuantity) == ("AAPL", "ibapi-ref", 30)
    _, _execution_contract, execution = (await app.wait_for("execDetails"))
    assert (execution.orderId, execution.side, float(execution.shares)) == (order_id, "BOT", 30)
    assert execution.price == 100.02
    (report,) = await app.wait_for("commissionReport")
    assert report.execId == execution.execId
    status = await app.wait_for("orderStatus")
    while status[1] != "Filled":
        status = await app.wait_for("orderStatus")
    assert status[:5] == (order_id, "Filled", 30.0, 0.0, 100.02)
    assert gw.executions[0].exec_id == execution.execId


async def test_limit_order_cancel_and_the_10147_of_another_client(
    make_gateway: MakeGateway, ibapi_client: IBApiFactory
) -> None:
    gw = await trading_gateway(make_gateway)
    app, order_id = await ready(gw, ibapi_client)
    app.placeOrder(order_id, aapl(), order("BUY", 5, "LMT", 95.0))
    assert (await app.wait_for("orderStatus"))[1] == "Submitted"
    other, _ = await ready(gw, ibapi_client, client_id=2)
    for _ in range(3):  # farm notices
        await other.wait_for("error")
    other.cancelOrder(order_id, OrderCancel())
    req_id, code, _text = await other.wait_for("error")
    assert (req_id, code) == (order_id, 10147)
    app.cancelOrder(order_id, OrderCancel())
    assert (await app.wait_for("orderStatus"))[1] == "Cancelled"
    errors = {e[1][:2] for e in app.seen if e[0] == "error"}
    while (order_id, 202) not in errors:  # bounded: wait_for fails after its timeout
        errors.add((await app.wait_for("error"))[:2])


async def test_modify_partial_fills_and_the_startup_sync_after_a_fill_while_away(
    make_gateway: MakeGateway, ibapi_client: IBApiFactory
) -> None:
    gw = await trading_gateway(make_gateway, fill_size=4)
    app, order_id = await ready(gw, ibapi_client, client_id=6)
    app.placeOrder(order_id, aapl(), order("BUY", 10, "LMT", 95.0))
    assert (await app.wait_for("orderStatus"))[1] == "Submitted"
    app.placeOrder(order_id, aapl(), order("BUY", 10, "LMT", 100.02))  # modify: marketable
    await app.wait_for("execDetails")  # one partial fill of fill_size at once
    assert [o.filled for o in gw.orders] == [4]
    app.stop()
    await wait_until(lambda: not gw.client_ids, what="client gone")
    gw.fill_order(order_id, client_id=6)  # the rest fills while the client is away

    again, _ = await ready(gw, ibapi_client, client_id=6)
    again.reqOpenOrders()
    await again.wait_for("openOrderEnd")
    assert not any(e[0] == "openOrder" for e in again.seen)  # nothing left working
    again.reqCompletedOrders(False)
    _, completed, state = await again.wait_for("completedOrder")
    assert (completed.permId, state.status) == (gw.orders[0].perm_id, "Filled")
    await again.wait_for("completedOrdersEnd")
    flt = ExecutionFilter()
    flt.clientId = 6
    again.reqExecutions(21, flt)
    await again.wait_for("execDetailsEnd")
    shares = [float(e[1][2].shares) for e in again.seen if e[0] == "execDetails"]
    assert shares == [4, 6]
    reports = [e for e in again.seen if e[0] == "commissionReport"]
    assert len(reports) == 2
    again.reqPositions()
    await again.wait_for("positionEnd")
    positions = [(e[1][1].symbol, e[1][2]) for e in again.seen if e[0] == "position"]
    assert positions == [("AAPL", 10.0)]


async def test_malformed_place_order_gets_201_and_keeps_the_connection(
    make_gateway: MakeGateway, ibapi_client: IBApiFactory
) -> None:
    gw = await trading_gateway(make_gateway)
    app, order_id = await ready(gw, ibapi_client)
    app.drain()
    broken = order("BUY", 1)
    broken.orderType = "NOPE"  # unknown order type: the broker rejects it
    app.placeOrder(order_id, aapl(), broken)
    req_id, code, text = await app.wait_for("error")
    assert (req_id, code) == (order_id, 201)
    assert "NOPE" in text
    truncated = "".join(f"{field}\x00" for field in (order_id + 1, AAPL_ID, "AAPL"))
    app.sendMsg(ClientMessage.PLACE_ORDER, truncated)
    req_id, code, _ = await app.wait_for("error")
    assert (req_id, code) == (order_id + 1, 201)
    app.reqCurrentTime()
    await app.wait_for("currentTime")
    assert gw.client_ids == {1}
