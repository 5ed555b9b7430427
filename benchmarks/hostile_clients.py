"""Scenario 9, hostile clients (issue 11): what 31 hostile clients of one kind cost the gateway,
and whether ONE honest ``ib_async`` client beside them is still served as fast.

Per kind, a fresh FakeGateway (default settings: 32 clients, pacing 50 msg/s, handshake timeout
5 s, 1 MiB output limit, slow clients dropped after 10 s) runs in a child process; the honest
client (this process) connects and times ``reqCurrentTime`` round trips, first alone (the quiet
figure), then while 31 hostile clients of that kind, run from a second child process, attack.
Reported: the honest p95 under attack against 2x the quiet p95 of the same gateway, the gateway's
peak RSS growth and its CPU use, and how many hostile sockets the gateway closed.

The kinds and the attackers are :mod:`v6.testing.hostile`'s (:data:`~v6.testing.hostile.KINDS`);
a hostile client whose socket is closed connects again. The same attackers drive the fault
matrix's "Hostile clients" rows (``tests/faults/test_hostile_clients.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import psutil

from benchmarks import common
from benchmarks.common import HOST, Result, clock, row
from v6.testing.hostile import HOSTILE, KINDS, attack_process

NAME = "hostile_clients"
HONEST_ID: Final = 1
LATENCY_FACTOR: Final = 2.0
REQUEST_INTERVAL: Final = 0.05
"""The honest client's reqCurrentTime pace (20/s: well inside the 50/s pacing limit)."""
UNANSWERED_AFTER: Final = 10.0
"""An honest request not answered within this many seconds counts as unanswered."""


# ------------------------------------------------------------------------------- the benchmark


async def _latencies(ib: Any, seconds: float) -> tuple[list[float], int]:
    """reqCurrentTime round trips, one every REQUEST_INTERVAL, for ``seconds``; and how many
    went unanswered for :data:`UNANSWERED_AFTER` (counted as that long in the samples)."""
    samples: list[float] = []
    unanswered = 0
    end = clock() + seconds
    while clock() < end and ib.isConnected():
        started = clock()
        try:
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), UNANSWERED_AFTER)
        except TimeoutError:
            unanswered += 1
        samples.append(clock() - started)
        await asyncio.sleep(max(0.0, REQUEST_INTERVAL - (clock() - started)))
    return samples, unanswered


class _Usage:
    """The gateway process's CPU seconds and peak RSS over a window (RSS sampled every 50 ms)."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._sampler: asyncio.Task[None] | None = None

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    async def __aenter__(self) -> _Usage:
        self.cpu0, self.t0 = self._cpu(), time.monotonic()
        self.rss0 = self.peak = int(self.process.memory_info().rss)
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, int(self.process.memory_info().rss))
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._sampler is not None
        self._sampler.cancel()
        await asyncio.gather(self._sampler, return_exceptions=True)
        self.cpu = self._cpu() - self.cpu0
        self.seconds = time.monotonic() - self.t0


async def _kind(kind: str, quiet: float, attack: float) -> dict[str, Any]:
    from ib_async import IB

    # IB's pacing rules off: the attackers flood one identical historical request on purpose
    async with common.gateway_child(log_level="WARNING", pacing_rules=None) as (port, pid):
        gateway = psutil.Process(pid)
        ib = IB()
        await ib.connectAsync(HOST, port, clientId=HONEST_ID, timeout=10)
        try:
            async with _Usage(gateway) as calm:
                quiet_samples, _ = await _latencies(ib, quiet)
            async with attack_process(kind, port) as counts, _Usage(gateway) as usage:
                attacked, unanswered = await _latencies(ib, attack)
                connected = ib.isConnected()
        finally:
            ib.disconnect()
    return {
        "kind": kind,
        "quiet": quiet_samples,
        "attacked": attacked,
        "connected": connected,
        "unanswered": unanswered,
        "rss_quiet_mib": calm.peak / 2**20,
        "rss_growth_mib": (usage.peak - calm.rss0) / 2**20,
        "cpu_quiet": calm.cpu / calm.seconds,
        "cpu_attacked": usage.cpu / usage.seconds,
        "hostile_connects": counts.get("connects", 0),
        "hostile_closed": counts.get("closed", 0),
    }


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    kind = result["kind"]
    quiet_p95 = common.p95(result["quiet"])
    attacked_p95 = common.p95(result["attacked"])
    factor = common.ratio(attacked_p95, quiet_p95)
    return [
        row(f"{kind}: honest reqCurrentTime, quiet (baseline)", result["quiet"]),
        row(
            f"{kind}: honest reqCurrentTime, under attack",
            result["attacked"],
            baseline="quiet, same gateway",
            ratio_value=common.ratio(
                common.median(result["attacked"]), common.median(result["quiet"])
            ),
            target=f"p95 <= {LATENCY_FACTOR:g} x quiet p95 ({factor:.2f}x)",
            met=factor <= LATENCY_FACTOR and result["connected"] and not result["unanswered"],
        ),
        row(
            f"{kind}: gateway RSS growth under attack (peak)",
            [result["rss_growth_mib"]],
            unit="MiB",
            scale=1.0,
        ),
        row(
            f"{kind}: gateway CPU under attack",
            [result["cpu_attacked"] * 100],
            unit="% of a CPU",
            scale=1.0,
        ),
    ]


async def measure(quiet: float, attack: float) -> Result:
    results = [await _kind(kind, quiet, attack) for kind in KINDS]
    rows = [r for result in results for r in _rows(result)]
    notes = [
        f"{r['kind']}: honest client {'stayed connected' if r['connected'] else 'DISCONNECTED'}"
        f", {r['unanswered']} of {len(r['attacked'])} requests unanswered after "
        f"{UNANSWERED_AFTER:g} s"
        f"; gateway RSS {r['rss_quiet_mib']:.0f} MiB quiet, +{r['rss_growth_mib']:.1f} MiB peak "
        f"under attack; CPU {r['cpu_quiet']:.0%} quiet, {r['cpu_attacked']:.0%} under attack; "
        f"hostile sockets opened {r['hostile_connects']}, closed by the gateway "
        f"{r['hostile_closed']}."
        for r in results
    ]
    notes += [
        "Three processes on one machine: the gateway, the attackers (nice 5: their own CPU is "
        "not the gateway's cost) and the honest client. The honest p95 is judged against the "
        "quiet p95 of the same gateway process, measured just before the attack.",
        "Every frame is paced before it is decoded (garbage and zero-length frames too): over "
        "the 50 msg/s limit, frames are dropped unread, and after 256 of them the client is not "
        "read until its window has room. At most 16 frames of one client are handled per "
        "event-loop turn, and nothing of a client over its output limit, so no reply is built "
        "for a client that does not read. Historical replies are cached and slid forward.",
    ]
    return {
        "name": NAME,
        "title": "9. Hostile clients",
        "command": f"python -m benchmarks.{NAME}",
        "params": {
            "hostile clients per kind": HOSTILE,
            "honest requests": f"reqCurrentTime every {REQUEST_INTERVAL * 1000:.0f} ms",
            "quiet window": f"{quiet} s",
            "attack window": f"{attack} s",
        },
        "rows": rows,
        "notes": notes,
    }


def run(quick: bool) -> Result:
    """Hostile clients: gateway RSS / CPU and honest-client p95 latency under 31 attackers."""
    quiet, attack = (2.0, 3.0) if quick else (5.0, 12.0)
    result: Result = common.run_async(lambda: measure(quiet, attack))
    return result


if __name__ == "__main__":
    common.main(run)
