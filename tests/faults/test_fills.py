"""Fault matrix, fills across outages (issue 8): every row runs three times against the trading
FakeGateway; details = on_fill calls per exec id (last 11 characters) and the held Trade's state.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ib_async import IB, MarketOrder, Stock

from tests.faults.harness import RUNS, Harness, T
from tests.helpers import HeldBackReconnect, fast_settings, wait_until
from tests.orders.trading import AAPL_ID, App, held_state, reconnected
from v6.connection import ConnectionState
from v6.errors import NotConnected
from v6.manager import IBConnectionManager
from v6.protocol.codec import ClientMessage

SECTION = "Fills across outages"
ROWS: dict[str, str] = {
    "fill during a FIN drop": "on_fill once, before on_connected; held Trade Filled",
    "fill during a gateway restart": "down, fill, up: on_fill once; held Trade Filled",
    "partial fills across two outages": "each partial once; held Trade Filled with 2 fills",
    "fill while stalled": "heartbeat reconnect; on_fill once; held Trade Filled",
    "fill during 1100 -> 1101": "live fill once; the 1101 resync re-reports it: no repeat",
    "commission report lost across a reconnect": "fill once live; commission once, after it",
    "duplicate and late orderStatus": "late Submitted after Filled dropped; on_fill once",
    "execDetails before openOrder": "on_fill once with the placed Trade",
    "execution correction": "original and correction once each; correction replaces it",
    "execDetailsEnd withheld at start-up": "no CONNECTED, no fill until the sync completes",
    "restart rolls nextValidId back": "next order id above every id sent; none reused",
    "socket closed right after placeOrder": "found by orderRef, acknowledged; not sent twice",
    "process restart with a journal": "fills before, during, after: each once in all",
    "326 with working orders": "no rotation: retries the same client id, then connects",
    "order placed while disconnected": "NotConnected at once; nothing at gateway or journal",
}

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("run", RUNS, ids=lambda r: f"run{r}")]
S = ConnectionState
SHORT_CONNECT = 6 * T


async def start(h: Harness, **overrides: object) -> App:
    app = App(h.make(**overrides))
    h.gateway.set_quote(AAPL_ID, 100.00, 100.02)
    await app.manager.start()
    await app.manager.wait_connected(timeout=40 * T)
    return app


def record(h: Harness, app: App, state: str) -> None:
    h.obs.details = f"on_fill {app.calls() or 'none'}; {state}"
    assert all(n == 1 for n in app.fills.values()), app.fills


@pytest.mark.fault("fill during a FIN drop")
async def test_fill_during_fin_drop(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working()
    await h.gateway.drop_all()
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await reconnected(app.manager, 1)
    assert app.events == ["connected", f"fill {exec_id}", "connected"]
    assert trade.orderStatus.status == "Filled"
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("fill during a gateway restart")
async def test_fill_during_gateway_restart(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working()
    await h.gateway.stop()
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await asyncio.sleep(2 * T)
    await h.gateway.start()
    await reconnected(app.manager, 1)
    assert app.fills == {exec_id: 1}
    assert app.fill_trades == [trade]
    assert trade.orderStatus.status == "Filled"
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("partial fills across two outages")
async def test_partial_fills_across_two_outages(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working(200)
    for outage in (1, 2):
        await h.gateway.drop_all()
        h.gateway.fill_order(trade.order.orderId, 100)
        await reconnected(app.manager, outage)
    assert sorted(app.fills) == sorted(e.exec_id for e in h.gateway.executions)
    assert trade.orderStatus.status == "Filled"
    assert len(trade.fills) == 2
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("fill while stalled")
async def test_fill_while_stalled(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working()
    mark = h.mark()
    h.gateway.stall()
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await h.left_connected(mark, timeout=40 * T)
    h.gateway.unstall()
    await reconnected(app.manager, 1)
    assert app.fills == {exec_id: 1}
    assert trade.orderStatus.status == "Filled"
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("fill during 1100 -> 1101")
async def test_fill_during_1100_1101(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working()
    h.gateway.broadcast_error(1100)
    await wait_until(lambda: app.manager.state is S.DEGRADED)
    exec_id = h.gateway.fill_order(trade.order.orderId)  # orders and fills go on in DEGRADED
    await wait_until(lambda: app.fills[exec_id] == 1)
    asked = h.gateway.request_counts[ClientMessage.REQ_EXECUTIONS]
    h.gateway.broadcast_error(1101)
    await wait_until(lambda: h.gateway.request_counts[ClientMessage.REQ_EXECUTIONS] > asked)
    await wait_until(lambda: h.resubscribes == 1)
    await asyncio.sleep(4 * T)  # the resync's executions are in
    assert app.fills == {exec_id: 1}
    assert len(trade.fills) == 1
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("commission report lost across a reconnect")
async def test_commission_lost_across_reconnect(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working()
    h.gateway.drop_commission_reports(True)
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.fills[exec_id] == 1)
    await asyncio.sleep(2 * T)
    assert app.commissions == {}
    h.gateway.drop_commission_reports(False)
    await h.gateway.drop_all()
    await reconnected(app.manager, 1)
    assert app.commissions == {exec_id: 1}
    await h.gateway.drop_all()
    await reconnected(app.manager, 2)
    assert app.commissions == {exec_id: 1}
    record(h, app, f"{held_state(trade)}, commission once")
    await h.finish()


@pytest.mark.fault("duplicate and late orderStatus")
async def test_duplicate_and_late_order_status(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = app.place()
    await wait_until(lambda: len(h.gateway.orders) == 1)
    h.gateway.hold_order_status(True)
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.fills[exec_id] == 1)
    h.gateway.hold_order_status(False)  # each held one, late and twice
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    await asyncio.sleep(3 * T)
    assert trade.orderStatus.status == "Filled"
    assert app.fills == {exec_id: 1}
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("execDetails before openOrder")
async def test_exec_details_before_open_order(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    h.gateway.exec_before_open_order(True)
    trade = app.manager.ib.placeOrder(Stock("AAPL", "SMART", "USD", conId=AAPL_ID),
                                      MarketOrder("BUY", 100))  # fmt: skip
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    await asyncio.sleep(2 * T)
    assert sum(app.fills.values()) == 1
    assert app.fill_trades == [trade]
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("execution correction")
async def test_execution_correction(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working()
    first = h.gateway.fill_order(trade.order.orderId, price=10.0)
    await wait_until(lambda: app.fills[first] == 1)
    await h.gateway.drop_all()
    second = h.gateway.correct_execution(first, price=11.0)  # corrected while away
    await reconnected(app.manager, 1)
    assert app.fills == {first: 1, second: 1}
    assert [f.execution.execId for f in trade.fills] == [second]
    assert app.manager.corrections == {second: first}
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("execDetailsEnd withheld at start-up")
async def test_exec_details_end_withheld(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h, connect_timeout=SHORT_CONNECT)
    trade = await app.working()
    mark = h.mark()
    h.gateway.ignore_requests([ClientMessage.REQ_EXECUTIONS])
    await h.gateway.drop_all()
    exec_id = h.gateway.fill_order(trade.order.orderId)
    attempts = app.manager.stats.attempts
    await wait_until(
        lambda: attempts.get("handshake_failed", 0) + attempts.get("timeout", 0) >= 1, 40 * T
    )
    assert not h.seen(S.CONNECTED, mark)
    assert app.fills == {}
    h.gateway.ignore_requests()
    await reconnected(app.manager, 1)
    assert app.fills == {exec_id: 1}
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("restart rolls nextValidId back")
async def test_restart_rolls_next_valid_id_back(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    first = await app.working()
    await h.gateway.restart(rollback_order_ids=5)
    await reconnected(app.manager, 1)
    second = await app.working()
    ids = [o.order_id for o in h.gateway.orders]
    assert second.order.orderId > first.order.orderId
    assert len(set(ids)) == len(ids) == 2
    record(h, app, f"ids {first.order.orderId} then {second.order.orderId}")
    await h.finish()


@pytest.mark.fault("socket closed right after placeOrder")
async def test_socket_closed_after_place_order(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    h.gateway.close_after_place_order(True)
    trade = app.place()
    await reconnected(app.manager, 1)
    h.gateway.close_after_place_order(False)
    assert trade.orderStatus.status == "Submitted"
    assert trade.order.permId == h.gateway.orders[0].perm_id
    assert len(h.gateway.orders) == 1
    assert app.manager.journal.pending_orders() == []
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.fills[exec_id] == 1)
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("process restart with a journal")
async def test_process_restart_with_journal(
    harness: Harness, run: int, tmp_path: Path
) -> None:
    h = harness
    journal = tmp_path / "fills.sqlite"
    h.gateway.set_quote(AAPL_ID, 100.00, 100.02)
    first = App(IBConnectionManager(port=h.gateway.port, journal=journal, **fast_settings()))
    await first.manager.connect()
    trade = await first.working(300)
    before = h.gateway.fill_order(trade.order.orderId, 100)
    await wait_until(lambda: first.fills[before] == 1)
    await first.manager.stop()
    during = h.gateway.fill_order(trade.order.orderId, 100, client_id=1)
    second = await start(h, journal=journal)
    after = h.gateway.fill_order(trade.order.orderId, 100, client_id=1)
    await wait_until(lambda: second.fills[after] == 1)
    total = first.fills + second.fills
    assert total == {before: 1, during: 1, after: 1}
    assert sorted(total) == sorted(e.exec_id for e in h.gateway.executions)
    h.obs.details = f"first process: {first.calls()}; second: {second.calls()}"
    await h.finish()


@pytest.mark.fault("326 with working orders")
async def test_326_with_working_orders(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h, client_id=[21, 22], backoff=HeldBackReconnect(T, 4 * T, 0.0))
    trade = await app.working()
    await h.gateway.drop_all()  # the manager is back after 5 T: the stale session is first
    await wait_until(lambda: 21 not in h.gateway.client_ids, timeout=20 * T)
    stale = IB()
    h.holders.append(stale)
    await stale.connectAsync("127.0.0.1", h.gateway.port, clientId=21, timeout=20 * T)
    stats = app.manager.stats
    await wait_until(lambda: stats.attempts.get("client_id_in_use", 0) >= 2, timeout=40 * T)
    assert app.manager.client_id == 21
    stale.disconnect()
    await reconnected(app.manager, 1)
    assert app.manager.client_id == 21
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.fills[exec_id] == 1)  # the order is still ours to manage
    record(h, app, f"{stats.attempts.get('client_id_in_use')} x 326 on id 21; "
                   f"{held_state(trade)}")  # fmt: skip
    await h.finish()


@pytest.mark.fault("order placed while disconnected")
async def test_order_placed_while_disconnected(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    await h.gateway.stop()
    await wait_until(lambda: not app.manager.is_connected)
    with pytest.raises(NotConnected):
        app.place()
    assert h.gateway.orders == ()
    assert app.manager.journal.pending_orders() == []
    await h.gateway.start()
    await reconnected(app.manager, 1)
    assert h.gateway.orders == ()
    h.obs.details = "NotConnected; 0 orders at the gateway, 0 pending in the journal"
    await h.finish()
