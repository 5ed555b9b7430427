"""Fault matrix, trading state under misuse and crashes (issue 19): every row runs three times
against the trading FakeGateway; details = on_fill calls per exec id (last 11 characters) and
what else the row observed."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from ib_async import LimitOrder, Stock

from tests.faults.harness import RUNS, Harness, T
from tests.faults.test_fills import record, start
from tests.helpers import log_lines, wait_until
from tests.orders.trading import (
    AAPL_ID,
    FAR_LIMIT,
    crash_inside_on_fill,
    disk_full,
    held_state,
    reconnected,
)
from v6.errors import JournalLocked
from v6.manager import IBConnectionManager
from v6.orders.tracker import NOT_RECEIVED
from v6.protocol.codec import ClientMessage

SECTION = "Trading state under misuse and crashes"
ROWS: dict[str, str] = {
    "duplicate orderRef": "two orders, one app orderRef: each Trade its own fills and status",
    "order placed during a resync": "acknowledged after execDetailsEnd: never proven absent",
    "process crash inside on_fill then restart": "fill delivered again once, counted",
    "second process on the journal": "JournalLocked naming the holder's pid; first unaffected",
    "disk full mid-session": "fill still delivered; ERROR, unhealthy; retried, healthy again",
    "expired DAY order during an outage": "held Trade Cancelled through its events",
}

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("run", RUNS, ids=lambda r: f"run{r}")]
AAPL = Stock("AAPL", "SMART", "USD", conId=AAPL_ID)


@pytest.mark.fault("duplicate orderRef")
async def test_duplicate_order_ref(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    first = app.manager.ib.placeOrder(AAPL, LimitOrder("BUY", 100, FAR_LIMIT, orderRef="tag"))
    second = app.manager.ib.placeOrder(AAPL, LimitOrder("BUY", 50, FAR_LIMIT, orderRef="tag"))
    await wait_until(lambda: {first.orderStatus.status, second.orderStatus.status} == {"Submitted"})
    exec_id = h.gateway.fill_order(second.order.orderId)
    await wait_until(lambda: app.fills[exec_id] == 1)
    await wait_until(lambda: second.orderStatus.status == "Filled")
    assert app.fill_trades == [second]
    assert (first.orderStatus.status, first.fills) == ("Submitted", [])
    record(h, app, f"first {held_state(first)}; second {held_state(second)}")
    await h.finish()


@pytest.mark.fault("order placed during a resync")
async def test_order_placed_during_a_resync(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h, heartbeat_interval=40 * T, heartbeat_timeout=40 * T)
    asked = h.gateway.request_counts[ClientMessage.REQ_EXECUTIONS]
    h.gateway.set_latency(3 * T)
    h.gateway.broadcast_error(1101)
    await wait_until(lambda: h.gateway.request_counts[ClientMessage.REQ_EXECUTIONS] > asked)
    trade = app.place()
    await wait_until(lambda: trade.orderStatus.status == "Submitted", timeout=40 * T)
    h.gateway.set_latency(0)
    await asyncio.sleep(3 * T)
    assert trade.orderStatus.status == "Submitted"
    assert all(entry.message != NOT_RECEIVED for entry in trade.log)
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.fills[exec_id] == 1)
    record(h, app, held_state(trade))
    await h.finish()


@pytest.mark.fault("process crash inside on_fill then restart")
async def test_process_crash_inside_on_fill(harness: Harness, run: int, tmp_path: Path) -> None:
    h = harness
    journal = tmp_path / "j.sqlite"
    h.gateway.set_quote(AAPL_ID, 100.00, 100.02)
    exec_id = await crash_inside_on_fill(h.gateway, journal, client_id=1)
    app = await start(h, journal=journal)
    await wait_until(lambda: app.fills[exec_id] == 1)
    health = await app.manager.connection_health()
    assert health["fills_redelivered"] == 1
    redelivered = health["fills_redelivered"]
    record(h, app, f"handed out by the dead process; fills_redelivered {redelivered}")
    await h.finish()


@pytest.mark.fault("second process on the journal")
async def test_second_process_on_the_journal(harness: Harness, run: int, tmp_path: Path) -> None:
    h = harness
    path = tmp_path / "j.sqlite"
    app = await start(h, journal=path)
    trade = await app.working()
    with pytest.raises(JournalLocked) as caught:
        IBConnectionManager(port=h.gateway.port, journal=path, journal_lock_timeout=2 * T)
    assert caught.value.pid == os.getpid()
    exec_id = h.gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.fills[exec_id] == 1)
    record(h, app, f"JournalLocked (pid {caught.value.pid}); {held_state(trade)}")
    await h.finish()


@pytest.mark.fault("disk full mid-session")
async def test_disk_full_mid_session(harness: Harness, run: int, tmp_path: Path) -> None:
    h = harness
    path = tmp_path / "j.sqlite"
    app = await start(h, journal=path)
    trade = await app.working()
    with log_lines("ERROR") as errors, disk_full(path):
        exec_id = h.gateway.fill_order(trade.order.orderId)
        await wait_until(lambda: app.fills[exec_id] == 1)
        unhealthy = await app.manager.connection_health()
        await h.gateway.drop_all()
        await reconnected(app.manager, 1)
    await wait_until(lambda: app.manager.journal.failure is None, timeout=40 * T)
    assert unhealthy["healthy"] is False
    assert any("cannot be written" in line for line in errors)
    assert (await app.manager.connection_health())["healthy"] is True
    record(h, app, f"journal_failing: {unhealthy['journal_failing']}; healthy again")
    await h.finish()


@pytest.mark.fault("expired DAY order during an outage")
async def test_expired_day_order_during_an_outage(harness: Harness, run: int) -> None:
    h = harness
    app = await start(h)
    trade = await app.working()
    cancelled: list[str] = []
    trade.cancelledEvent += lambda t: cancelled.append(t.orderStatus.status)
    await h.gateway.stop()
    h.gateway.end_trading_day(restart=True)
    await h.gateway.start()
    await reconnected(app.manager, 1)
    assert cancelled == ["Cancelled"]
    assert (await app.manager.connection_health())["open_orders"] == 0
    record(h, app, f"{held_state(trade)}, cancelledEvent once")
    await h.finish()
