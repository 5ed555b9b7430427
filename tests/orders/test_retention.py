"""Retention: done Trades and old fills are forgotten on schedule, never what may come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ib_async import Order, OrderStatus, Trade, TradeLogEntry

from tests.helpers import WallClock, fast_settings, wait_until
from tests.orders.trading import AAPL_ID, App, T, reconnected
from v6.manager import IBConnectionManager
from v6.orders.journal import Journal
from v6.orders.registry import TradeRegistry
from v6.orders.retention import (
    DAY,
    DEFAULT_DONE_TRADE_RETENTION,
    DEFAULT_FILL_RETENTION,
    DEFAULT_PRUNE_INTERVAL,
    PruneSchedule,
    forget_expired,
)
from v6.testing import FakeGateway

START = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def trade(order_id: int, status: str, updated: datetime, *, perm_id: int = 0) -> Trade:
    made = Trade(order=Order(orderId=order_id, permId=perm_id, orderRef=f"v6-t-{order_id}"))
    made.orderStatus.status = status
    made.log.append(TradeLogEntry(updated, status, ""))
    return made


def test_the_schedule_is_due_at_most_once_per_interval() -> None:
    clock = WallClock(START)
    schedule = PruneSchedule(clock.epoch)
    assert schedule.due() is None  # its maker pruned at start
    clock.now += timedelta(seconds=DEFAULT_PRUNE_INTERVAL - 1)
    assert schedule.due() is None
    clock.now += timedelta(seconds=1)
    assert schedule.due() == clock.epoch()
    assert schedule.due() is None


def test_only_done_trades_past_retention_are_forgotten() -> None:
    registry = TradeRegistry()
    old = START - timedelta(days=2)
    done_old = trade(1, OrderStatus.Filled, old, perm_id=11)
    done_new = trade(2, OrderStatus.Cancelled, START)
    working_old = trade(3, OrderStatus.Submitted, old)
    unknown_old = trade(4, OrderStatus.Inactive, old)
    for t in (done_old, done_new, working_old):
        registry.add(t, 1)
    registry.add(unknown_old, 1, acknowledged=False)
    assert registry.prune_done(START - timedelta(days=1)) == 1
    assert registry.get(done_old) is None
    assert registry.find(11, "v6-t-1") is None  # no index keeps it either
    assert all(registry.get(t) is not None for t in (done_new, working_old, unknown_old))


def test_journal_prune_updates_its_memory_and_keeps_an_older_version() -> None:
    with Journal(None) as journal:
        journal.record_delivery("a.02", "a", 2, 10.0, commission=True)  # the correction, older
        journal.record_delivery("a.01", "a", 1, 30.0)
        journal.record_delivery("b.01", "b", 1, 40.0)
        assert journal.prune(before=20.0) == 1
        assert not journal.is_delivered("a.02")
        assert not journal.is_commission_delivered("a.02")
        assert journal.latest_version("a") == (1, "a.01")  # the remaining version, from the file
        assert journal.is_delivered("b.01")
        assert journal.prune(before=20.0) == 0
        assert journal.delivered_count() == 2


def test_forget_expired_drops_corrections_whose_fill_is_forgotten() -> None:
    now = START.timestamp()
    registry = TradeRegistry()
    with Journal(None) as journal:
        journal.record_delivery("c.02", "c", 2, now - DEFAULT_FILL_RETENTION - 1)
        journal.record_delivery("d.02", "d", 2, now - DAY)
        corrections = {"c.02": "c.01", "d.02": "d.01"}
        replaced: dict[str, object] = {"c.01": object(), "d.01": object()}
        assert forget_expired(now, registry, journal, corrections, replaced) == (0, 1)
        assert corrections == {"d.02": "d.01"}
        assert list(replaced) == ["d.01"]


async def test_a_long_running_manager_forgets_done_trades_and_old_fills(tmp_path: Path) -> None:
    # One clock for the manager and the gateway: retention is judged on the gateway's time.
    clock = WallClock(datetime.now(UTC))
    async with FakeGateway(port=0, market_interval=None, wall_clock=clock.epoch) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        manager = IBConnectionManager(
            port=gw.port, journal=tmp_path / "j.sqlite",
            wall_clock=clock, **fast_settings(),
        )  # fmt: skip
        app = App(manager)
        tracker = manager._orders.tracker
        await manager.start()
        await manager.wait_connected(timeout=40 * T)
        first = await app.working(10)
        second = await app.working(10)
        exec_id = gw.fill_order(first.order.orderId, 10)
        await wait_until(lambda: first.orderStatus.status == "Filled")
        assert tracker.registry.get(first) is not None
        # A day later (by the gateway's executions too) the done Trade is forgotten.
        clock.advance(DEFAULT_DONE_TRADE_RETENTION + 60)
        later = gw.fill_order(second.order.orderId, 5)
        await wait_until(lambda: app.fills[later] == 1)
        assert tracker.registry.get(first) is None
        assert tracker.registry.get(second) is not None  # working: kept
        assert manager.journal.is_delivered(exec_id)  # the fill is kept far longer
        # The gateway still reports the fill at a reconnect: not delivered twice.
        await gw.drop_all()
        await reconnected(manager, 1)
        assert app.fills == {exec_id: 1, later: 1}
        clock.advance(DEFAULT_FILL_RETENTION)
        gw.fill_order(second.order.orderId, 5)
        await wait_until(lambda: second.orderStatus.status == "Filled")
        assert not manager.journal.is_delivered(exec_id)
        await manager.stop()
