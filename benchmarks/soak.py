"""Scenario 6, soak: 1,000 drop/reconnect cycles of one supervised manager (FIN and RST
alternating). Pass: RSS grows by at most 2 MB after a warm-up of 50 cycles; open file
descriptors and live asyncio tasks are back to their counts at the same point of the cycle
(connected), and back to the pre-start counts after ``stop()``.

Short intervals and jitter 0, so the reconnect itself is the only wait. Readings are taken after
``gc.collect()``. The FakeGateway runs in the same process, so its own allocations count too
(it keeps one accept timestamp per connection: ~8 bytes a cycle).
"""

from __future__ import annotations

import asyncio

from benchmarks import common
from benchmarks.common import Result, clock, row
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway
from v6.testing.scenario import wait_until

NAME = "soak"
WARMUP = 50
RSS_LIMIT = 2 * 2**20
TIMEOUT = 10.0


def _snapshot() -> dict[str, int]:
    return {"rss": common.rss_bytes(), "fds": common.open_fds(), "tasks": common.live_tasks()}


async def _settled(gateway: FakeGateway, clients: int) -> dict[str, int]:
    """Counts once the gateway holds exactly ``clients`` sockets and the loop is quiet."""
    await wait_until(
        lambda: len(gateway.clients) == clients, TIMEOUT, step=common.POLL_STEP, what="sockets"
    )
    await asyncio.sleep(0.05)
    return _snapshot()


async def measure(cycles: int) -> Result:
    cycle_times: list[float] = []
    series: list[tuple[int, int]] = []
    async with FakeGateway(port=0) as gateway:
        before_start = await _settled(gateway, 0)
        manager = IBConnectionManager(
            port=gateway.port,
            client_id=1,
            retry_delay=0.01,
            max_delay=0.05,
            jitter=0.0,
            heartbeat_interval=1.0,
            heartbeat_timeout=1.0,
            connect_timeout=5.0,
        )
        back = asyncio.Event()
        manager.on_connected(lambda reconnect: back.set())
        await manager.start()
        await manager.wait_connected(timeout=TIMEOUT)
        warm: dict[str, int] = {}
        try:
            for i in range(WARMUP + cycles):
                if i == WARMUP:
                    warm = await _settled(gateway, 1)
                    series.append((0, warm["rss"]))
                back.clear()
                started = clock()
                await gateway.drop_all(reset=i % 2 == 1)
                await asyncio.wait_for(back.wait(), TIMEOUT)
                if i >= WARMUP:
                    cycle_times.append(clock() - started)
                    done = i - WARMUP + 1
                    if done % max(1, cycles // 10) == 0:
                        series.append((done, common.rss_bytes()))
            end = await _settled(gateway, 1)
            reconnects = manager.stats.reconnects
        finally:
            await manager.stop()
        after_stop = await _settled(gateway, 0)
    growth = end["rss"] - warm["rss"]
    fds_ok = end["fds"] == warm["fds"] and after_stop["fds"] == before_start["fds"]
    tasks_ok = end["tasks"] == warm["tasks"] and after_stop["tasks"] == before_start["tasks"]
    mib = 2**20
    return {
        "name": NAME,
        "title": "6. Soak",
        "command": f"python -m benchmarks.{NAME}",
        "params": {
            "cycles": cycles,
            "warm-up cycles": WARMUP,
            "drop": "FIN / RST alternating",
            "retry_delay": "10 ms",
            "jitter": 0,
        },
        "rows": [
            row("one drop -> reconnected cycle", cycle_times),
            row(
                f"RSS growth over {cycles} cycles (after warm-up)",
                [growth],
                unit="KiB",
                scale=1 / 1024,
                target="<= 2 MiB (2048 KiB)",
                met=growth <= RSS_LIMIT,
            ),
            row(
                "open fds: end - warm-up / after stop - before start",
                [end["fds"] - warm["fds"], after_stop["fds"] - before_start["fds"]],
                unit="",
                scale=1.0,
                target="0 / 0",
                met=fds_ok,
            ),
            row(
                "live asyncio tasks: end - warm-up / after stop - before start",
                [end["tasks"] - warm["tasks"], after_stop["tasks"] - before_start["tasks"]],
                unit="",
                scale=1.0,
                target="0 / 0",
                met=tasks_ok,
            ),
        ],
        "notes": [
            f"Reconnects counted by the manager: {reconnects} (expected {WARMUP + cycles}).",
            "RSS (MiB) by cycle after warm-up: "
            + ", ".join(f"{n}: {rss / mib:.2f}" for n, rss in series)
            + ".",
            f"fds: before start {before_start['fds']}, warm {warm['fds']}, end {end['fds']}, "
            f"after stop {after_stop['fds']}; tasks: {before_start['tasks']}, {warm['tasks']}, "
            f"{end['tasks']}, {after_stop['tasks']}.",
            "The fd and task rows show the two differences (median and p95 of those two "
            "numbers); both must be 0.",
        ],
    }


def run(quick: bool) -> Result:
    """Soak: 1,000 drop/reconnect cycles; RSS, fds and tasks must not grow."""
    cycles = 200 if quick else 1000
    result: Result = common.run_async(lambda: measure(cycles))
    return result


if __name__ == "__main__":
    common.main(run)
