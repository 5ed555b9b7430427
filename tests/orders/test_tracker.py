"""FillTracker, OrderGate and the manager's wiring over real sockets: a trading FakeGateway, the
real ib_async client, a supervised manager."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ib_async import Fill

from tests.helpers import fast_settings, wait_until
from tests.orders.trading import AAPL_ID, App, T, reconnected
from v6.connection import ConnectionState
from v6.errors import JournalCorrupt, NotConnected
from v6.manager import IBConnectionManager
from v6.metrics import ConnectionMetrics
from v6.orders.tracker import NOT_RECEIVED
from v6.testing import FakeGateway

PLACE_ORDER = 3


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0, market_interval=None) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        yield gw


async def started(gw: FakeGateway, **options: Any) -> App:
    manager = IBConnectionManager(port=gw.port, **fast_settings(**options))
    app = App(manager)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    return app


async def test_a_live_fill_and_its_commission_are_delivered_once(gateway: FakeGateway) -> None:
    app = await started(gateway)
    trade = await app.working()
    exec_id = gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.commissions[exec_id] == 1)
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    await asyncio.sleep(2 * T)
    assert app.fills == {exec_id: 1}
    assert app.commissions == {exec_id: 1}
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    health = await app.manager.connection_health()
    assert health["fills_delivered"] == 1
    assert health["fills_recovered"] == 0
    assert health["open_orders"] == 0
    metrics = ConnectionMetrics(app.manager)
    try:
        text = metrics.exposition().decode()
    finally:
        metrics.close()
    assert "v6_ib_fills_delivered_total 1.0" in text
    assert "v6_ib_fills_recovered_total 0.0" in text
    assert "v6_ib_open_orders 0.0" in text
    await app.manager.stop()


async def test_a_fill_during_an_outage_reaches_the_same_trade_before_connected(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway)
    trade = await app.working()
    seen: list[Fill] = []
    trade.fillEvent += lambda t, fill: seen.append(fill)
    await gateway.stop()
    exec_id = gateway.fill_order(trade.order.orderId)
    await gateway.start()
    await reconnected(app.manager, 1)
    assert app.fills == {exec_id: 1}
    assert app.events == ["connected", f"fill {exec_id}", "connected"]  # before on_connected
    assert app.fill_trades == [trade]
    assert trade.orderStatus.status == "Filled"
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    assert [f.execution.execId for f in seen] == [exec_id]
    assert app.commissions == {exec_id: 1}
    assert (await app.manager.connection_health())["fills_recovered"] == 1
    await gateway.drop_all()  # the next sync reports it again: nothing doubles
    await reconnected(app.manager, 2)
    assert app.fills == {exec_id: 1}
    assert len(trade.fills) == 1
    assert len(seen) == 1
    await app.manager.stop()


async def test_a_correction_replaces_the_fill_once(gateway: FakeGateway) -> None:
    app = await started(gateway)
    trade = await app.working()
    first = gateway.fill_order(trade.order.orderId, price=10.0)
    await wait_until(lambda: app.fills[first] == 1)
    second = gateway.correct_execution(first, price=11.0)
    await wait_until(lambda: app.fills[second] == 1)
    assert [f.execution.execId for f in trade.fills] == [second]
    assert app.manager.corrections == {second: first}
    await gateway.drop_all()
    await reconnected(app.manager, 1)
    assert app.fills == {first: 1, second: 1}
    assert [f.execution.execId for f in trade.fills] == [second]
    await app.manager.stop()


async def test_a_new_process_with_the_journal_gets_only_what_it_missed(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    journal = tmp_path / "fills.sqlite"
    first = await started(gateway, journal=journal)
    trade = await first.working(200)
    before = gateway.fill_order(trade.order.orderId, 100)
    await wait_until(lambda: first.fills[before] == 1)
    await first.manager.stop()
    during = gateway.fill_order(trade.order.orderId, 100, client_id=1)
    second = await started(gateway, journal=journal)
    assert second.fills == {during: 1}
    assert second.fill_trades[0].order.orderRef == trade.order.orderRef
    await second.manager.stop()


def test_a_corrupt_journal_is_refused_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalCorrupt):
        IBConnectionManager(journal=path)


async def test_an_order_placed_while_disconnected_goes_nowhere(gateway: FakeGateway) -> None:
    app = await started(gateway)
    await gateway.stop()
    await wait_until(lambda: not app.manager.is_connected)
    with pytest.raises(NotConnected, match="not connected"):
        app.place()
    assert isinstance(NotConnected("x"), ConnectionError)
    assert gateway.orders == ()
    assert app.manager.journal.pending_orders() == []
    await app.manager.stop()


async def test_an_unacknowledged_order_is_found_by_its_order_ref(gateway: FakeGateway) -> None:
    app = await started(gateway)
    gateway.close_after_place_order(True)
    trade = app.place()
    await reconnected(app.manager, 1)
    gateway.close_after_place_order(False)
    assert trade.orderStatus.status == "Submitted"
    assert trade.order.permId == gateway.orders[0].perm_id
    assert len(gateway.orders) == 1  # not sent twice
    assert app.manager.journal.pending_orders() == []
    await app.manager.stop()


async def test_an_order_the_gateway_never_got_becomes_inactive(gateway: FakeGateway) -> None:
    app = await started(gateway)
    gateway.ignore_requests([PLACE_ORDER])  # lost on the way: the socket dies right after
    lost = app.place()
    await wait_until(lambda: gateway.request_counts[PLACE_ORDER] == 1)
    await gateway.drop_all()
    gateway.ignore_requests()
    await reconnected(app.manager, 1)
    assert lost.orderStatus.status == "Inactive"
    assert lost.log[-1].message == NOT_RECEIVED
    assert gateway.orders == ()
    assert app.manager.journal.pending_orders() == []
    await app.manager.stop()


async def test_order_ids_never_go_backwards_after_a_gateway_restart(gateway: FakeGateway) -> None:
    app = await started(gateway)
    first = await app.working()
    await gateway.restart(rollback_order_ids=5)
    await reconnected(app.manager, 1)
    second = await app.working()
    assert second.order.orderId > first.order.orderId
    assert sorted(o.order_id for o in gateway.orders) == [first.order.orderId,
                                                          second.order.orderId]  # fmt: skip
    await app.manager.stop()


async def test_orders_are_refused_while_reconciling(gateway: FakeGateway) -> None:
    app = await started(gateway)
    refused: list[str] = []

    def place_now(old: ConnectionState, new: ConnectionState, why: str) -> None:
        if new is ConnectionState.CONNECTING:
            try:
                app.place()
            except NotConnected as exc:
                refused.append(str(exc))

    app.manager.on_state_change(place_now)
    await gateway.drop_all()
    await reconnected(app.manager, 1)
    assert refused
    assert gateway.orders == ()
    await app.manager.stop()
