"""Scenario 7, idle cost: CPU seconds per hour, and probes sent per hour, of one idle
supervised connection.

The FakeGateway runs in a child process, so this process's CPU time (``time.process_time()``)
is the client's alone. Each configuration is connected, left idle for a moment, then measured
over several equal windows (the trials). Measured directly: raw ib_async (connected, no
supervision: the floor), the manager with two short heartbeat intervals, and ib_async's
Watchdog with ``appTimeout`` equal to the shorter of the two.

Scaled, not measured: the default ``heartbeat_interval`` (30 s). An idle connection's cost is
the floor plus one probe per interval, so::

    cpu_per_hour(30 s) = floor_per_hour + cpu_per_probe * 3600 / 30
    cpu_per_probe      = (cpu_per_hour(short interval) - floor_per_hour) / probes_per_hour(short)

Both short intervals give an estimate; they should agree if the model holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB, Watchdog

from benchmarks import common
from benchmarks.common import HOST, Result, row
from benchmarks.stall_detection import NoOpController
from v6.connection import defaults as d
from v6.manager import IBConnectionManager

NAME = "idle_cost"
HOUR = 3600.0
SETTLE = 0.5


async def _windows(
    chunks: int, window: float, sent: Callable[[], int], probes: Callable[[], int]
) -> dict[str, list[float]]:
    """CPU s/h, messages sent per hour and probes per hour over ``chunks`` windows."""
    cpu_h: list[float] = []
    sent_h: list[float] = []
    probes_h: list[float] = []
    await asyncio.sleep(SETTLE)
    for _ in range(chunks):
        cpu0, sent0, probes0 = common.cpu_seconds(), sent(), probes()
        started = common.clock()
        await asyncio.sleep(window)
        elapsed = common.clock() - started
        cpu_h.append((common.cpu_seconds() - cpu0) / elapsed * HOUR)
        sent_h.append((sent() - sent0) / elapsed * HOUR)
        probes_h.append((probes() - probes0) / elapsed * HOUR)
    return {"cpu": cpu_h, "sent": sent_h, "probes": probes_h}


def _sent(ib: IB) -> Callable[[], int]:
    return lambda: int(ib.client.connectionStats().numMsgSent)


async def _raw(port: int, chunks: int, window: float) -> dict[str, list[float]]:
    ib = IB()
    await ib.connectAsync(HOST, port, clientId=1, timeout=5)
    try:
        return await _windows(chunks, window, _sent(ib), lambda: 0)
    finally:
        ib.disconnect()


async def _manager(
    port: int, interval: float, chunks: int, window: float
) -> dict[str, list[float]]:
    manager = IBConnectionManager(
        port=port, client_id=2, heartbeat_interval=interval, heartbeat_timeout=interval
    )
    await manager.start()
    try:
        await manager.wait_connected(timeout=10)
        return await _windows(chunks, window, _sent(manager.ib), lambda: manager.stats.probes_sent)
    finally:
        await manager.stop()


async def _watchdog(
    port: int, interval: float, chunks: int, window: float
) -> dict[str, list[float]]:
    ib = IB()
    soft = [0]
    watchdog = Watchdog(
        NoOpController(),
        ib,
        port=port,
        clientId=3,
        appStartupTime=0,
        appTimeout=interval,
        probeTimeout=interval,
        connectTimeout=5,
    )
    started = asyncio.Event()
    watchdog.startedEvent += lambda _: started.set()
    watchdog.softTimeoutEvent += lambda _: soft.__setitem__(0, soft[0] + 1)
    runner: Any = watchdog.start()
    try:
        await asyncio.wait_for(started.wait(), 10)
        return await _windows(chunks, window, _sent(ib), lambda: soft[0])
    finally:
        watchdog.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def measure(chunks: int, window: float, intervals: tuple[float, float]) -> Result:
    short, longer = intervals
    runs: dict[str, dict[str, list[float]]] = {}
    async with common.gateway_process() as port:
        plan: list[tuple[str, Callable[[], Awaitable[dict[str, list[float]]]]]] = [
            ("raw", lambda: _raw(port, chunks, window)),
            (f"manager {short}", lambda: _manager(port, short, chunks, window)),
            (f"manager {longer}", lambda: _manager(port, longer, chunks, window)),
            (f"watchdog {short}", lambda: _watchdog(port, short, chunks, window)),
        ]
        for key, job in plan:
            runs[key] = await job()

    floor = common.median(runs["raw"]["cpu"])
    probes_default = HOUR / d.DEFAULT_HEARTBEAT_INTERVAL
    estimates = {}
    for interval in (short, longer):
        data = runs[f"manager {interval}"]
        per_probe = (common.median(data["cpu"]) - floor) / common.median(data["probes"])
        estimates[interval] = (per_probe, floor + per_probe * probes_default)

    def cpu_row(label: str, key: str) -> dict[str, Any]:
        return row(label, runs[key]["cpu"], unit="CPU s/h", scale=1.0)

    def probe_row(label: str, key: str) -> dict[str, Any]:
        return row(label, runs[key]["probes"], unit="/h", scale=1.0)

    rows = [
        cpu_row("raw ib_async, idle (floor)", "raw"),
        cpu_row(f"manager, heartbeat_interval {short} s", f"manager {short}"),
        cpu_row(f"manager, heartbeat_interval {longer} s", f"manager {longer}"),
        cpu_row(f"ib_async Watchdog, appTimeout {short} s", f"watchdog {short}"),
        row(
            f"manager at the default {d.DEFAULT_HEARTBEAT_INTERVAL:.0f} s interval "
            f"(scaled from the {short} s and {longer} s runs, not measured)",
            [estimates[short][1], estimates[longer][1]],
            unit="CPU s/h",
            scale=1.0,
        ),
        probe_row(f"manager probes, interval {short} s", f"manager {short}"),
        probe_row(f"manager probes, interval {longer} s", f"manager {longer}"),
        probe_row(f"Watchdog probes (soft timeouts), appTimeout {short} s", f"watchdog {short}"),
    ]
    per_probe_s, at_default = estimates[short]
    per_probe_l, at_default_l = estimates[longer]
    return {
        "name": NAME,
        "title": "7. Idle cost",
        "command": f"python -m benchmarks.{NAME}",
        "params": {
            "windows per configuration": chunks,
            "window": f"{window} s",
            "intervals measured": f"{short} s, {longer} s",
            "gateway": "FakeGateway in a child process",
        },
        "rows": rows,
        "notes": [
            f"Measured window: {chunks} x {window} s per configuration; figures are per hour "
            "by simple proportion (x 3600 / window).",
            f"Scaled to the default heartbeat_interval ({d.DEFAULT_HEARTBEAT_INTERVAL:.0f} s; not "
            f"measured): {probes_default:.0f} probes/h. CPU per probe: "
            f"{per_probe_s * 1e3:.3f} ms (from the {short} s run) / {per_probe_l * 1e3:.3f} ms "
            f"(from the {longer} s run), so an idle supervised connection costs about "
            f"{at_default:.3f} / {at_default_l:.3f} CPU s/h (floor {floor:.3f} CPU s/h "
            "included).",
            "Method: cpu/h(30 s) = floor + (cpu/h(short) - floor) / probes/h(short) x 120. "
            "Any other message from the gateway counts as proof of life, so a connection "
            "with live market data sends no probes at all.",
            "Messages sent per hour (median): "
            + ", ".join(f"{k}: {common.median(v['sent']):.0f}" for k, v in runs.items())
            + ".",
        ],
    }


def run(quick: bool) -> Result:
    """Idle cost: CPU s/h and probes/h of an idle supervised connection."""
    chunks, window = (3, 2.0) if quick else (5, 5.0)
    result: Result = common.run_async(lambda: measure(chunks, window, (0.1, 1.0)))
    return result


if __name__ == "__main__":
    common.main(run)
