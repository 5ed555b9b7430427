"""Live data (issue 18): a silent stream found, and 100 subscriptions replayed after a reconnect,
against a FakeGateway (in this process: the faults are switched on it directly).

1. Silenced stream: a market-data subscription with ``stale_after`` = 1 s; the gateway silences
   its stream (``silence_stream``); the time from the silence to the manager asking for it again,
   against ``stale_after``. The manager counts from the last update, so a stream silenced just
   after an update is found a little before ``stale_after`` after the silence.
2. Replay: 100 market-data subscriptions (the default 100 market-data lines) on a gateway in its
   own process (sharing no event loop with the client, as TWS); the manager ends its session and
   connects again; the time from the new session's handshake until every one of the 100 Tickers
   (the application's own objects) has updated again, against the least IB's message rule allows
   for the messages of that session (at most 50 in any second: ``(n - 1) // 50`` seconds for
   ``n`` messages); pacing errors (100, 101) received.

Run ``python -m benchmarks.live_data [--quick]`` from the repository root.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from ib_async import Stock

from benchmarks import common
from benchmarks.common import Result, row
from v6.manager import IBConnectionManager
from v6.protocol.pacing import MESSAGES_PER_SECOND
from v6.testing import FakeGateway
from v6.testing.gateway import ALWAYS_OPEN
from v6.testing.scenario import wait_true

NAME: Final = "live_data"
STALE_AFTER: Final = 1.0
SUBSCRIPTIONS: Final = 100
TARGET_STALE: Final = 1.05
TARGET_REPLAY: Final = 1.1


def _contract(i: int) -> Stock:
    return Stock(f"S{i}", "SMART", "USD", conId=5000 + i)


async def _manager(gateway: FakeGateway, **options: Any) -> IBConnectionManager:
    manager = IBConnectionManager(port=gateway.port, client_id=1, heartbeat_interval=60.0,
                                  retry_delay=0.05, jitter=0.0, **options)  # fmt: skip
    await manager.start()
    await manager.wait_connected(timeout=10)
    return manager


async def _silenced(trials: int) -> list[float]:
    """Seconds from a stream's silence to the manager asking for it again."""
    found = []
    async with FakeGateway(port=0, tick_rate=50, market_hours=ALWAYS_OPEN) as gateway:
        manager = await _manager(gateway, stale_after=STALE_AFTER)
        ticker = manager.data.market_data(_contract(0))
        feed = manager.data.feeds[0]
        for _ in range(trials):
            await wait_true(lambda: ticker.bid > 0 and feed.state.value == "streaming", 10)
            await asyncio.sleep(0.2)
            assert feed.req_id is not None
            asked = feed.resubscribes
            gateway.silence_stream(feed.req_id)
            silenced = common.clock()
            await wait_true(lambda: feed.resubscribes > asked, 10)  # noqa: B023
            found.append(common.clock() - silenced)
        await manager.stop()
    return found


async def _replay() -> dict[str, float]:
    """100 subscriptions, then the manager ends its session itself (``Connection.reconnect``:
    the gateway runs in its own process, as TWS does) and supervision connects again."""
    async with common.gateway_process(tick_rate=20) as port:  # first update within 50 ms
        manager = IBConnectionManager(port=port, client_id=1, heartbeat_interval=60.0,
                                      retry_delay=0.05, jitter=0.0, stale_after=None)  # fmt: skip
        await manager.start()
        await manager.wait_connected(timeout=10)
        tickers = [manager.data.market_data(_contract(i)) for i in range(SUBSCRIPTIONS)]
        await wait_true(lambda: all(t.bid > 0 for t in tickers), 30)
        errors: list[int] = []
        manager.ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
        handshakes: list[float] = []
        manager.ib.client.apiStart += lambda: handshakes.append(common.clock())
        fresh: set[int] = set()
        for i, ticker in enumerate(tickers):
            ticker.updateEvent += lambda t, i=i: handshakes and fresh.add(i)
        before = _sent(manager)
        manager.connection.reconnect("benchmark: replay after a reconnect")
        await wait_true(lambda: len(fresh) == SUBSCRIPTIONS, 60)
        elapsed = common.clock() - handshakes[0]
        messages = _sent(manager) - before
        await manager.stop()
    floor = (messages - 1) // MESSAGES_PER_SECOND
    return {"seconds": elapsed, "floor": float(floor), "messages": float(messages),
            "errors": float(sum(code in (100, 101) for code in errors))}  # fmt: skip


def _sent(manager: IBConnectionManager) -> int:
    """Messages the manager's scheduler has sent."""
    pacing = manager.connection.participants.health(True)["pacing"]
    return sum(pacing["sent"].values())


async def measure(quick: bool) -> Result:
    silenced = await _silenced(5 if quick else 21)
    replays = [await _replay() for _ in range(1 if quick else 3)]
    stale_ratio = common.median(silenced) / STALE_AFTER
    replay_ratio = common.median([r["seconds"] / r["floor"] for r in replays])
    return {
        "name": NAME,
        "title": "15. Live data",
        "command": f"python -m benchmarks.{NAME}",
        "params": {"stale_after": f"{STALE_AFTER:g} s", "silenced trials": len(silenced),
                   "subscriptions replayed": SUBSCRIPTIONS, "replays": len(replays)},
        "rows": [
            row("silenced stream -> asked for again", silenced, baseline="stale_after",
                ratio_value=stale_ratio, target=f"ratio <= {TARGET_STALE}",
                met=stale_ratio <= TARGET_STALE),
            row("least IB's message rule allows for the replay's messages",
                [r["floor"] for r in replays]),
            row("100 subscriptions replayed: handshake -> all 100 Tickers update",
                [r["seconds"] for r in replays], baseline="least the rule allows",
                ratio_value=replay_ratio, target=f"ratio <= {TARGET_REPLAY}, no 100 / 101",
                met=replay_ratio <= TARGET_REPLAY and all(r["errors"] == 0 for r in replays)),
        ],
        "notes": [
            f"Replay messages in the new session: {[int(r['messages']) for r in replays]}; "
            f"pacing errors (100, 101): {[int(r['errors']) for r in replays]}.",
        ],
    }


def run(quick: bool) -> Result:
    """Live data: a silent stream found; 100 subscriptions replayed after a reconnect."""
    result: Result = common.run_async(lambda: measure(quick))
    return result


if __name__ == "__main__":
    common.main(run)
