"""Unmodified ib_async trading against the fake gateway over real sockets: orders, fills,
commissions, executions, positions, reconnects and the order faults."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock, StopOrder, Trade

from tests.helpers import T
from tests.testing.helpers import RawClient, wait_until
from v6.protocol.codec import ClientMessage
from v6.testing import FakeGateway

MakeGateway = Callable[..., Awaitable[FakeGateway]]
IBFactory = Callable[[], IB]
AAPL_ID = 265598


def aapl() -> Stock:
    return Stock("AAPL", "SMART", "USD", conId=AAPL_ID)


async def connect(ib: IB, gw: FakeGateway, client_id: int = 1) -> IB:
    return await ib.connectAsync(
        "127.0.0.1", gw.port, clientId=client_id, timeout=40 * T, raiseSyncErrors=True
    )


async def quiet_gateway(make_gateway: MakeGateway, **kwargs: object) -> FakeGateway:
    """A gateway whose quotes move only when a test pins them."""
    gw = await make_gateway(market_interval=None, **kwargs)
    gw.set_quote(AAPL_ID, 100.00, 100.02)
    return gw


async def done(trade: Trade) -> None:
    await wait_until(trade.isDone, timeout=40 * T, what=f"order {trade.order.orderId} done")


@pytest.fixture(autouse=True)
def no_ib_async_errors(caplog: pytest.LogCaptureFixture) -> object:
    """No decode error or unexpected-field warning from ib_async during a trading test."""
    caplog.set_level(logging.WARNING, logger="ib_async")
    yield
    bad = [r.getMessage() for r in caplog.records
           if r.name.startswith("ib_async") and "Error" in r.getMessage()
           and "Error 20" not in r.getMessage() and "Error 10147" not in r.getMessage()
           and "Error 103" not in r.getMessage()]  # fmt: skip
    assert bad == [], bad


async def test_market_order_fills_with_executions_and_commission_reports(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(fill_size=40, market_interval=T / 5)  # one partial fill per step
    gw.set_quote(AAPL_ID, 100.00, 100.02)
    ib = await connect(ib_client(), gw)
    trade = ib.placeOrder(aapl(), MarketOrder("BUY", 100, orderRef="ref-1", account="DU1234567"))
    await done(trade)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.filled == 100
    assert trade.fills[0].execution.price == 100.02  # a buy fills at the ask
    prices = [e.price for e in gw.executions]
    assert trade.orderStatus.avgFillPrice == pytest.approx((40 * prices[0] + 40 * prices[1]
                                                            + 20 * prices[2]) / 100)  # fmt: skip
    assert [f.execution.shares for f in trade.fills] == [40, 40, 20]  # partial fills
    await wait_until(lambda: all(f.commissionReport.execId for f in trade.fills),
                     what="commission reports")  # fmt: skip
    assert [f.commissionReport.commission for f in trade.fills] == [1.0, 1.0, 1.0]
    assert trade.order.permId > 0
    assert {f.execution.permId for f in trade.fills} == {trade.order.permId}
    assert all(f.execution.orderRef == "ref-1" for f in trade.fills)
    assert [o.status for o in gw.orders] == ["Filled"]
    assert [e.exec_id for e in gw.executions] == [f.execution.execId for f in trade.fills]
    await wait_until(lambda: [p.position for p in ib.positions()] == [100], what="position")
    cash = {v.tag: v.value for v in ib.accountValues() if v.tag == "TotalCashValue"}
    await wait_until(lambda: cash != {}, what="account values")


async def test_limit_order_waits_then_fills_when_the_quote_crosses(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    trade = ib.placeOrder(aapl(), LimitOrder("BUY", 10, 99.50, tif="GTC"))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    assert trade.orderStatus.filled == 0
    gw.set_quote(AAPL_ID, 99.40, 99.45)
    await done(trade)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == 99.45


async def test_stop_order_triggers_at_the_stop(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    trade = ib.placeOrder(aapl(), StopOrder("SELL", 5, 99.00))
    await wait_until(lambda: trade.orderStatus.status == "PreSubmitted", what="presubmitted")
    gw.set_quote(AAPL_ID, 98.99, 99.01)
    await done(trade)
    assert trade.orderStatus.avgFillPrice == 98.99


async def test_limit_orders_fill_as_the_market_walks(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(market_interval=T / 10, seed=3)
    ib = await connect(ib_client(), gw)
    start = gw.quote(AAPL_ID)
    buy = ib.placeOrder(aapl(), LimitOrder("BUY", 1, round(start.ask - 0.01, 2)))
    sell = ib.placeOrder(aapl(), LimitOrder("SELL", 1, round(start.bid + 0.01, 2)))
    await wait_until(lambda: buy.isDone() or sell.isDone(), timeout=200 * T, what="a walk fill")


async def test_cancel_and_cancel_of_a_finished_order(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    trade = ib.placeOrder(aapl(), LimitOrder("BUY", 10, 90.00))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    ib.cancelOrder(trade.order)
    await done(trade)
    assert trade.orderStatus.status == "Cancelled"
    assert gw.orders[0].status == "Cancelled"
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.client.cancelOrder(trade.order.orderId, "")
    await wait_until(lambda: 10148 in errors, what="10148")


async def test_modify_changes_the_working_order(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    order = LimitOrder("BUY", 10, 90.00)
    trade = ib.placeOrder(aapl(), order)
    await wait_until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    order.totalQuantity = 20
    order.lmtPrice = 100.05  # marketable now
    assert ib.placeOrder(aapl(), order) is trade
    await done(trade)
    assert trade.orderStatus.filled == 20
    assert gw.orders[0].spec.lmt_price == 100.05
    assert len(gw.orders) == 1


async def test_reject_and_duplicate_id(make_gateway: MakeGateway, ib_client: IBFactory) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    off_tick = ib.placeOrder(aapl(), LimitOrder("BUY", 1, 99.123))
    await wait_until(lambda: (off_tick.order.orderId, 110) in errors, what="110")
    bad_type = ib.placeOrder(aapl(), LimitOrder("BUY", 1, 99.0))
    bad_type.order.orderType = "NOPE"
    ib.client.placeOrder(bad_type.order.orderId + 10, aapl(), bad_type.order)
    await wait_until(lambda: (bad_type.order.orderId + 10, 201) in errors, what="201")


async def test_transmit_false_stays_inactive_until_transmitted(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    order = MarketOrder("BUY", 3, transmit=False)
    trade = ib.placeOrder(aapl(), order)
    await wait_until(lambda: trade.orderStatus.status == "Inactive", what="inactive")
    assert gw.orders[0].status == "Inactive"
    order.transmit = True
    ib.client.placeOrder(order.orderId, aapl(), order)  # ib_async counts Inactive as done
    await wait_until(lambda: trade.orderStatus.status == "Filled", what="filled")
    assert gw.orders[0].status == "Filled"


async def test_req_executions_with_filters(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    gw.set_quote(272093, 300.00, 300.05)
    ib = await connect(ib_client(), gw)
    msft = Stock("MSFT", "SMART", "USD", conId=272093)
    for trade in (ib.placeOrder(aapl(), MarketOrder("BUY", 5)),
                  ib.placeOrder(msft, MarketOrder("SELL", 7))):  # fmt: skip
        await done(trade)
    everything = await ib.reqExecutionsAsync()
    assert sorted(f.contract.symbol for f in everything) == ["AAPL", "MSFT"]
    by_symbol = await ib.reqExecutionsAsync(ExecutionFilter(symbol="MSFT"))
    assert [(f.contract.symbol, f.execution.side) for f in by_symbol] == [("MSFT", "SLD")]
    by_side = await ib.reqExecutionsAsync(ExecutionFilter(side="BUY"))
    assert [f.contract.symbol for f in by_side] == ["AAPL"]
    other_client = await ib.reqExecutionsAsync(ExecutionFilter(clientId=5))
    assert other_client == []
    assert await ib.reqExecutionsAsync(ExecutionFilter(acctCode="DU0000")) == []
    future = await ib.reqExecutionsAsync(ExecutionFilter(time="20991231 00:00:00"))
    assert future == []
    assert len(gw.executions) == 2


async def test_a_fill_while_away_shows_in_the_startup_sync(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw, client_id=7)
    trade = ib.placeOrder(aapl(), LimitOrder("BUY", 10, 90.00))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    order_id = trade.order.orderId
    ib.disconnect()
    await wait_until(lambda: not gw.client_ids, what="client gone")
    exec_id = gw.fill_order(order_id, client_id=7)
    ib2 = await connect(ib_client(), gw, client_id=7)
    fills = ib2.fills()
    assert [f.execution.execId for f in fills] == [exec_id]
    assert fills[0].commissionReport.execId == exec_id
    completed = [t for t in ib2.trades() if t.order.permId == trade.order.permId]
    assert completed
    assert completed[0].orderStatus.status == "Filled"
    assert [p.position for p in ib2.positions()] == [10]
    assert ib2.client.getReqId() > order_id  # nextValidId did not go backwards


async def test_orders_survive_stop_start_and_fill_while_stopped(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    trade = ib.placeOrder(aapl(), LimitOrder("BUY", 4, 90.00))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    ib.disconnect()
    await gw.stop()
    gw.fill_order(trade.order.orderId, 1, 91.0)
    await gw.start()
    ib2 = await connect(ib_client(), gw)
    [open_trade] = ib2.openTrades()
    assert open_trade.orderStatus.filled == 1
    assert open_trade.orderStatus.remaining == 3
    assert [f.execution.price for f in ib2.fills()] == [91.0]


async def test_another_client_cannot_cancel_except_client_zero_after_auto_bind(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    owner = await connect(ib_client(), gw, client_id=1)
    trade = owner.placeOrder(aapl(), LimitOrder("BUY", 10, 90.00))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    order_id = trade.order.orderId

    other = await connect(ib_client(), gw, client_id=2)
    errors: list[tuple[int, int]] = []
    other.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    other.client.cancelOrder(order_id, "")
    await wait_until(lambda: (order_id, 10147) in errors, what="10147")
    assert gw.orders[0].status == "Submitted"

    master = await connect(ib_client(), gw, client_id=0)  # ib_async sends reqAutoOpenOrders(True)
    master.client.cancelOrder(order_id, "")
    await done(trade)  # the owner sees the cancel
    assert trade.orderStatus.status == "Cancelled"


async def test_reconnecting_clients_keep_unique_order_ids_after_restart_rollback(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway, next_order_id=10)
    ib = await connect(ib_client(), gw)
    trade = ib.placeOrder(aapl(), LimitOrder("BUY", 1, 90.00))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    before = gw.next_order_id
    await gw.restart(rollback_order_ids=5)
    assert gw.next_order_id == before - 5
    await wait_until(lambda: not ib.isConnected(), what="disconnected by the restart")
    raw = await RawClient.open(gw.port)
    try:
        messages = await raw.ready(client_id=3)
        next_ids = [int(m.fields[2]) for m in messages if m.msg_id == 9]
        assert next_ids == [before - 5]
    finally:
        await raw.close()
    assert [o.status for o in gw.orders] == ["Submitted"]


async def test_close_after_place_order_leaves_an_unacknowledged_order(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    gw.close_after_place_order(True)
    trade = ib.placeOrder(aapl(), LimitOrder("BUY", 1, 90.00))
    await wait_until(lambda: not ib.isConnected(), what="socket closed")
    assert trade.orderStatus.status == "PendingSubmit"
    assert [(o.order_id, o.status) for o in gw.orders] == [(trade.order.orderId, "Submitted")]
    gw.close_after_place_order(False)
    ib2 = await connect(ib_client(), gw)
    assert [t.order.orderId for t in ib2.openTrades()] == [trade.order.orderId]


async def observer(gw: FakeGateway) -> RawClient:
    """A bare client 0 that bound every order (reqAutoOpenOrders(True)): it gets a copy of every
    order message, in the order the owner gets them."""
    raw = await RawClient.open(gw.port)
    await raw.ready(client_id=0)
    raw.send(ClientMessage.REQ_AUTO_OPEN_ORDERS, 1, 1)
    await raw.messages(quiet=T)
    return raw


async def test_hold_order_status_releases_each_late_and_twice(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    raw = await observer(gw)
    try:
        gw.hold_order_status(True)
        trade = ib.placeOrder(aapl(), MarketOrder("BUY", 1))
        await wait_until(lambda: len(trade.fills) == 1, what="fill")
        held = await raw.messages(quiet=2 * T)
        assert 3 not in [m.msg_id for m in held]
        assert trade.orderStatus.status == "PendingSubmit"  # openOrder came, orderStatus held
        gw.hold_order_status(False)
        await done(trade)
        late = [m.fields[2] for m in await raw.messages(quiet=2 * T) if m.msg_id == 3]
        assert late == ["Submitted", "Submitted", "Filled", "Filled"]
    finally:
        await raw.close()


async def test_drop_commission_reports(make_gateway: MakeGateway, ib_client: IBFactory) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    gw.drop_commission_reports(True)
    trade = ib.placeOrder(aapl(), MarketOrder("BUY", 1))
    await done(trade)
    await asyncio.sleep(2 * T)
    assert trade.fills[0].commissionReport.execId == ""
    [fill] = await ib.reqExecutionsAsync()  # the sync still carries the report...
    assert trade.fills[0].commissionReport.execId == fill.execution.execId  # ...to the fill


async def test_exec_before_open_order_and_a_correction(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await quiet_gateway(make_gateway)
    ib = await connect(ib_client(), gw)
    raw = await observer(gw)
    try:
        gw.exec_before_open_order(True)
        trade = ib.placeOrder(aapl(), MarketOrder("BUY", 1))
        await done(trade)
        ids = [m.msg_id for m in await raw.messages(quiet=2 * T)]
        assert ids.index(11) < ids.index(5)  # execDetails before openOrder
        exec_id = gw.executions[0].exec_id
        new_id = gw.correct_execution(exec_id, price=100.01)
        assert new_id == exec_id[:-2] + "02"
        await wait_until(lambda: len(ib.fills()) == 2, what="the correction")
        assert ib.fills()[-1].execution.execId == new_id
        assert ib.fills()[-1].execution.price == 100.01
    finally:
        await raw.close()


async def test_pacing_applies_to_orders(make_gateway: MakeGateway, ib_client: IBFactory) -> None:
    gw = await quiet_gateway(make_gateway, pacing_limit=20)
    ib = await connect(ib_client(), gw)
    ib.client.MaxRequests = 0  # ib_async's own throttle off: the gateway must enforce it
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    for _ in range(30):
        ib.placeOrder(aapl(), LimitOrder("BUY", 1, 90.00))
    await wait_until(lambda: 100 in errors, what="error 100")
    await wait_until(lambda: gw.request_counts[ClientMessage.PLACE_ORDER] + gw.frames_dropped == 30,
                     what="all read")  # fmt: skip
    assert len(gw.orders) < 20


async def test_cli_gateway_trades_with_seed_and_fill_size(ib_client: IBFactory) -> None:
    env = {**os.environ, "PYTHONASYNCIODEBUG": ""}
    command = [sys.executable, "-m", "v6.testing.cli", "gateway", "--port", "0", "--seed", "5",
               "--fill-size", "10"]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        port = int(line.rsplit(":", 1)[1])
        ib = ib_client()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
        trade = ib.placeOrder(aapl(), MarketOrder("BUY", 25))
        await wait_until(trade.isDone, timeout=5, what="filled in parts")
        assert [f.execution.shares for f in trade.fills] == [10, 10, 5]
        ib.disconnect()
    finally:
        proc.terminate()
        await proc.wait()


def test_cli_rejects_a_bad_fill_size() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "v6.testing.cli", "gateway", "--port", "0", "--fill-size", "0"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "fill_size" in result.stderr
