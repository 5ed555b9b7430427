"""The 1101 resync (OrderTracking.resync) over real sockets: a fill TWS never streamed while cut
off from IB (1100) is found by the resync's reqExecutions; an unanswered resync is retried, never
read as "no fills"; a socket lost during the resync leaves the work to the reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from ib_async import Trade

from tests.helpers import fast_settings, log_lines, wait_until
from tests.orders.trading import AAPL_ID, App, T, reconnected
from v6.connection import ConnectionState
from v6.manager import IBConnectionManager
from v6.protocol.codec import ClientMessage
from v6.testing import FakeGateway

REQ_EXECUTIONS = ClientMessage.REQ_EXECUTIONS
#: The resync's deadline (the manager's connect_timeout): short, so that retries come fast.
RESYNC_TIMEOUT = 4 * T


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0, market_interval=None) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        yield gw


@pytest.fixture
def problems() -> Iterator[list[str]]:
    """ERROR lines logged while the test runs (a resync that raised is logged, not raised)."""
    with log_lines("ERROR") as lines:
        yield lines


class Reconciles:
    """Counts the tracker's reconciliations (a spy on our own seam, not on ib_async)."""

    def __init__(self, manager: IBConnectionManager) -> None:
        self.count = 0
        tracker = manager._orders.tracker
        original = tracker.reconcile

        def counted() -> None:
            self.count += 1
            original()

        tracker.reconcile = counted  # type: ignore[method-assign]


async def started(gw: FakeGateway, **options: Any) -> App:
    manager = IBConnectionManager(
        port=gw.port, **fast_settings(connect_timeout=RESYNC_TIMEOUT, **options)
    )
    app = App(manager)
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    return app


async def fill_while_cut_off(gw: FakeGateway, app: App, trade: Trade) -> str:
    """1100, then a fill whose live execDetails never reaches the client; returns its id."""
    gw.broadcast_error(1100)
    await wait_until(lambda: app.manager.state is ConnectionState.DEGRADED)
    gw.drop_executions(True)
    exec_id = gw.fill_order(trade.order.orderId)
    await wait_until(lambda: trade.orderStatus.status == "Filled")  # orderStatus does arrive
    gw.drop_executions(False)
    assert app.fills == {}
    return exec_id


async def test_an_unanswered_resync_is_retried_and_never_read_as_no_fills(
    gateway: FakeGateway,
) -> None:
    app = await started(gateway)
    trade = await app.working()
    exec_id = await fill_while_cut_off(gateway, app, trade)
    reconciles = Reconciles(app.manager)
    gateway.ignore_requests([REQ_EXECUTIONS])
    asked = gateway.request_counts[REQ_EXECUTIONS]
    gateway.broadcast_error(1101)
    await wait_until(lambda: gateway.request_counts[REQ_EXECUTIONS] >= asked + 3, 40 * T)
    assert app.manager.state is ConnectionState.CONNECTED
    assert app.fills == {}  # unknown, not empty: nothing delivered
    assert reconciles.count == 0  # a timed-out sync is never reconciled
    assert trade.fills == []
    gateway.ignore_requests()
    await wait_until(lambda: app.fills[exec_id] == 1, 40 * T)
    await asyncio.sleep(3 * T)  # any late or repeated answer is in
    assert app.fills == {exec_id: 1}
    assert app.fill_trades == [trade]  # on the held Trade
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    assert reconciles.count == 1
    assert app.manager.trading_stats()["fills_recovered"] == 1
    await app.manager.stop()


async def test_a_socket_lost_during_the_resync_leaves_it_to_the_reconnect(
    gateway: FakeGateway, problems: list[str]
) -> None:
    app = await started(gateway)
    trade = await app.working()
    exec_id = await fill_while_cut_off(gateway, app, trade)
    gateway.ignore_requests([REQ_EXECUTIONS])
    asked = gateway.request_counts[REQ_EXECUTIONS]
    gateway.broadcast_error(1101)
    await wait_until(lambda: gateway.request_counts[REQ_EXECUTIONS] > asked)  # resync waits
    gateway.ignore_requests()
    await gateway.drop_all()  # the resync's requests die with the socket
    await reconnected(app.manager, 1)
    assert app.fills == {exec_id: 1}  # reconciled before CONNECTED
    assert app.fill_trades == [trade]
    after_reconnect = gateway.request_counts[REQ_EXECUTIONS]
    await asyncio.sleep(RESYNC_TIMEOUT + 3 * T)  # long enough for a stray resync to ask again
    assert gateway.request_counts[REQ_EXECUTIONS] == after_reconnect  # the old resync ended
    assert app.fills == {exec_id: 1}
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    assert len(app.manager.connection.hooks.registry.tasks) == 0  # no resync left running
    assert problems == []  # the resync did not raise
    await app.manager.stop()


async def test_a_second_1101_supersedes_the_first_resync(gateway: FakeGateway) -> None:
    app = await started(gateway)
    trade = await app.working()
    exec_id = await fill_while_cut_off(gateway, app, trade)
    resyncs = app.manager.connection.hooks.registry.tasks  # resyncs run as callback tasks
    gateway.ignore_requests([REQ_EXECUTIONS])
    asked = gateway.request_counts[REQ_EXECUTIONS]
    gateway.broadcast_error(1101)
    await wait_until(lambda: gateway.request_counts[REQ_EXECUTIONS] > asked)
    gateway.broadcast_error(1101)
    await wait_until(lambda: gateway.request_counts[REQ_EXECUTIONS] > asked + 1)
    assert len(resyncs) == 2
    await wait_until(lambda: len(resyncs) == 1, 40 * T)  # the first ends at its timeout
    await asyncio.sleep(RESYNC_TIMEOUT)
    assert len(resyncs) == 1
    gateway.ignore_requests()
    await wait_until(lambda: app.fills[exec_id] == 1, 40 * T)
    await wait_until(lambda: len(resyncs) == 0)
    await asyncio.sleep(3 * T)
    assert app.fills == {exec_id: 1}
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    await app.manager.stop()


async def test_a_reconnect_between_retries_ends_the_resync(gateway: FakeGateway) -> None:
    """The socket drops and comes back while the resync waits to retry: the reconnect's own sync
    has reconciled, so the old resync asks nothing in the new session."""
    app = await started(gateway)
    trade = await app.working()
    exec_id = await fill_while_cut_off(gateway, app, trade)
    gateway.ignore_requests([REQ_EXECUTIONS])
    counts: list[int] = []

    async def reconnect_meanwhile(seconds: float) -> None:
        gateway.ignore_requests()
        await gateway.drop_all()
        await reconnected(app.manager, 1)
        counts.append(gateway.request_counts[REQ_EXECUTIONS])

    manager = app.manager
    await asyncio.wait_for(manager._orders.resync(
        timeout=RESYNC_TIMEOUT, retry_delay=0, is_live=lambda: manager.is_connected,
        sleep=reconnect_meanwhile,
    ), 60 * T)  # fmt: skip
    assert gateway.request_counts[REQ_EXECUTIONS] == counts[0]
    assert app.fills == {exec_id: 1}
    assert [f.execution.execId for f in trade.fills] == [exec_id]
    await manager.stop()
