"""Hostile clients (issue 11): 31 hostile clients of one kind beside ONE honest client (a
supervised manager). The honest client must stay connected, its heartbeats and requests
answered; the gateway's limits must hold (handshake timeout, per-client output limit, pacing of
garbage frames) and its memory stay bounded. The attackers are :mod:`v6.testing.hostile`'s, run
in a child process as ``benchmarks/hostile_clients.py`` runs them (which measures the p95 against
a gateway process); here gateway and manager share one event loop, with the gateway's limits
scaled down.
"""

from __future__ import annotations

import asyncio
import contextlib

import psutil
import pytest
from ib_async import IB

from tests.faults.harness import RUNS, Harness, T
from v6.testing.hostile import HOSTILE, KINDS, attack_process
from v6.testing.scenario import Kind

SECTION = "Hostile clients"
_ANSWERED = "the honest client stays connected, its probes and requests answered"
ROWS: dict[str, str] = {
    f"{HOSTILE} x never reads": f"throttled at the output limit, then dropped; {_ANSWERED}",
    f"{HOSTILE} x zero-length frame flood": f"frames paced like messages; {_ANSWERED}",
    f"{HOSTILE} x garbage frames": f"frames paced like messages; {_ANSWERED}",
    f"{HOSTILE} x connect, never hello": "closed at the handshake timeout, a new client "
    f"takes the oldest one's place; {_ANSWERED}",
    f"{HOSTILE} x paced requests, large replies, never read": "throttled at the output limit, "
    f"then dropped; {_ANSWERED}",
}

ATTACK = 20 * T  # how long each row's attack lasts (after the attackers are all connected)
HANDSHAKE_TIMEOUT = 6 * T
OUTPUT_LIMIT = 64 * 1024
SLOW_CLIENT_TIMEOUT = 6 * T
#: Peak RSS growth of this process (gateway, attackers and manager) during the attack. Replies
#: are generated only while a client is under the output limit, so 31 clients hold about 31 x
#: (64 KiB + one reply of ~100 KB) in the gateway; the rest is allocator slack.
RSS_BOUND_MIB = 64
#: The honest client's slowest reqCurrentTime under attack. Everything shares one event loop in
#: asyncio debug mode here; the benchmark measures the p95 against a gateway process.
REQUEST_BOUND = 20 * T

#: The honest manager's probe timeout: the gateway shares this event loop, so its own work delays
#: the probe as a busy gateway process would not; 10 T leaves room for that, 2 T would not.
HEARTBEAT_TIMEOUT = 10 * T
#: The honest requests (one per T) keep the manager proven alive, so it sends no probe unless they
#: stall for this long: a probe is a reqCurrentTime too, and ib_async keeps one future per request
#: kind, so a probe sent alongside a request would orphan the request's future.
HEARTBEAT_INTERVAL = 10 * T

pytestmark = [
    pytest.mark.faults,
    pytest.mark.parametrize("run", RUNS, ids=lambda r: f"run{r}"),
    pytest.mark.gateway(
        handshake_timeout=HANDSHAKE_TIMEOUT,
        max_output_buffer=OUTPUT_LIMIT,
        slow_client_timeout=SLOW_CLIENT_TIMEOUT,
        pacing_rules=None,  # the attackers repeat one historical request for its 100 KB reply
    ),
]


def percentile95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def honest_requests(h: Harness, seconds: float) -> tuple[list[float], float]:
    """reqCurrentTime round trips, one every T, for ``seconds`` (an unanswered one counts as
    :data:`REQUEST_BOUND`); and the peak RSS meanwhile."""
    assert h.manager is not None
    ib = h.manager.ib
    latencies: list[float] = []
    peak = rss_mib()
    end = h.now() + seconds
    while h.now() < end and h.manager.is_connected:  # a lost client fails the row at once
        started = h.now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), REQUEST_BOUND)
        latencies.append(h.now() - started)
        peak = max(peak, rss_mib())
        await asyncio.sleep(T)
    return latencies, peak


async def newcomer_connects(h: Harness) -> float:
    """A second honest client connects while the attack runs; returns how long it took."""
    newcomer = IB()
    h.holders.append(newcomer)
    started = h.now()
    await newcomer.connectAsync("127.0.0.1", h.gateway.port, clientId=2, timeout=40 * T)
    return h.now() - started


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.fault(f"{HOSTILE} x {k}"), id=k) for k in KINDS]
)
async def test_hostile_clients(harness: Harness, run: int, kind: str) -> None:
    h = harness
    manager = await h.start(
        heartbeat_interval=HEARTBEAT_INTERVAL, heartbeat_timeout=HEARTBEAT_TIMEOUT
    )
    since = len(h.timeline.entries)
    before = rss_mib()
    # The attackers run in a child process: their own work must not be this event loop's.
    async with attack_process(kind, h.gateway.port):
        latencies, peak = await honest_requests(h, ATTACK)
        joined = await newcomer_connects(h) if kind == "connect, never hello" else None
        dropped = h.gateway.connection_count - len(h.gateway.clients)
    growth = peak - before
    h.obs.details = (
        f"{len(latencies)} requests, p95 {percentile95(latencies) * 1000:.0f} ms; hostile sockets "
        f"closed by the gateway: {dropped}; frames dropped unread: {h.gateway.frames_dropped}; "
        f"RSS +{growth:.1f} MiB"
        + ("" if joined is None else f"; a new client connected in {joined * 1000:.0f} ms")
    )
    h.timed("slowest honest reqCurrentTime under attack", max(latencies), REQUEST_BOUND)
    # The honest client never left CONNECTED (its requests keep it proven alive; a probe is sent
    # only after a quiet heartbeat interval, and none may fail).
    assert not h.timeline.select(Kind.STATE, since=since), h.timeline.states(since)
    assert manager.is_connected
    assert manager.stats.probes_failed == 0
    assert growth <= RSS_BOUND_MIB, f"RSS grew {growth:.1f} MiB"
    await h.finish()
