"""The manager's trading hooks (v6.orders.tracking) over real sockets: ``remove_listener`` reaches
``on_fill`` and ``on_commission`` as it reaches the connection hooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ib_async import Fill, Trade

from tests.helpers import fast_settings, log_lines, wait_until
from tests.orders.trading import AAPL_ID, App, T, reconnected, started
from v6.errors import ConfigError
from v6.manager import IBConnectionManager
from v6.orders.journal_lock import DEFAULT_JOURNAL_LOCK_TIMEOUT
from v6.testing import FakeGateway


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0, market_interval=None) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        yield gw


async def test_a_removed_callback_hears_nothing_from_any_hook(gateway: FakeGateway) -> None:
    manager = IBConnectionManager(port=gateway.port, **fast_settings())
    app = App(manager)  # stays registered: the fills do reach the application
    heard: list[tuple[Any, ...]] = []

    def removed(*args: Any) -> None:
        heard.append(args)

    for hook in (manager.on_fill, manager.on_commission, manager.on_connected,
                 manager.on_disconnected, manager.on_state_change, manager.on_heartbeat,
                 manager.add_resubscribe):  # fmt: skip
        hook(removed)
    manager.remove_listener(removed)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    trade = await app.working()
    exec_id = gateway.fill_order(trade.order.orderId)
    await wait_until(lambda: app.commissions[exec_id] == 1)
    await gateway.drop_all()
    await reconnected(manager, 1)
    await asyncio.sleep(4 * T)  # heartbeats come every 2 T
    assert app.fills == {exec_id: 1}
    assert heard == []
    manager.remove_listener(removed)  # removing again is harmless
    await manager.stop()


async def test_removing_one_on_fill_keeps_the_others(gateway: FakeGateway) -> None:
    manager = IBConnectionManager(port=gateway.port, **fast_settings())
    app = App(manager)
    kept: list[str] = []
    removed: list[str] = []
    manager.on_fill(lambda trade, fill: kept.append(fill.execution.execId))

    def on_fill(trade: Any, fill: Any) -> None:
        removed.append(fill.execution.execId)

    manager.on_fill(on_fill)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    first = await app.working()
    first_id = gateway.fill_order(first.order.orderId)
    await wait_until(lambda: len(kept) == 1)
    manager.remove_listener(on_fill)
    second = await app.working()
    second_id = gateway.fill_order(second.order.orderId)
    await wait_until(lambda: len(kept) == 2)
    await asyncio.sleep(2 * T)
    assert kept == [first_id, second_id]
    assert removed == [first_id]  # heard before its removal, not after
    await manager.stop()


async def test_a_raising_handler_is_logged_with_the_exec_id_counted_and_not_retried(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    app = await started(gateway, journal=journal)

    def buggy(trade: Trade, fill: Fill) -> None:
        raise RuntimeError("the application's bug")

    app.manager.on_fill(buggy)
    trade = await app.working()
    with log_lines("ERROR") as errors:
        exec_id = gateway.fill_order(trade.order.orderId)
        await wait_until(lambda: app.fills[exec_id] == 1)
    assert (await app.manager.connection_health())["fill_handler_errors"] == 1
    assert any(exec_id in line and "not retried" in line for line in errors)
    await app.manager.stop()
    again = await started(gateway, journal=journal)  # acknowledged all the same
    await asyncio.sleep(2 * T)
    assert again.fills == {}
    await again.manager.stop()


def test_the_journal_lock_timeout_comes_from_the_environment() -> None:
    manager = IBConnectionManager.from_env({"IB_JOURNAL_LOCK_TIMEOUT": "2.5"})
    assert manager.journal.lock_timeout == 2.5
    assert DEFAULT_JOURNAL_LOCK_TIMEOUT == 10.0
    for bad in ("soon", "-1"):
        with pytest.raises(ConfigError, match="IB_JOURNAL_LOCK_TIMEOUT"):
            IBConnectionManager.from_env({"IB_JOURNAL_LOCK_TIMEOUT": bad})
    with pytest.raises(ConfigError, match="journal_lock_timeout"):
        IBConnectionManager(journal_lock_timeout=-1)
