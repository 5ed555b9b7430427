"""FillTracker over real sockets: a FakeGateway whose order replies a scripted Book supplies
(tests/orders/book.py), the real ib_async client, a supervised manager."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ib_async import Fill, Order, Stock, Trade

from tests.helpers import TIME_UNIT, fast_settings, wait_until
from tests.orders.book import Book
from v6.connection import ConnectionState, IBConnectionManager
from v6.errors import NotConnected
from v6.orders.tracker import NOT_RECEIVED
from v6.protocol.orders_messages import commission_report, exec_details
from v6.testing import FakeGateway

T = TIME_UNIT
PLACE_ORDER = 3


class App:
    """One manager and what the application saw through its hooks."""

    def __init__(self, manager: IBConnectionManager) -> None:
        self.manager = manager
        self.fills: Counter[str] = Counter()
        self.fill_trades: list[Trade] = []
        self.commissions: Counter[str] = Counter()
        self.events: list[str] = []  # "fill <id>" / "connected" in order
        manager.on_fill(self._fill)
        manager.on_commission(lambda trade, fill, report: self.commissions.update([report.execId]))
        manager.on_connected(lambda again: self.events.append("connected"))

    def _fill(self, trade: Trade, fill: Fill) -> None:
        self.fills[fill.execution.execId] += 1
        self.fill_trades.append(trade)
        self.events.append(f"fill {fill.execution.execId}")

    def place(self, quantity: float = 100) -> Trade:
        return self.manager.ib.placeOrder(Stock("AAPL", "SMART", "USD"),
                                          Order(action="BUY", totalQuantity=quantity,
                                                orderType="MKT"))  # fmt: skip


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0) as gw:
        yield gw


async def started(gw: FakeGateway, **options: Any) -> App:
    manager = IBConnectionManager(port=gw.port, **fast_settings(**options))
    app = App(manager)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    return app


async def reconnected(app: App, count: int) -> None:
    manager = app.manager
    await wait_until(lambda: manager.stats.reconnects >= count and manager.is_connected, 60 * T)


async def test_a_live_fill_and_its_commission_are_delivered_once(gateway: FakeGateway) -> None:
    book = Book(gateway)
    app = await started(gateway)
    trade = app.place()
    booked = book.ack(trade)
    exec_id = book.fill(booked, 100)
    await wait_until(lambda: app.commissions[exec_id] == 1)
    book.push(*_repeat_last(book, exec_id))  # the same execution and report again
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    await _settle()
    assert app.fills == {exec_id: 1}
    assert app.commissions == {exec_id: 1}
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    health = await app.manager.connection_health()
    assert health["fills_delivered"] == 1
    assert health["fills_recovered"] == 0
    assert health["open_orders"] == 0
    await app.manager.stop()


async def test_a_fill_during_an_outage_reaches_the_same_trade_before_connected(
    gateway: FakeGateway,
) -> None:
    book = Book(gateway)
    app = await started(gateway)
    trade = app.place()
    booked = book.ack(trade)
    await wait_until(lambda: trade.orderStatus.status == "Submitted")
    seen: list[Fill] = []
    trade.fillEvent += lambda t, fill: seen.append(fill)
    gateway.stall()  # nothing reaches the client...
    exec_id = book.fill(booked, 100, live=False)  # ...while the order fills
    gateway.unstall()
    await gateway.drop_all()
    await reconnected(app, 1)
    assert app.fills == {exec_id: 1}
    assert app.events == ["connected", f"fill {exec_id}", "connected"]  # before on_connected
    assert app.fill_trades == [trade]
    assert trade.orderStatus.status == "Filled"
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    assert [f.execution.execId for f in seen] == [exec_id]
    assert app.commissions == {exec_id: 1}
    assert (await app.manager.connection_health())["fills_recovered"] == 1
    await gateway.drop_all()  # the next sync reports it again: nothing doubles
    await reconnected(app, 2)
    assert app.fills == {exec_id: 1}
    assert len(trade.fills) == 1
    assert len(seen) == 1
    await app.manager.stop()


async def test_a_correction_replaces_the_fill_once(gateway: FakeGateway) -> None:
    book = Book(gateway)
    app = await started(gateway)
    trade = app.place()
    booked = book.ack(trade)
    first = book.fill(booked, 100, price=10.0)
    await wait_until(lambda: app.fills[first] == 1)
    second = book.correct(first, price=11.0)
    await wait_until(lambda: app.fills[second] == 1)
    assert [f.execution.execId for f in trade.fills] == [second]
    assert app.manager.corrections == {second: first}
    await gateway.drop_all()
    await reconnected(app, 1)
    assert app.fills == {first: 1, second: 1}
    assert [f.execution.execId for f in trade.fills] == [second]
    await app.manager.stop()


async def test_a_commission_lost_across_a_reconnect_comes_once(gateway: FakeGateway) -> None:
    book = Book(gateway)
    app = await started(gateway)
    trade = app.place()
    booked = book.ack(trade)
    book.withhold_commissions.add("0000e0d5.00000001.01.01")
    exec_id = book.fill(booked, 100)
    await wait_until(lambda: app.fills[exec_id] == 1)
    assert app.commissions == {}
    book.withhold_commissions.clear()
    await gateway.drop_all()
    await reconnected(app, 1)
    assert app.commissions == {exec_id: 1}
    await gateway.drop_all()
    await reconnected(app, 2)
    assert app.commissions == {exec_id: 1}
    await app.manager.stop()


async def test_a_new_process_with_the_journal_gets_only_what_it_missed(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    journal = tmp_path / "fills.sqlite"
    book = Book(gateway)
    first = await started(gateway, journal=journal)
    trade = first.place(200)
    booked = book.ack(trade)
    before = book.fill(booked, 100)
    await wait_until(lambda: first.fills[before] == 1)
    await first.manager.stop()
    during = book.fill(booked, 100, live=False)
    second = await started(gateway, journal=journal)
    assert second.fills == {during: 1}
    assert second.fill_trades[0].order.orderRef == trade.order.orderRef
    await second.manager.stop()


async def test_an_order_placed_while_disconnected_goes_nowhere(gateway: FakeGateway) -> None:
    app = await started(gateway)
    await gateway.stop()
    await wait_until(lambda: not app.manager.is_connected)
    with pytest.raises(NotConnected, match="not connected"):
        app.place()
    assert isinstance(NotConnected("x"), ConnectionError)
    assert gateway.request_counts[PLACE_ORDER] == 0
    assert app.manager.journal.pending_orders() == []
    await app.manager.stop()


async def test_an_unacknowledged_order_is_found_by_its_order_ref(gateway: FakeGateway) -> None:
    book = Book(gateway)
    app = await started(gateway)
    found = app.place()
    lost = app.place()
    await wait_until(lambda: gateway.request_counts[PLACE_ORDER] == 2)
    book.ack(found, live=False)  # the gateway has it, the socket dies before the answer
    assert len(app.manager.journal.pending_orders()) == 2
    await gateway.drop_all()
    await reconnected(app, 1)
    assert found.orderStatus.status == "Submitted"
    assert found.order.permId
    assert lost.orderStatus.status == "Inactive"
    assert lost.log[-1].message == NOT_RECEIVED
    assert app.manager.journal.pending_orders() == []
    assert gateway.request_counts[PLACE_ORDER] == 2  # nothing re-sent
    await app.manager.stop()


async def test_order_ids_never_go_backwards_after_a_gateway_restart(gateway: FakeGateway) -> None:
    app = await started(gateway)
    first = app.place()
    gateway_settings: Any = gateway._ctx.settings
    gateway_settings.next_order_id = 1  # the restarted gateway forgot
    await gateway.drop_all()
    await reconnected(app, 1)
    second = app.place()
    assert second.order.orderId > first.order.orderId
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
    await reconnected(app, 1)
    assert refused
    assert all("not connected" in r or "connecting" in r for r in refused)
    await app.manager.stop()


def _repeat_last(book: Book, exec_id: str) -> list[bytes]:
    execution = next(e for e in book.executions if e.exec_id == exec_id)
    return [exec_details(-1, execution), commission_report(book.commissions[exec_id])]


async def _settle() -> None:
    await asyncio.sleep(4 * T)
