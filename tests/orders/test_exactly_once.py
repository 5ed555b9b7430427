"""Property: whatever interleaving of fills, drops, gateway restarts and re-reported executions
(a 1100 -> 1101 resync), the application is told of every execution at the gateway exactly once.
Real sockets, real ib_async, the trading FakeGateway; few examples (each is a whole session)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import fast_settings, wait_until
from tests.orders.trading import AAPL_ID, App, T
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

ACTIONS = ("fill", "fill while away", "drop", "restart", "resync")


async def play(actions: list[str]) -> tuple[list[str], list[str]]:
    async with FakeGateway(port=0, market_interval=None) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        app = App(IBConnectionManager(port=gw.port, **fast_settings()))
        manager = app.manager
        await manager.start()
        try:
            await manager.wait_connected(timeout=40 * T)
            trade = await app.working(len(actions) * 10 + 10)
            for action in actions:
                await manager.wait_connected(timeout=60 * T)
                await step(gw, action, trade.order.orderId)
            await manager.wait_connected(timeout=60 * T)
            expected = sorted(e.exec_id for e in gw.executions)
            await wait_until(lambda: sorted(app.fills) == expected, timeout=60 * T)
            await asyncio.sleep(3 * T)  # and nothing more comes
            return sorted(app.fills.elements()), expected
        finally:
            await manager.stop()


async def step(gw: FakeGateway, action: str, order_id: int) -> None:
    if action == "fill":
        gw.fill_order(order_id, 10)
    elif action == "fill while away":
        await gw.stop()
        gw.fill_order(order_id, 10)
        await gw.start()
    elif action == "drop":
        await gw.drop_all()
    elif action == "restart":
        await gw.restart()
    else:  # every execution of the day re-reported to a live session
        gw.broadcast_error(1100)
        gw.broadcast_error(1101)
        await asyncio.sleep(2 * T)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ACTIONS), min_size=2, max_size=6))
def test_every_execution_is_delivered_exactly_once(actions: list[str]) -> None:
    delivered, expected = asyncio.run(play(actions))
    assert delivered == expected  # a multiset: each exec id once
