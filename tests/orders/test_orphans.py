"""Orphan fills: a live execution whose order nobody has named yet is adopted by the order's
Trade if it comes within the grace, else delivered with a Trade built from it, never held until
the next reconnect. Driven through ib_async's own wrapper entry points (what its decoder calls),
no socket: the timing is the tracker's logic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, CommissionReport, Contract, Execution, Fill, Order, OrderState, Trade
from loguru import logger

from v6.orders.ib_adapter import IbAsyncOrders
from v6.orders.journal import Journal
from v6.orders.orphans import Orphans
from v6.orders.tracker import FillTracker

GRACE = 0.02
AAPL = Contract(conId=265598, symbol="AAPL", secType="STK", exchange="SMART", currency="USD")


def tracker(delivered: list[tuple[Trade, Fill]]) -> FillTracker:
    port = IbAsyncOrders(IB())
    made = FillTracker(
        port, Journal(None), deliver_fill=lambda t, f, done: delivered.append((t, f)),
        deliver_commission=lambda t, f, r: None, log=logger, orphan_grace=GRACE,
    )  # fmt: skip
    port.install(made)
    return made


def wrapper(tracked: FillTracker) -> Any:
    """ib_async's wrapper, whose entry points its decoder calls."""
    port = tracked.port
    assert isinstance(port, IbAsyncOrders)
    return port.ib.wrapper


def live_execution(tracked: FillTracker, exec_id: str, perm_id: int, order_id: int) -> None:
    execution = Execution(execId=exec_id, time=datetime.now(UTC), side="BOT", shares=5.0,
                          price=100.0, permId=perm_id, clientId=0, orderId=order_id)  # fmt: skip
    wrapper(tracked).execDetails(-1, AAPL, execution)  # -1: no request, so a live one


async def test_an_order_named_within_the_grace_adopts_its_fill() -> None:
    delivered: list[tuple[Trade, Fill]] = []
    tracked = tracker(delivered)
    live_execution(tracked, "0001.01", perm_id=77, order_id=3)
    assert delivered == []
    order = Order(orderId=3, clientId=0, permId=77, action="BUY", totalQuantity=5)
    wrapper(tracked).openOrder(3, AAPL, order, OrderState(status="Filled"))
    assert [(t.order.permId, f.execution.execId) for t, f in delivered] == [(77, "0001.01")]
    await asyncio.sleep(3 * GRACE)
    assert len(delivered) == 1  # its timer went with it


async def test_an_order_never_named_is_delivered_after_the_grace() -> None:
    delivered: list[tuple[Trade, Fill]] = []
    tracked = tracker(delivered)
    live_execution(tracked, "0002.01", perm_id=88, order_id=0)  # placed in TWS, say
    live_execution(tracked, "0002.01", perm_id=88, order_id=0)  # a repeat
    await asyncio.sleep(GRACE / 4)
    assert delivered == []
    await asyncio.sleep(3 * GRACE)
    [(trade, fill)] = delivered
    assert fill.execution.execId == "0002.01"
    assert trade.order.permId == 88
    assert trade.order.action == "BUY"
    assert trade.fills == [fill]
    assert tracked.registry.get(trade) is not None  # held like any Trade with a fill


async def test_two_live_fills_of_one_orphan_order_are_both_delivered() -> None:
    delivered: list[tuple[Trade, Fill]] = []
    tracked = tracker(delivered)
    live_execution(tracked, "0005.01", perm_id=55, order_id=0)
    await asyncio.sleep(3 * GRACE)
    live_execution(tracked, "0006.01", perm_id=55, order_id=0)  # same order, after the grace
    await asyncio.sleep(3 * GRACE)
    assert [f.execution.execId for _, f in delivered] == ["0005.01", "0006.01"]
    trade = delivered[0][0]
    assert delivered[1][0] is trade  # one order, one Trade
    assert (trade.orderStatus.status, tracked.registry.working()) == ("Filled", 0)


async def test_stopping_forgets_held_fills_and_their_timers() -> None:
    delivered: list[tuple[Trade, Fill]] = []
    tracked = tracker(delivered)
    live_execution(tracked, "0003.01", perm_id=99, order_id=0)
    tracked.close()
    await asyncio.sleep(3 * GRACE)
    assert delivered == []


def test_without_a_running_loop_a_fill_waits_for_adoption() -> None:
    released: list[Fill] = []
    orphans = Orphans(released.append, GRACE)
    fill = Fill(AAPL, Execution(execId="0004.01", permId=5), CommissionReport(), datetime.now(UTC))
    orphans.hold(fill)
    assert len(orphans) == 1
    assert orphans.adopt(Order(permId=5)) == [fill]
    assert len(orphans) == 0
    assert released == []
