"""Reconciliation cost: trading-ready after an outage, and reconcile() against a busy day.

1. Gateway up -> trading-ready with 100 fills made while the client was away: a fresh
   ``IBConnectionManager.connect()`` (handshake, ib_async's start-up sync, v6's reconciliation,
   every recovered fill delivered to ``on_fill``, CONNECTED) versus a raw ``ib_async``
   ``IB.connectAsync`` (handshake and the same start-up sync, no reconciliation), with an
   in-memory journal and with a journal file. Trials alternate; FakeGateway runs in this
   process on 127.0.0.1. Target (issue 8): <= 1.2x.
2. ``reconcile()`` alone (the pure function) against 10,000 executions of the day, half of them
   already delivered, with an in-memory journal.
"""

from __future__ import annotations

import contextlib
import gc
import math
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from ib_async import IB, LimitOrder, Stock

from benchmarks import common
from benchmarks.common import Result, row
from v6.manager import IBConnectionManager
from v6.orders.journal import Journal
from v6.orders.reconcile import GatewayReport, PlacedOrder, ReportedExecution, reconcile
from v6.testing import FakeGateway
from v6.testing.scenario import wait_true

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
    await wait_true(lambda: trade.orderStatus.status == "Submitted", 10, step=common.POLL_STEP)
    ib.disconnect()
    await wait_true(lambda: not gw.client_ids, 10, step=common.POLL_STEP)
    for _ in range(FILLS):
        gw.fill_order(order.orderId, 10, client_id=CLIENT_ID)


async def _raw(gw: FakeGateway, journal: Path | None) -> float:
    ib = IB()
    gc.collect()
    common.quiet_disk()
    started = common.clock()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=CLIENT_ID, timeout=10)
    elapsed = common.clock() - started
    assert len(ib.fills()) == FILLS
    ib.disconnect()
    await wait_true(lambda: not gw.client_ids, 10, step=common.POLL_STEP)
    return elapsed


async def _v6(gw: FakeGateway, journal: Path | None) -> float:
    if journal is not None:
        with Journal(journal) as previous:  # the same file each trial, last trial's fills gone
            previous.prune(before=math.inf)
    manager = IBConnectionManager(port=gw.port, client_id=CLIENT_ID, max_retries=0,
                                  journal=journal)  # fmt: skip
    delivered: list[str] = []
    manager.on_fill(lambda trade, fill: delivered.append(fill.execution.execId))
    gc.collect()
    common.quiet_disk()
    started = common.clock()
    await manager.connect()
    elapsed = common.clock() - started
    assert len(delivered) == FILLS
    await manager.stop()
    await wait_true(lambda: not gw.client_ids, 10, step=common.POLL_STEP)
    return elapsed


Variant = tuple[Callable[[FakeGateway, Path | None], Awaitable[float]], Path | None]


async def _ready_trials(trials: int, directory: Path) -> list[list[float]]:
    """Per variant (raw, v6 in-memory journal, v6 file journal) one sample per trial; the
    variants run interleaved, their order rotating from trial to trial."""
    path = directory / "journal.sqlite"
    variants: list[Variant] = [(_raw, None), (_v6, None), (_v6, path)]
    samples: list[list[float]] = [[] for _ in variants]
    # A plain sqlite connection holds the file open throughout, as a long-running process holds
    # its journal: the trials' own connections come and go without checkpointing and deleting
    # the WAL each time. (Not a Journal: that would take the journal's lock.)
    Journal(path).close()
    with contextlib.closing(sqlite3.connect(path)) as held:
        held.execute("SELECT COUNT(*) FROM fills").fetchone()
        async with FakeGateway(port=0, market_interval=None) as gw:
            await _prepare(gw)
            for variant, journal in variants:  # warm-up, not counted
                await variant(gw, journal)
            for trial in range(trials):
                for k in range(len(variants)):
                    index = (trial + k) % len(variants)
                    variant, journal = variants[index]
                    samples[index].append(await variant(gw, journal))
    return samples


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
    trials = 15 if quick else 101
    with tempfile.TemporaryDirectory() as directory:
        raw, v6, v6_file = common.run_async(lambda: _ready_trials(trials, Path(directory)))
    ratio = common.ratio(common.median(v6), common.median(raw))
    file_ratio = common.ratio(common.median(v6_file), common.median(raw))
    recon = _reconcile_samples(3 if quick else 10)
    return {
        "name": NAME,
        "title": "12. Reconciliation",
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
            row(
                "the same with a journal file (WAL, synchronous=NORMAL)",
                v6_file,
                baseline="raw connectAsync",
                ratio_value=file_ratio,
                target=f"<= {TARGET_RATIO}x",
                met=file_ratio <= TARGET_RATIO,
            ),
            row(f"reconcile() against {EXECUTIONS:,} executions (half delivered)", recon),
        ],
        "notes": [
            "FakeGateway in the same process; each trial a new client with the same client id, "
            "so every trial's sync returns the same 100 executions (and their commission "
            "reports).",
            "Timed from the connect call to its return on both sides (perf_counter): the "
            "IB() / manager and its journal are built before the clock starts, as an "
            "application's are when the gateway comes back. The three variants alternate, "
            "their order rotating per trial, after one warm-up run each.",
            "The journal file is the same file every trial (its fills pruned between trials), "
            "so each trial records 100 new fills: marked handed out (one transaction) before "
            "the on_fill calls, acknowledged (one more) after they returned. Before "
            "every trial of every variant: gc.collect() and os.sync() (the previous trial's "
            "journal close is not this trial's cost). One more connection holds the file open "
            "throughout, as a long-running process holds its journal, so the trials' own "
            "connections do not checkpoint and delete the WAL as each closes.",
        ],
    }


if __name__ == "__main__":
    common.main(run)
