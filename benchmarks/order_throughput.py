"""Order throughput: orders per second the fake gateway accepts and fills from one unmodified
ib_async client, the gateway's CPU meanwhile, and the place -> Filled round trip.

The gateway runs in a child process (``benchmarks.common.gateway_process``) so its CPU time is
its own (psutil on that process). Pacing is off on both sides (gateway ``pacing_limit=None``,
``ib.client.MaxRequests = 0``); ``fill_size`` is large, so each market order fills in one
execution: per order the gateway parses one placeOrder and sends openOrder, orderStatus
(Submitted), execDetails, commissionReport, openOrder and orderStatus (Filled).

1. Burst: ``N`` market orders (1 share, alternately BUY and SELL) placed at once; the rate is
   ``N`` over the time from the first placeOrder to the last Filled seen by the client. The
   gateway's CPU share is its CPU seconds over that wall time.
2. Round trip: one order at a time, placeOrder -> the client's ``Trade`` reports Filled.

Target (issue 12): >= 1,000 orders/s with the gateway under 50 % of one CPU.
Run ``python -m benchmarks.order_throughput [--quick] [--json]`` from the repository root.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import psutil
from ib_async import IB, MarketOrder, Stock, Trade

from benchmarks import common
from benchmarks.common import HOST, Result, row

NAME: Final = "order_throughput"
TARGET_RATE: Final = 1_000.0
TARGET_CPU: Final = 0.5
GATEWAY_OPTIONS: Final[dict[str, Any]] = {
    "pacing_limit": None,
    "fill_size": 1e9,
    "market_interval": None,
    "max_output_buffer": 64 * 1024 * 1024,
}


def _gateway_process() -> psutil.Process:
    """The child process ``gateway_process`` started (the only one serving a gateway)."""
    for child in psutil.Process().children():
        if "--serve-gateway" in child.cmdline():
            return child
    raise RuntimeError("gateway child process not found")


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _contract() -> Stock:
    return Stock("AAPL", "SMART", "USD", conId=265598)


async def _burst(ib: IB, gateway: psutil.Process, orders: int) -> dict[str, float]:
    contract = _contract()
    filled = asyncio.get_running_loop().create_future()
    count = 0

    def on_status(trade: Trade) -> None:  # O(1) per message: polling N trades would cost more
        nonlocal count
        if trade.orderStatus.status == "Filled":
            count += 1
            if count == orders:
                filled.set_result(common.clock())

    ib.orderStatusEvent += on_status
    try:
        cpu0, started = _cpu(gateway), common.clock()
        for i in range(orders):
            ib.placeOrder(contract, MarketOrder("BUY" if i % 2 else "SELL", 1))
        elapsed = await asyncio.wait_for(filled, 60) - started
    finally:
        ib.orderStatusEvent -= on_status
    return {"rate": orders / elapsed, "cpu_share": (_cpu(gateway) - cpu0) / elapsed,
            "elapsed": elapsed}  # fmt: skip


async def _round_trips(ib: IB, trials: int) -> list[float]:
    contract = _contract()
    samples = []
    for i in range(trials):
        started = common.clock()
        trade = ib.placeOrder(contract, MarketOrder("BUY" if i % 2 else "SELL", 1))
        await common.wait_for(lambda t=trade: t.orderStatus.status == "Filled", timeout=10,
                              step=0.0001, what="a fill")  # fmt: skip
        samples.append(common.clock() - started)
    return samples


async def _measure(orders: int, bursts: int, trials: int) -> dict[str, Any]:
    async with common.gateway_process(**GATEWAY_OPTIONS) as port:
        gateway = _gateway_process()
        ib = IB()
        await ib.connectAsync(HOST, port, clientId=1, timeout=10)
        ib.client.MaxRequests = 0  # ib_async's own pacing off
        try:
            await _burst(ib, gateway, min(orders, 200))  # warm-up
            runs = [await _burst(ib, gateway, orders) for _ in range(bursts)]
            trips = await _round_trips(ib, trials)
        finally:
            ib.disconnect()
    return {"runs": runs, "trips": trips}


def run(quick: bool) -> Result:
    """Orders/s one ib_async client gets filled, the gateway's CPU share, and the round trip."""
    orders, bursts, trials = (1_000, 2, 50) if quick else (5_000, 5, 300)
    figures = common.run_async(lambda: _measure(orders, bursts, trials))
    runs, trips = figures["runs"], figures["trips"]
    rates = [r["rate"] for r in runs]
    shares = [r["cpu_share"] for r in runs]
    per_order_cpu = [s / r for s, r in zip(shares, rates, strict=True)]
    rate_ok = common.median(rates) >= TARGET_RATE
    cpu_ok = common.median(shares) < TARGET_CPU
    return {
        "name": NAME,
        "title": "Order throughput",
        "command": f"python -m benchmarks.{NAME}",
        "params": {"orders_per_burst": orders, "bursts": bursts, "round_trips": trials,
                   "pacing": "off (gateway and client)"},
        "rows": [
            row("orders placed and filled per second (one ib_async client)", rates,
                unit="orders/s", scale=1.0, target=f">= {TARGET_RATE:,.0f}",
                met=rate_ok),
            row("gateway CPU during the burst (share of one CPU)", shares, unit="%",
                scale=100.0, target=f"< {TARGET_CPU:.0%}", met=cpu_ok),
            row("gateway CPU per order", per_order_cpu, unit="us", scale=1e6),
            row("place -> Filled round trip (one order at a time)", trips),
        ],
        "notes": [
            "The gateway runs in a child process; its CPU is read with psutil on that process.",
            "Each order: 1 placeOrder in, 6 messages out (openOrder, orderStatus, execDetails, "
            "commissionReport, openOrder, orderStatus).",
            "The burst rate includes the ib_async client's own decoding on the same machine: "
            "when the client is the slower side, the gateway's CPU share is below 100 % and "
            "the rate is the client's.",
        ],
    }


if __name__ == "__main__":
    common.main(run)
