"""The manager's trading hooks (v6.orders.tracking) over real sockets: ``remove_listener`` reaches
``on_fill`` and ``on_commission`` as it reaches the connection hooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import fast_settings, wait_until
from tests.orders.trading import AAPL_ID, App, T, reconnected
from v6.manager import IBConnectionManager
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
