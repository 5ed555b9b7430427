"""Request pacing (issue 17): a backfill, an order during it, and a burst, against a FakeGateway
that enforces IB's pacing rules (in a child process, so its work is not the client's).

1. Backfill: 150 small-bar historical requests (two minutes of 5-second bars) over 30 contracts,
   round-robin, windows scaled by ``SCALE`` (ten minutes = 6 s). The minimum time IB's rules
   allow is two full windows: 60 requests in each of the first two windows, the last 30 at the
   start of the third (30 messages fit in one second). Through the manager (straight through
   ``manager.ib``): time to the last answer, 162s received. Raw ib_async on the same workload:
   its 162s, its requests lost (answered empty: ib_async ends a refused request) and its time.
2. Order during the backfill: place -> Submitted of 30 limit orders, ten a second, from a
   manager whose backfill waits for its next window (its first window answered), interleaved
   with 30 from a second manager on the same gateway with nothing queued.
3. Burst: 1,000 market-data snapshot requests at once (the "warm-up" burst of ib_insync #443):
   error 100s, and the rate sent against the 50 messages per second IB allows.

Run ``python -m benchmarks.pacing [--quick]`` from the repository root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from typing import Any, Final

from ib_async import IB, LimitOrder, Stock

from benchmarks import common
from benchmarks.common import HOST, Result, row
from v6.manager import IBConnectionManager
from v6.protocol.codes import ErrorCode
from v6.protocol.pacing import MESSAGES_PER_SECOND, PacingLimits
from v6.testing.scenario import wait_true

NAME: Final = "pacing"
SCALE: Final = 0.01
LIMITS: Final = PacingLimits(scale=SCALE)
BACKFILL: Final = 150
CONTRACTS: Final = 30
TARGET_BACKFILL: Final = 1.05
TARGET_ORDER: Final = 1.2
TARGET_RATE: Final = 0.95
RAW_TIMEOUT: Final = 20.0
#: Seconds between two orders of one manager (10 per second: IB allows 50 messages a second in
#: all, so a burst of orders faster than that would itself be paced).
ORDER_GAP: Final = 0.1


def _contract(i: int) -> Stock:
    return Stock(f"S{i}", "SMART", "USD", conId=1000 + i)


def _backfill(ib: IB, count: int, timeout: float = 0) -> list[Any]:
    """``count`` distinct requests, round-robin over the contracts (none identical);
    ``timeout``: ib_async's own (0: none)."""
    return [
        ib.reqHistoricalDataAsync(_contract(i % CONTRACTS), f"20261203 15:{i // CONTRACTS:02d}:00"
                                  " UTC", "120 S", "5 secs", "TRADES", False, timeout=timeout)
        for i in range(count)
    ]  # fmt: skip


def _floor(count: int) -> float:
    """The minimum time IB's rules allow for ``count`` small-bar requests (module docstring)."""
    per_window = LIMITS.historical or count
    return (max(count - 1, 0) // per_window) * LIMITS.historical_window


async def _connected(port: int, client_id: int, **options: Any) -> IBConnectionManager:
    manager = IBConnectionManager(port=port, client_id=client_id, pacing=LIMITS,
                                  stale_after=None, heartbeat_interval=60.0, **options)  # fmt: skip
    await manager.start()
    await manager.wait_connected(timeout=10)
    return manager


def _errors(ib: IB) -> list[int]:
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
    return codes


async def _manager_backfill(port: int, count: int) -> dict[str, float]:
    manager = await _connected(port, 1)
    codes = _errors(manager.ib)
    started = common.clock()
    bars = await asyncio.gather(*_backfill(manager.ib, count))
    elapsed = common.clock() - started
    pacing = (await manager.connection_health())["pacing"]
    await manager.stop()
    return {"seconds": elapsed, "errors_162": codes.count(ErrorCode.HISTORICAL_DATA_ERROR),
            "retried": pacing["retried"], "lost": sum(1 for b in bars if not b)}  # fmt: skip


async def _raw_backfill(port: int, count: int) -> dict[str, float]:
    ib = IB()
    await ib.connectAsync(HOST, port, clientId=2, timeout=10)
    codes = _errors(ib)
    started = common.clock()
    # a request whose frame the gateway dropped (error 100) is never answered: ib_async's own
    # timeout ends it, empty
    bars = await asyncio.gather(*_backfill(ib, count, timeout=RAW_TIMEOUT))
    elapsed = common.clock() - started
    ib.disconnect()
    return {"seconds": elapsed, "errors_162": codes.count(ErrorCode.HISTORICAL_DATA_ERROR),
            "errors_100": codes.count(ErrorCode.MAX_RATE_EXCEEDED),
            "lost": sum(1 for b in bars if not b)}  # fmt: skip


async def _one_order(manager: IBConnectionManager) -> float:
    """Seconds from placeOrder to the order's Submitted."""
    submitted = asyncio.Event()
    started = common.clock()
    trade = manager.ib.placeOrder(_contract(0), LimitOrder("BUY", 1, 1.0))
    trade.statusEvent += lambda t: t.orderStatus.status == "Submitted" and submitted.set()
    await asyncio.wait_for(submitted.wait(), 10)
    return common.clock() - started


async def _orders_during_backfill(port: int, count: int) -> tuple[list[float], list[float], int]:
    """Orders from two managers on one gateway, interleaved: one idle, one whose backfill waits
    for its next window (its first window answered, so what differs is the waiting queue, not
    the client decoding bars)."""
    idle_manager, busy_manager = await _connected(port, 3), await _connected(port, 5)
    backfill = [asyncio.ensure_future(call) for call in _backfill(busy_manager.ib, BACKFILL)]
    per_window = LIMITS.historical or BACKFILL
    await wait_true(lambda: sum(call.done() for call in backfill) >= per_window, 30)
    waiting = (await busy_manager.connection_health())["pacing"]["queued"]["bulk"]
    idle, busy = [], []
    gc.collect()
    gc.disable()  # a collection inside a trial is not the scheduler's
    try:
        for i in range(count):  # who goes first alternates: the first after a pause is slower
            pair = ((idle, idle_manager), (busy, busy_manager))
            for times, manager in pair if i % 2 else reversed(pair):
                times.append(await _one_order(manager))
            await asyncio.sleep(ORDER_GAP)
    finally:
        gc.enable()
    for call in backfill:
        call.cancel()
    await idle_manager.stop()
    await busy_manager.stop()
    return idle, busy, waiting


async def _burst(port: int, count: int) -> dict[str, float]:
    """``count`` snapshot requests at once; the rate the scheduler sends them at once the first
    window's burst is spent (from the gateway's count of what it received)."""
    manager = await _connected(port, 4)
    codes = _errors(manager.ib)
    scheduler = manager.connection.participants
    started = common.clock()
    for i in range(count):
        manager.ib.reqMktData(_contract(i % CONTRACTS), snapshot=True)
    queued = scheduler.health(True)["pacing"]["queued"]["streams"]
    await wait_true(lambda: not scheduler.health(True)["pacing"]["queued"]["streams"], 120)
    elapsed = common.clock() - started
    await manager.stop()
    return {"seconds": elapsed, "errors_100": codes.count(ErrorCode.MAX_RATE_EXCEEDED),
            "rate": count / elapsed, "queued": queued}


async def measure(quick: bool) -> Result:
    options = {"pacing_rules": dataclasses.asdict(LIMITS), "market_interval": None}
    trials = 1 if quick else 3
    floor = _floor(BACKFILL)
    managed, raw, idle, busy, bursts = [], [], [], [], []
    waiting = 0
    for _ in range(trials):
        async with common.gateway_process(**options) as port:  # a fresh login: empty windows
            managed.append(await _manager_backfill(port, BACKFILL))
        async with common.gateway_process(**options) as port:
            raw.append(await _raw_backfill(port, BACKFILL))
    async with common.gateway_process(**options) as port:
        idle, busy, waiting = await _orders_during_backfill(port, 30)
    async with common.gateway_process(**{**options, "tick_rate": 1.0}) as port:
        bursts.append(await _burst(port, 300 if quick else 1000))
    ratio = common.ratio(common.median([m["seconds"] for m in managed]), floor)
    order_ratio = common.ratio(common.p95(busy), common.p95(idle))
    rate = bursts[0]["rate"] / MESSAGES_PER_SECOND
    return {
        "name": NAME,
        "title": "14. Request pacing",
        "command": f"python -m benchmarks.{NAME}",
        "params": {"historical requests": BACKFILL, "contracts": CONTRACTS,
                   "window scale": SCALE, "backfill trials": trials},
        "rows": [
            row("minimum the rules allow (two 10-minute windows, scaled)", [floor]),
            row("backfill through the manager", [m["seconds"] for m in managed],
                baseline="minimum the rules allow", ratio_value=ratio,
                target=f"ratio <= {TARGET_BACKFILL}, no 162",
                met=ratio <= TARGET_BACKFILL and all(m["errors_162"] == 0 for m in managed)),
            row("backfill by raw ib_async (its requests refused are lost)",
                [r["seconds"] for r in raw]),
            row("order place -> Submitted, idle", idle),
            row("order place -> Submitted, backfill waiting", busy, baseline="idle (p95)",
                ratio_value=order_ratio, target=f"p95 ratio <= {TARGET_ORDER}",
                met=order_ratio <= TARGET_ORDER),
            row("burst of snapshot requests: rate sent (all of them over the burst's time)",
                [rate],
                unit="x 50/s", scale=1.0, target=f">= {TARGET_RATE}, no 100",
                met=rate >= TARGET_RATE and bursts[0]["errors_100"] == 0),
        ],
        "notes": [
            f"Manager backfills: 162s {[m['errors_162'] for m in managed]}, retried "
            f"{[m['retried'] for m in managed]}, lost {[m['lost'] for m in managed]}.",
            f"Raw ib_async backfills: 162s {[r['errors_162'] for r in raw]}, error 100s "
            f"{[r['errors_100'] for r in raw]}, requests lost (answered empty, or unanswered "
            f"within {RAW_TIMEOUT:g} s) {[r['lost'] for r in raw]} of {BACKFILL}.",
            f"Orders: {len(busy)} placed while {waiting} historical requests waited.",
            f"Burst: {bursts[0]['errors_100']} error 100s; "
            f"{bursts[0]['seconds']:.2f} s for the burst.",
        ],
    }


def run(quick: bool) -> Result:
    """Request pacing: backfill against the rules' minimum, orders during it, a burst."""
    result: Result = common.run_async(lambda: measure(quick))
    return result


if __name__ == "__main__":
    common.main(run)
