"""Behaviour no test pinned before issue 19 ("Tests that would have seen these"), one test each,
so that breaking it fails a test. Real sockets (a trading FakeGateway, the real ib_async client,
the real manager) unless the behaviour is a pure function of one module."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ib_async import IB, LimitOrder, Stock

from tests.helpers import WallClock, fast_settings, wait_until
from tests.orders.trading import AAPL_ID, FAR_LIMIT, App, T, disk_full, reconnected, started
from v6.errors import JournalWriteFailed
from v6.manager import IBConnectionManager
from v6.orders.journal import Endpoint, Journal
from v6.orders.retention import DAY, DEFAULT_DONE_TRADE_RETENTION, DEFAULT_FILL_RETENTION
from v6.orders.tracker import NOT_RECEIVED
from v6.protocol.codec import ClientMessage
from v6.testing import FakeGateway

AAPL = Stock("AAPL", "SMART", "USD", conId=AAPL_ID)
REQ_EXECUTIONS = ClientMessage.REQ_EXECUTIONS


async def test_an_older_order_status_after_filled_leaves_the_trade_filled(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway)
    trade = await app.working(100)
    gateway.hold_order_status(True, newest_first=True)
    gateway.fill_order(trade.order.orderId, 50)
    gateway.fill_order(trade.order.orderId, 50)
    await wait_until(lambda: len(trade.fills) == 2)
    gateway.hold_order_status(False)  # Filled x2, then Submitted (50 filled) x2
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    await asyncio.sleep(3 * T)
    assert (trade.orderStatus.status, trade.orderStatus.filled) == ("Filled", 100)
    await app.manager.stop()


async def test_after_a_far_next_valid_id_rollback_the_next_id_is_above_every_id_used(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway)
    working = [await app.working() for _ in range(3)]
    await gateway.restart(rollback_order_ids=100)
    await reconnected(app.manager, 1)
    assert gateway.next_order_id < min(t.order.orderId for t in working)
    later = await app.working()
    ids = [o.order_id for o in gateway.orders]
    assert later.order.orderId > max(t.order.orderId for t in working)
    assert len(set(ids)) == len(ids) == 4
    await app.manager.stop()


async def test_a_resolved_pending_order_is_gone_from_the_journal_file(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    app = await started(gateway, journal=path)
    gateway.close_after_place_order(True)
    trade = app.place()
    await reconnected(app.manager, 1)
    gateway.close_after_place_order(False)
    gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    await app.manager.stop()
    with Journal(path) as journal:  # the file, not the memory of the process that wrote it
        assert journal.pending_orders() == []
        assert journal.orders() == []  # and done: nothing left to recover


async def test_a_pending_order_of_another_client_id_is_not_judged(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:  # an earlier process's order under client id 9, unanswered
        journal.record_order_sent(Endpoint("127.0.0.1", gateway.port, 9), 40, "v6-x-1", 1.0)
    app = await started(gateway, journal=path)  # client id 1: cannot see id 9's orders
    assert [o.order_ref for o in app.manager.journal.pending_orders()] == ["v6-x-1"]
    await app.manager.stop()


async def test_an_order_the_journal_cannot_record_is_not_sent(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    app = await started(gateway, journal=path)
    with disk_full(path), pytest.raises(JournalWriteFailed, match=str(path)):
        app.place()
    await asyncio.sleep(2 * T)
    assert gateway.orders == ()
    assert app.manager.journal.orders() == []
    assert (await app.manager.connection_health())["open_orders"] == 0
    await app.manager.stop()


def test_a_7_5_day_old_delivered_fill_survives_pruning(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    now = datetime.now(UTC).timestamp()
    with Journal(path) as journal:
        journal.record_delivery("old.01", "old", 1, now - 7.5 * DAY)
        journal.record_delivery("new.01", "new", 1, now)
    manager = IBConnectionManager(journal=path)  # prunes as it opens the journal
    assert DEFAULT_FILL_RETENTION == 8 * DAY
    assert manager.journal.is_delivered("old.01")
    manager.journal.close()


async def test_a_trade_logged_days_ago_and_filled_now_is_kept(gateway: FakeGateway) -> None:
    clock = WallClock(datetime.now(UTC))
    async with FakeGateway(port=0, market_interval=None, wall_clock=clock.epoch) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        app = App(IBConnectionManager(port=gw.port, wall_clock=clock, **fast_settings()))
        await app.manager.start()
        await app.manager.wait_connected(timeout=40 * T)
        trade = await app.working()
        clock.advance(3 * DAY)  # it worked for days
        exec_id = gw.fill_order(trade.order.orderId)
        await wait_until(lambda: app.fills[exec_id] == 1)
        clock.advance(DEFAULT_DONE_TRADE_RETENTION / 2)
        app.place()  # state added: the hourly prune runs
        assert app.manager._orders.tracker.registry.get(trade) is not None
        await app.manager.stop()


async def test_a_superseded_resync_answered_late_does_not_reconcile(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway, heartbeat_interval=40 * T, heartbeat_timeout=40 * T,
                        connect_timeout=8 * T)  # fmt: skip
    gateway.set_latency(4 * T)  # every answer late
    asked = gateway.request_counts[REQ_EXECUTIONS]
    gateway.broadcast_error(1101)
    await asyncio.sleep(T)
    trade = app.place()  # in flight while the first resync waits
    gateway.broadcast_error(1101)  # supersedes it
    await wait_until(lambda: gateway.request_counts[REQ_EXECUTIONS] > asked, 60 * T)
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 60 * T)
    gateway.set_latency(0)
    await wait_until(lambda: not app.manager.connection.hooks.registry.tasks, 60 * T)
    assert trade.orderStatus.status == "Submitted"
    assert all(entry.message != NOT_RECEIVED for entry in trade.log)
    await app.manager.stop()


async def test_abandoned_resync_requests_leave_ib_async_s_pending_tables(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway, connect_timeout=4 * T)
    gateway.ignore_requests([REQ_EXECUTIONS])
    asked = gateway.request_counts[REQ_EXECUTIONS]
    gateway.broadcast_error(1101)
    await wait_until(lambda: gateway.request_counts[REQ_EXECUTIONS] >= asked + 2, 40 * T)
    gateway.ignore_requests()
    await wait_until(lambda: not app.manager.connection.hooks.registry.tasks, 40 * T)
    wrapper = app.manager.ib.wrapper
    assert [key for key, future in wrapper._futures.items() if future.done()] == []
    ours = {k for k in wrapper._results if isinstance(k, int) or k.endswith("Orders")}
    assert ours <= set(wrapper._futures)  # the resync's answered or dropped, none left behind
    await app.manager.stop()


async def test_open_orders_counts_an_unacknowledged_order(gateway: FakeGateway) -> None:
    app = await started(gateway)
    gateway.close_after_place_order(True)  # written, never acknowledged
    app.place()
    assert (await app.manager.connection_health())["open_orders"] == 1
    await reconnected(app.manager, 1)
    gateway.close_after_place_order(False)
    await app.manager.stop()


async def test_req_all_open_orders_lists_other_clients_working_orders(
    gateway: FakeGateway,
) -> None:
    others = [IB(), IB()]
    for client_id, ib in enumerate(others, start=11):
        await ib.connectAsync("127.0.0.1", gateway.port, clientId=client_id, timeout=20 * T)
        ib.placeOrder(AAPL, LimitOrder("BUY", 10, FAR_LIMIT))
    await wait_until(lambda: len(gateway.orders) == 2)
    viewer = IB()
    await viewer.connectAsync("127.0.0.1", gateway.port, clientId=13, timeout=20 * T)
    trades = await viewer.reqAllOpenOrdersAsync()
    assert sorted(t.order.clientId for t in trades) == [11, 12]
    assert await viewer.reqOpenOrdersAsync() == []  # its own: none
    for ib in (*others, viewer):
        ib.disconnect()


def test_the_fill_retention_outlasts_tws_s_longest_execution_report() -> None:
    assert timedelta(seconds=DEFAULT_FILL_RETENTION) > timedelta(days=7)
