"""Scenario: daily restarts (issue 9). Readiness probing and request-aware stall detection,
measured in one run against the previous behaviour (probe off, requests ignored) as baseline.

Part 1, an outage longer than the breaker's open time: a supervised manager loses its gateway for
``OUTAGE`` s (+ a random part), the breaker opens; then the gateway listens again. Measured: gateway
listening -> CONNECTED, with ``readiness_interval`` = ``READINESS`` and with probing off (the
previous release); the real API attempts (CONNECTING transitions) during the outage; readiness
probes per minute. Raw ``IB.connectAsync()`` to a second gateway, in the same trials, is the
connect-time yardstick of the target.

Part 2, an active application (one request every 100 ms) when the gateway stalls: stall ->
reconnect begins (the DISCONNECTED transition). Baseline: the same application whose requests the
manager cannot see (written below ib_async's ``Client.send``, where the link counts them), which
is what the previous release did with every request: the stall is found by the idle heartbeat,
``heartbeat_interval + heartbeat_timeout`` after the last reply.

Intervals are scaled down (see the constants) so a quick run takes about a minute.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from ib_async import IB

from benchmarks import common
from benchmarks.common import HOST, Result, clock, row
from v6.connection import CircuitBreaker, ConnectionState
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway
from v6.testing.scenario import wait_true

NAME = "readiness"
READINESS = 0.2  # readiness_interval
BREAKER_OPEN = 1.5  # the breaker's open time
OUTAGE = 2.0  # + uniform(0, READINESS * 5): longer than the breaker's open time
HEARTBEAT_INTERVAL = 3.0
HEARTBEAT_TIMEOUT = 2.0  # the first unanswered request leaves up to 100 ms after the stall
REQUEST_EVERY = 0.1
TIMEOUT = 20.0
#: reqCurrentTime on the wire (message id 49, version 1), for the baseline's unseen requests.
RAW_REQ_CURRENT_TIME = "49\x001\x00"


def _manager(port: int, **options: Any) -> IBConnectionManager:
    settings: dict[str, Any] = {
        "retry_delay": 0.1,
        "max_delay": BREAKER_OPEN,
        "jitter": 0.2,
        "heartbeat_interval": HEARTBEAT_INTERVAL,
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "connect_timeout": 5.0,
        "circuit_breaker": CircuitBreaker(failure_threshold=3, timeout=BREAKER_OPEN),
    }
    settings.update(options)
    return IBConnectionManager(port=port, **settings)


class _States:
    def __init__(self, manager: IBConnectionManager) -> None:
        self.log: list[tuple[float, ConnectionState]] = []
        manager.on_state_change(lambda old, new, why: self.log.append((clock(), new)))

    def count(self, state: ConnectionState, since: int) -> int:
        return sum(1 for _, s in self.log[since:] if s is state)

    def first(self, state: ConnectionState, since: int) -> float | None:
        return next((t for t, s in self.log[since:] if s is state), None)


async def _outages(
    readiness: float | None, trials: int, rng: random.Random, raw: list[float]
) -> tuple[list[float], list[float], list[float]]:
    """(gateway up -> CONNECTED, API attempts per outage, probes per minute) per trial."""
    recovery: list[float] = []
    attempts: list[float] = []
    per_minute: list[float] = []
    async with FakeGateway(port=0) as gateway, FakeGateway(port=0) as raw_gateway:
        manager = _manager(gateway.port, readiness_interval=readiness)
        states = _States(manager)
        await manager.start()
        try:
            for _ in range(trials):
                await manager.wait_connected(timeout=TIMEOUT)
                mark, probes = len(states.log), sum(manager.restarts.probes.values())
                down = clock()
                await gateway.stop()
                await asyncio.sleep(OUTAGE + rng.uniform(0.0, 5 * READINESS))
                outage = clock() - down
                attempts.append(states.count(ConnectionState.CONNECTING, mark))
                probed = sum(manager.restarts.probes.values()) - probes
                per_minute.append(probed / outage * 60.0)
                mark = len(states.log)
                up = clock()
                await gateway.start()
                await manager.wait_connected(timeout=TIMEOUT)
                connected = states.first(ConnectionState.CONNECTED, mark)
                assert connected is not None
                recovery.append(connected - up)
                raw.append(await _raw_connect(raw_gateway))
        finally:
            await manager.stop()
    return recovery, attempts, per_minute


async def _raw_connect(gateway: FakeGateway) -> float:
    ib = IB()
    before = clock()
    await ib.connectAsync(HOST, gateway.port, clientId=9, timeout=5)
    elapsed = clock() - before
    ib.disconnect()
    await wait_true(
        lambda: not gateway.client_ids, 5.0, step=common.POLL_STEP, what="raw client gone"
    )
    return elapsed


async def _stalls(*, visible: bool, trials: int, rng: random.Random) -> list[float]:
    """Stall -> DISCONNECTED with an application sending one request every REQUEST_EVERY."""
    found: list[float] = []
    async with FakeGateway(port=0) as gateway:
        manager = _manager(gateway.port, readiness_interval=None)
        states = _States(manager)

        async def application() -> None:
            while True:
                if manager.is_connected:
                    client: Any = manager.ib.client
                    if visible:
                        client.reqCurrentTime()
                    else:
                        client.sendMsg(RAW_REQ_CURRENT_TIME)  # below the link's hook
                await asyncio.sleep(REQUEST_EVERY)

        await manager.start()
        app = asyncio.create_task(application())
        try:
            for _ in range(trials):
                await manager.wait_connected(timeout=TIMEOUT)
                await asyncio.sleep(rng.uniform(3 * REQUEST_EVERY, 4 * REQUEST_EVERY))
                mark = len(states.log)
                stalled = clock()
                gateway.stall()
                await wait_true(
                    lambda m=mark: states.first(ConnectionState.DISCONNECTED, m) is not None,
                    TIMEOUT,
                    step=common.POLL_STEP,
                    what="stall detected",
                )
                left = states.first(ConnectionState.DISCONNECTED, mark)
                assert left is not None
                found.append(left - stalled)
                gateway.unstall()
        finally:
            app.cancel()
            await asyncio.gather(app, return_exceptions=True)
            await manager.stop()
    return found


async def measure(outage_trials: int, stall_trials: int, seed: int = 3) -> Result:
    rng = random.Random(seed)
    raw: list[float] = []
    off, off_attempts, _ = await _outages(None, outage_trials, rng, raw)
    on, on_attempts, per_minute = await _outages(READINESS, outage_trials, rng, raw)
    stall_old = await _stalls(visible=False, trials=max(2, stall_trials // 2), rng=rng)
    stall_new = await _stalls(visible=True, trials=stall_trials, rng=rng)
    bound = READINESS + 1.2 * common.median(raw)
    attempts_ratio = common.ratio(common.median(on_attempts), common.median(off_attempts))
    stall_ratio = common.ratio(common.median(stall_new), HEARTBEAT_TIMEOUT)
    return {
        "name": NAME,
        "title": "13. Daily restarts: readiness probing and request-aware stalls",
        "command": f"python -m benchmarks.{NAME}",
        "params": {
            "outage trials": outage_trials,
            "stall trials": stall_trials,
            "readiness_interval": f"{READINESS} s",
            "breaker": f"3 failures, open {BREAKER_OPEN} s",
            "outage": f"{OUTAGE} s + uniform(0, {5 * READINESS:g}) s",
            "heartbeat": f"interval {HEARTBEAT_INTERVAL} s, timeout {HEARTBEAT_TIMEOUT} s",
            "application": f"one request every {REQUEST_EVERY * 1000:.0f} ms",
        },
        "rows": [
            row("raw `IB.connectAsync()` (yardstick)", raw),
            row("probe off: gateway up -> CONNECTED (baseline)", off),
            row(
                "probe on: gateway up -> CONNECTED",
                on,
                baseline="probe off",
                ratio_value=common.ratio(common.median(on), common.median(off)),
                target=f"p95 <= readiness_interval + 1.2 x raw = {bound * 1000:.0f} ms",
                met=common.p95(on) <= bound,
            ),
            row(
                "probe off: API attempts during the outage (baseline)",
                off_attempts,
                unit="",
                scale=1.0,
            ),
            row(
                "probe on: API attempts during the outage",
                on_attempts,
                unit="",
                scale=1.0,
                baseline="probe off",
                ratio_value=attempts_ratio,
                target="must not grow (ratio <= 1)",
                met=common.median(on_attempts) <= common.median(off_attempts)
                and max(on_attempts) <= max(off_attempts),
            ),
            row(
                "probe on: readiness probes per minute per client",
                per_minute,
                unit="/min",
                scale=1.0,
                target=f"{60 / READINESS:.0f}-{60 / READINESS / 0.8:.0f} (jitter 0.2) + gates",
            ),
            row("requests unseen (previous release): stall -> reconnect begins", stall_old),
            row(
                "requests seen: stall -> reconnect begins",
                stall_new,
                baseline="heartbeat_timeout",
                ratio_value=stall_ratio,
                target="median <= 1.05 x heartbeat_timeout",
                met=stall_ratio <= 1.05,
            ),
        ],
        "notes": [
            "An API attempt is a CONNECTING transition (ib_async connect with a client id). With "
            "probing on, an attempt after a failed one starts with a readiness probe and ends "
            "there while the gateway does not answer the hello; the breaker still paces them.",
            "Probes per minute scale with the interval: at the default readiness_interval of 1 s, "
            "about 60 per minute per client while BACKING_OFF or CIRCUIT_OPEN, none otherwise.",
            "Stall times run from the stall to the DISCONNECTED transition. The stall is found "
            "heartbeat_timeout after the oldest request with no message back; that request goes "
            f"out up to {REQUEST_EVERY * 1000:.0f} ms after the stall (half that on average), "
            "hence a ratio a little above 1; at the default 10 s timeout it is about 1.005. The "
            "baseline runs half as many trials: it is deterministic (about interval + timeout).",
        ],
    }


def run(quick: bool) -> Result:
    """Daily restarts: readiness probing and request-aware stall detection."""
    outage_trials, stall_trials = (4, 6) if quick else (20, 20)
    result: Result = common.run_async(lambda: measure(outage_trials, stall_trials))
    return result


if __name__ == "__main__":
    common.main(run)
