"""Reconciliation cost: trading-ready after an outage, and reconcile() against a busy day.

1. Gateway up -> trading-ready with 100 fills made while the client was away: a fresh
   ``IBConnectionManager.connect()`` (handshake, ib_async's start-up sync, v6's reconciliation,
   every recovered fill delivered to ``on_fill``, CONNECTED) versus a raw ``ib_async``
   ``IB.connectAsync`` (handshake and the same start-up sync, no reconciliation). Trials
   alternate; FakeGateway runs in this process on 127.0.0.1. Target (issue 8): <= 1.2x.
2. ``reconcile()`` alone (the pure function) against 10,000 executions of the day, half of them
   already delivered, with an in-memory journal.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ib_async import IB, LimitOrder, Stock

from benchmarks import common
from benchmarks.common import Result, row
from v6.connection import IBConnectionManager
from v6.orders.journal import Journal
from v6.orders.reconcile import GatewayReport, PlacedOrder, ReportedExecution, reconcile
from v6.testing import FakeGateway

NAME = "reconcile"
TARGET_RATIO = 1.2
FILLS = 100
EXECUTIONS = 10_000
AAPL_ID = 265598
CLIENT_ID = 5


async def _prepare(gw: FakeGateway) -> None:
    """One order of the client, filled FILLS times while the client is away."""
    gw.set_quote(AAPL_ID, 100.00, 100.02)
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=CLIENT_ID, timeout=10)
    order = LimitOrder("BUY", FILLS * 10, 1.00)
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD", conId=AAPL_ID), order)
    await common.wait_for(lambda: trade.orderStatus.status == "Submitted", 10)
    ib.disconnect()
    await common.wait_for(lambda: not gw.client_ids, 10)
    for _ in range(FILLS):
        gw.fill_order(order.orderId, 10, client_id=CLIENT_ID)


async def _raw(gw: FakeGateway) -> float:
    ib = IB()
    started = time.perf_counter()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=CLIENT_ID, timeout=10)
    elapsed = time.perf_counter() - started
    assert len(ib.fills()) == FILLS
    ib.disconnect()
    await common.wait_for(lambda: not gw.client_ids, 10)
    return elapsed


async def _v6(gw: FakeGateway) -> float:
    started = time.perf_counter()
    manager = IBConnectionManager(port=gw.port, client_id=CLIENT_ID, max_retries=0)
    delivered: list[str] = []
    manager.on_fill(lambda trade, fill: delivered.append(fill.execution.execId))
    await manager.connect()
    elapsed = time.perf_counter() - started
    assert len(delivered) == FILLS
    await manager.stop()
    await common.wait_for(lambda: not gw.client_ids, 10)
    return elapsed


async def _ready_trials(trials: int) -> tuple[list[float], list[float]]:
    async with FakeGateway(port=0, market_interval=None) as gw:
        await _prepare(gw)
        raw: list[float] = []
        v6: list[float] = []
        for _ in range(trials):
            raw.append(await _raw(gw))
            v6.append(await _v6(gw))
    return raw, v6


def _reconcile_samples(trials: int) -> list[float]:
    now = datetime.now(UTC).timestamp()
    executions = [
        ReportedExecution(f"{n:08x}.6568f4a4.01.01", 1000 + n % 500, CLIENT_ID, 10 + n % 500,
                          f"v6-bench-{n % 500}", now + n)
        for n in range(EXECUTIONS)
    ]
    placed = [PlacedOrder(f"v6-bench-{k}", CLIENT_ID, 10 + k, 1, 1000 + k) for k in range(500)]
    report = GatewayReport(session=1, executions=executions)
    samples: list[float] = []
    with Journal(None) as journal:
        for e in executions[: EXECUTIONS // 2]:
            journal.record_delivery(e.exec_id, e.exec_id[:-3], 1, e.time)
        for _ in range(trials):
            started = time.perf_counter()
            result = reconcile(placed, report, journal)
            samples.append(time.perf_counter() - started)
            assert len(result.fills) == EXECUTIONS - EXECUTIONS // 2
    return samples


def run(quick: bool) -> Result:
    """Trading-ready after an outage versus raw ib_async; reconcile() on 10,000 executions."""
    trials = 5 if quick else 20
    raw, v6 = common.run_async(lambda: _ready_trials(trials))
    ratio = common.ratio(common.median(v6), common.median(raw))
    recon = _reconcile_samples(3 if quick else 10)
    return {
        "name": NAME,
        "title": "Reconciliation",
        "command": "python -m benchmarks.reconcile",
        "params": {"trials": trials, "fills during the outage": FILLS, "executions": EXECUTIONS},
        "rows": [
            row("raw ib_async connectAsync (syncs the 100 fills)", raw),
            row(
                "v6 connect -> trading-ready (reconciled, 100 on_fill calls)",
                v6,
                baseline="raw connectAsync",
                ratio_value=ratio,
                target=f"<= {TARGET_RATIO}x",
                met=ratio <= TARGET_RATIO,
            ),
            row(f"reconcile() against {EXECUTIONS:,} executions (half delivered)", recon),
        ],
        "notes": [
            "FakeGateway in the same process; each trial a new client with the same client id, "
            "so every trial's sync returns the same 100 executions.",
            "v6's figure includes constructing the manager and an in-memory journal.",
        ],
    }


if __name__ == "__main__":
    common.main(run)
