"""Fault matrix, request pacing (issue 17): the gateway enforces IB's pacing rules (windows
scaled: ten minutes = 0.6 s); each row runs three times. details = what the scheduler counted."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from ib_async import IB, BarDataList, Contract, Stock

from tests.faults.harness import RUNS, Harness, T
from tests.orders.trading import AAPL_ID, App, reconnected
from v6.protocol.codec import ClientMessage
from v6.protocol.codes import ErrorCode
from v6.protocol.pacing import PacingLimits

SECTION = "Request pacing"
ROWS: dict[str, str] = {
    "162 from a rule the scheduler did not know": "another client spent the login's budget: "
    "the 162s never reach the caller; each request sent again after the window and answered",
    "disconnect with 40 requests queued": "the socket drops with most of 40 manager.request() "
    "calls waiting: all 40 answered after the reconnect, no pacing error",
    "order placed during a full backfill": "60 historical requests waiting for their window: the "
    "order goes out at once and is acknowledged as fast as when idle",
}

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("run", RUNS, ids=lambda r: f"run{r}")]

#: Only the historical window is on (10 minutes = 0.6 s), at the gateway and in the scheduler.
WINDOW = PacingLimits(identical_window=None, same_contract=None, historical=10,
                      open_historical=None, realtime_bars=None, market_data_lines=None,
                      scale=0.001)  # fmt: skip
HISTORICAL_WINDOW = WINDOW.historical_window


def stock(con_id: int) -> Contract:
    return Stock(f"S{con_id}", "SMART", "USD", conId=con_id)


def history(ib: IB, con_id: int) -> Any:
    return ib.reqHistoricalDataAsync(stock(con_id), "", "60 S", "5 secs", "TRADES", False,
                                     timeout=0)  # fmt: skip


def details(h: Harness) -> str:
    assert h.manager is not None
    pacing = h.manager.connection.participants.health(True)["pacing"]
    return (f"waited {pacing['waited']}, violations {pacing['violations'] or 'none'}, "
            f"retried {pacing['retried']}")  # fmt: skip


@pytest.mark.fault("162 from a rule the scheduler did not know")
@pytest.mark.gateway(pacing_rules=replace(WINDOW, historical=4))
async def test_a_162_from_another_clients_spending_is_retried(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start(pacing=WINDOW, stale_after=None)  # it believes 10 are free
    other = IB()  # another client on the same login spends 3 of the 4
    h.holders.append(other)
    await other.connectAsync("127.0.0.1", h.gateway.port, clientId=99, timeout=2)
    assert all(await asyncio.gather(*(history(other, i) for i in (1, 2, 3))))
    started = h.now()
    bars: list[BarDataList] = await asyncio.wait_for(
        asyncio.gather(*(history(manager.ib, i) for i in (4, 5, 6))), 200 * T
    )
    h.timed("first refused -> all answered", h.now() - started, HISTORICAL_WINDOW + 20 * T)
    assert all(bars)  # the callers' awaitables completed, with data
    assert h.gateway.pacing_errors[ErrorCode.HISTORICAL_DATA_ERROR] >= 2  # IB did refuse
    assert ErrorCode.HISTORICAL_DATA_ERROR not in h.errors  # ... and the caller never saw it
    h.obs.details = details(h)
    await h.finish()


@pytest.mark.fault("disconnect with 40 requests queued")
@pytest.mark.gateway(pacing_rules=WINDOW)
async def test_queued_requests_outlive_a_disconnect(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start(pacing=WINDOW, stale_after=None)
    calls = [asyncio.ensure_future(manager.request(lambda ib, i=i: history(ib, i),
                                                   timeout=400 * T))
             for i in range(1, 41)]  # fmt: skip
    await asyncio.sleep(2 * T)
    queued = manager.connection.participants.health(True)["pacing"]["queued"]["bulk"]
    assert queued >= 25  # most still wait for the historical window
    dropped = h.now()
    await h.gateway.drop_all()
    await reconnected(manager, 1)
    bars = await asyncio.wait_for(asyncio.gather(*calls), 400 * T)
    h.timed("drop -> all 40 answered", h.now() - dropped, 5 * HISTORICAL_WINDOW + 40 * T)
    assert all(bars)
    assert h.gateway.pacing_errors == {}
    h.obs.details = f"{queued} waiting at the drop; " + details(h)
    await h.finish()


@pytest.mark.fault("order placed during a full backfill")
@pytest.mark.gateway(pacing_rules=WINDOW, market_interval=None)
async def test_an_order_goes_out_at_once_during_a_backfill(harness: Harness, run: int) -> None:
    h = harness
    h.gateway.set_quote(AAPL_ID, 100.00, 100.02)
    app = App(await h.start(pacing=WINDOW, stale_after=None))
    idle = await acknowledged(h, app)
    backfill = [asyncio.ensure_future(history(app.manager.ib, i)) for i in range(1, 61)]
    await asyncio.sleep(2 * T)
    busy = await acknowledged(h, app)
    h.timed("place -> Submitted during the backfill", busy, max(4 * idle, 4 * T))
    waiting = app.manager.connection.participants.health(True)["pacing"]["queued"]["bulk"]
    assert waiting >= 40  # the backfill was still waiting when the order was acknowledged
    for call in backfill:
        call.cancel()
    h.obs.details = f"idle {idle * 1000:.1f} ms, {waiting} requests waiting; " + details(h)
    assert h.gateway.request_counts[ClientMessage.PLACE_ORDER] == 2
    await h.finish()


async def acknowledged(h: Harness, app: App) -> float:
    """Seconds from placeOrder to the order's Submitted."""
    submitted = asyncio.Event()
    started = h.now()
    trade = app.place()
    trade.statusEvent += lambda t: t.orderStatus.status == "Submitted" and submitted.set()
    await asyncio.wait_for(submitted.wait(), 40 * T)
    return h.now() - started
