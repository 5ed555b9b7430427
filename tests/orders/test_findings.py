"""Issue 19's twelve findings, one regression test each, over real sockets: a trading FakeGateway,
the real ib_async client, the real manager. Each failed on the code before the fix."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, LimitOrder, Stock

from tests.helpers import WallClock, fast_settings, log_lines, wait_until
from tests.orders.trading import (
    AAPL_ID,
    FAR_LIMIT,
    App,
    T,
    crash_inside_on_fill,
    disk_full,
    reconnected,
    started,
)
from v6.errors import JournalLocked
from v6.manager import IBConnectionManager
from v6.orders.tracker import NOT_RECEIVED
from v6.protocol.codec import ClientMessage
from v6.testing import FakeGateway

AAPL = Stock("AAPL", "SMART", "USD", conId=AAPL_ID)


# 1 ---------------------------------------------------------------------------------------------
async def test_1_orders_sharing_an_app_chosen_order_ref_keep_their_own_trades(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    app = await started(gateway, journal=tmp_path / "j.sqlite")
    first = app.manager.ib.placeOrder(AAPL, LimitOrder("BUY", 100, FAR_LIMIT, orderRef="strat"))
    second = app.manager.ib.placeOrder(AAPL, LimitOrder("BUY", 50, FAR_LIMIT, orderRef="strat"))
    await wait_until(lambda: {first.orderStatus.status, second.orderStatus.status} == {"Submitted"})
    exec_id = gateway.fill_order(second.order.orderId)
    await wait_until(lambda: second.orderStatus.status == "Filled")
    await asyncio.sleep(2 * T)
    assert app.fill_trades == [second]
    assert [f.execution.execId for f in second.fills] == [exec_id]
    assert (first.orderStatus.status, first.order.totalQuantity, first.fills) == (
        "Submitted", 100, [])
    assert [o.order_id for o in app.manager.journal.orders()] == [first.order.orderId]
    await gateway.drop_all()  # and across a reconnect, each still finds its own
    await reconnected(app.manager, 1)
    assert (first.orderStatus.status, second.orderStatus.status) == ("Submitted", "Filled")
    await app.manager.stop()


# 2 ---------------------------------------------------------------------------------------------
async def test_2_an_order_placed_during_a_resync_is_not_proven_absent(gateway: FakeGateway) -> None:
    app = await started(gateway, heartbeat_interval=40 * T, heartbeat_timeout=40 * T)
    asked = gateway.request_counts[ClientMessage.REQ_EXECUTIONS]
    gateway.set_latency(3 * T)  # the new order's acknowledgement comes after execDetailsEnd
    gateway.broadcast_error(1101)
    await wait_until(lambda: gateway.request_counts[ClientMessage.REQ_EXECUTIONS] > asked)
    trade = app.place()
    await wait_until(lambda: trade.orderStatus.status == "Submitted", timeout=40 * T)
    gateway.set_latency(0)
    await asyncio.sleep(3 * T)
    assert trade.orderStatus.status == "Submitted"
    assert all(entry.message != NOT_RECEIVED for entry in trade.log)
    exec_id = gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    assert app.fills == {exec_id: 1}
    await app.manager.stop()


# 3 ---------------------------------------------------------------------------------------------
async def test_3_a_second_owner_of_a_journal_is_refused_naming_the_holder(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    app = await started(gateway, journal=path)
    with pytest.raises(JournalLocked, match=f"process {os.getpid()}") as caught:
        IBConnectionManager(port=gateway.port, journal=path, journal_lock_timeout=2 * T)
    assert caught.value.path == str(path)
    await app.manager.stop()  # the lock goes with the owner
    IBConnectionManager(port=gateway.port, journal=path, journal_lock_timeout=0).journal.close()


async def test_3_a_crashed_owner_s_lock_is_released_by_the_os(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    holder = await asyncio.create_subprocess_exec(  # holds the lock as a journal does
        sys.executable, "-c", "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path) + '.lock'!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'%d' % os.getpid())\n"
        "print('held', flush=True); time.sleep(60)", stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"held"
        with pytest.raises(JournalLocked, match=f"process {holder.pid}"):
            IBConnectionManager(journal=path, journal_lock_timeout=0)
    finally:
        holder.kill()  # a crash: no unlock, no close; the OS lets go
        await holder.wait()
    IBConnectionManager(journal=path, journal_lock_timeout=2 * T).journal.close()


# 4 ---------------------------------------------------------------------------------------------
async def test_4_a_fill_whose_handler_never_returned_is_delivered_again_after_a_crash(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    exec_id = await crash_inside_on_fill(gateway, journal, client_id=7)
    with log_lines("WARNING") as warnings:
        app = await started(gateway, journal=journal, client_id=7)
        await wait_until(lambda: app.fills[exec_id] == 1)
    health = await app.manager.connection_health()
    assert health["fills_redelivered"] == 1
    assert any(exec_id in line and "again" in line for line in warnings)
    await app.manager.stop()
    again = await started(gateway, journal=journal, client_id=7)  # acknowledged now: never again
    await asyncio.sleep(2 * T)
    assert again.fills == {}
    await again.manager.stop()


# 5 ---------------------------------------------------------------------------------------------
async def test_5_a_client_id_with_orders_in_the_journal_is_pinned_after_a_restart(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    first = await started(gateway, journal=journal, client_id=[7, 8])
    trade = await first.working()
    await first.manager.stop()
    stale = IB()  # the dead process's session, still holding id 7 until it times out
    await stale.connectAsync("127.0.0.1", gateway.port, clientId=7, timeout=20 * T)
    exec_id = gateway.fill_order(trade.order.orderId, client_id=7)
    with log_lines("WARNING") as warnings:
        second = App(IBConnectionManager(port=gateway.port, journal=journal, client_id=[7, 8],
                                         **fast_settings()))  # fmt: skip
        await second.manager.start()
        stats = second.manager.stats
        await wait_until(lambda: stats.attempts.get("client_id_in_use", 0) >= 2, timeout=40 * T)
    assert second.manager.client_id == 7
    assert (await second.manager.connection_health())["pinned_client_id"] == 7
    assert any("pinned" in line for line in warnings)
    stale.disconnect()
    await second.manager.wait_connected(timeout=40 * T)
    await wait_until(lambda: second.fills[exec_id] == 1)
    assert second.manager.client_id == 7
    await second.manager.stop()


# 6 ---------------------------------------------------------------------------------------------
async def test_6_a_journal_that_cannot_be_written_is_loud_and_loses_nothing(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    app = await started(gateway, journal=path)
    trade = await app.working()
    with log_lines("ERROR") as errors, disk_full(path):
        exec_id = gateway.fill_order(trade.order.orderId, 50)
        await wait_until(lambda: app.fills[exec_id] == 1)  # the fill still reaches on_fill
        health = await app.manager.connection_health()
        assert health["healthy"] is False
        assert health["journal_failing"]
        await gateway.drop_all()  # and a reconnect is not stuck on it
        await reconnected(app.manager, 1)
    assert any(str(path) in line and "cannot be written" in line for line in errors)
    await wait_until(lambda: app.manager.journal.failure is None, timeout=40 * T)  # retried
    assert (await app.manager.connection_health())["healthy"] is True
    await app.manager.stop()
    again = await started(gateway, journal=path)  # it was written: not delivered again
    await asyncio.sleep(2 * T)
    assert again.fills == {}
    await again.manager.stop()


# 7 ---------------------------------------------------------------------------------------------
async def test_7_a_correction_live_then_its_original_in_a_resync_leaves_one_fill(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway)
    trade = await app.working(100)
    gateway.drop_executions(True)  # 1100: the original is lost
    original = gateway.fill_order(trade.order.orderId, 90)
    gateway.drop_executions(False)
    correction = gateway.correct_execution(original, shares=90, price=99.0)
    await wait_until(lambda: app.fills[correction] == 1)
    asked = gateway.request_counts[ClientMessage.REQ_EXECUTIONS]
    gateway.broadcast_error(1101)  # the resync re-reports the original
    await wait_until(lambda: gateway.request_counts[ClientMessage.REQ_EXECUTIONS] > asked)
    await asyncio.sleep(3 * T)
    assert [f.execution.execId for f in trade.fills] == [correction]
    assert sum(f.execution.shares for f in trade.fills) == 90
    await app.manager.stop()


async def test_7_a_fill_and_its_correction_during_an_outage_arrive_in_order(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway)
    trade = await app.working(50)
    seen: list[float] = []
    app.manager.on_fill(lambda t, f: seen.append(sum(x.execution.shares for x in t.fills)))
    await gateway.drop_all()
    original = gateway.fill_order(trade.order.orderId, 50)
    correction = gateway.correct_execution(original, shares=28)
    await reconnected(app.manager, 1)
    await wait_until(lambda: app.fills[correction] == 1)
    assert seen == [50, 28]  # on_fill(original) saw the original only; then it was replaced
    assert [f.execution.execId for f in trade.fills] == [correction]
    await app.manager.stop()


async def test_7_a_restarted_process_s_trade_holds_the_latest_revisions_only(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    first = await started(gateway, journal=journal)
    trade = await first.working(100)
    original = gateway.fill_order(trade.order.orderId, 30)
    correction = gateway.correct_execution(original, shares=30, price=99.0)
    await wait_until(lambda: first.fills[correction] == 1)
    await first.manager.stop()
    second = await started(gateway, journal=journal)
    held = next(t for t in second.manager.ib.openTrades() if t.order.permId == trade.order.permId)
    assert [f.execution.execId for f in held.fills] == [correction]
    last = gateway.fill_order(trade.order.orderId, 70, client_id=1)
    await wait_until(lambda: second.fills[last] == 1)
    assert sum(f.execution.shares for f in held.fills) == 100
    await second.manager.stop()


# 8 ---------------------------------------------------------------------------------------------
async def test_8_an_order_placed_from_on_fill_for_a_recovered_fill_is_accepted(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway)
    trade = await app.working()
    hedges: list[Any] = []
    app.manager.on_fill(lambda t, f: hedges.append(app.manager.ib.placeOrder(
        AAPL, LimitOrder("SELL", f.execution.shares, 500.0))))  # fmt: skip
    await gateway.drop_all()
    gateway.fill_order(trade.order.orderId)
    await reconnected(app.manager, 1)
    assert len(hedges) == 1
    await wait_until(lambda: hedges[0].orderStatus.status == "Submitted")
    assert len(gateway.orders) == 2
    await app.manager.stop()


# 9 ---------------------------------------------------------------------------------------------
async def test_9_a_trade_built_for_an_orphan_fill_is_not_working(gateway: FakeGateway) -> None:
    first = await started(gateway)  # no journal: a new process will not know its fills
    trade = await first.working(200)
    gateway.fill_order(trade.order.orderId, 100)
    gateway.fill_order(trade.order.orderId, 100)
    await wait_until(lambda: trade.orderStatus.status == "Filled")
    await first.manager.stop()
    gateway.end_trading_day(restart=True)  # TWS forgot the order; its executions are today's
    app = await started(gateway)
    assert sorted(app.fills) == sorted(e.exec_id for e in gateway.executions)
    built = app.fill_trades[0]
    assert app.fill_trades == [built, built]  # one order: one Trade, both fills
    assert (built.orderStatus.status, built.orderStatus.filled) == ("Filled", 200)
    assert (await app.manager.connection_health())["open_orders"] == 0
    assert app.manager.connection.participants.may_rotate_client_id()
    await app.manager.stop()


# 10 --------------------------------------------------------------------------------------------
async def test_10_a_local_clock_days_ahead_prunes_nothing_tws_still_reports(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    clock = WallClock(datetime.now(UTC) + timedelta(days=10))  # this host's clock is wrong
    app = App(IBConnectionManager(port=gateway.port, journal=tmp_path / "j.sqlite",
                                  wall_clock=clock, **fast_settings()))  # fmt: skip
    await app.manager.start()
    await app.manager.wait_connected(timeout=40 * T)
    trade = await app.working()
    exec_id = gateway.fill_order(trade.order.orderId, 50)
    await wait_until(lambda: app.fills[exec_id] == 1)
    clock.advance(2 * 3600)  # the hourly prune is due at the next state change
    app.place()
    assert app.manager.journal.is_delivered(exec_id)
    await gateway.drop_all()
    await reconnected(app.manager, 1)
    await asyncio.sleep(2 * T)
    assert app.fills == {exec_id: 1}
    await app.manager.stop()


# 11 --------------------------------------------------------------------------------------------
async def test_11_a_trade_recovered_by_a_new_process_shows_what_its_order_did(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    first = await started(gateway, journal=journal)
    done = await first.working(100)
    working = await first.working(40)
    await first.manager.stop()
    gateway.fill_order(done.order.orderId, 100, price=100.0, client_id=1)  # while away
    second = await started(gateway, journal=journal)
    assert (await second.manager.connection_health())["open_orders"] == 1  # `working`
    recovered = second.fill_trades[0]
    status = recovered.orderStatus
    assert (status.status, status.filled, status.remaining) == ("Filled", 100, 0)
    assert status.avgFillPrice == 100.0
    assert recovered.order.orderId == done.order.orderId
    await gateway.drop_all()  # and it stays so through later reconnects
    await reconnected(second.manager, 1)
    assert (status.status, status.filled, recovered.order.orderId) == (
        "Filled", 100, done.order.orderId)
    assert working.order.orderId in {t.order.orderId for t in second.manager.ib.openTrades()}
    await second.manager.stop()


# 12 --------------------------------------------------------------------------------------------
async def test_12_a_day_order_that_expired_while_away_is_settled(gateway: FakeGateway) -> None:
    app = await started(gateway)
    trade = await app.working()
    cancelled: list[str] = []
    trade.cancelledEvent += lambda t: cancelled.append(t.order.orderRef)
    await gateway.stop()
    gateway.end_trading_day(restart=True)  # expired, then TWS's nightly restart forgot it
    await gateway.start()
    await reconnected(app.manager, 1)
    assert trade.orderStatus.status == "Cancelled"
    assert cancelled == [trade.order.orderRef]
    assert (await app.manager.connection_health())["open_orders"] == 0
    await app.manager.stop()


async def test_12_an_outage_across_midnight_warns_that_fills_may_be_lost(
    gateway: FakeGateway,
) -> None:
    clock = WallClock(datetime(2026, 11, 2, 23, 59, 50, tzinfo=UTC))
    app = App(IBConnectionManager(port=gateway.port, wall_clock=clock, **fast_settings()))
    await app.manager.start()
    await app.manager.wait_connected(timeout=40 * T)
    app.manager.on_disconnected(lambda reason: clock.advance(20))  # the outage: 20 s
    with log_lines("WARNING") as warnings:
        await gateway.drop_all()
        await reconnected(app.manager, 1)
    assert any("midnight" in line for line in warnings)
    await app.manager.stop()


async def test_12_1102_resyncs_orders_and_executions(gateway: FakeGateway) -> None:
    app = await started(gateway)
    trade = await app.working()
    gateway.broadcast_error(1100)
    gateway.drop_executions(True)
    exec_id = gateway.fill_order(trade.order.orderId)
    gateway.drop_executions(False)
    gateway.broadcast_error(1102)
    await wait_until(lambda: app.fills[exec_id] == 1)
    await app.manager.stop()
