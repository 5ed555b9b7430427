"""The fault matrix (issue 5): one test per fault, each run three times against a real
FakeGateway, asserting the outcome: recovered or not and within what bound, how often each hook
fired, the breaker's state, and that nothing (task, socket, fd) is left after stop().

``make faults`` runs it with ``V6_WRITE_FAULTS=1`` and writes FAULTS.md from the observations.
"""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB

from tests.faults.conftest import BREAKER_TIMEOUT, RUNS, Harness, T, UpperRandom
from tests.helpers import wait_until
from v6.connection import ConnectionState
from v6.protocol import codec
from v6.testing import DEFAULT_PACING_LIMIT, STARTUP_SYNC_REQUESTS

SECTION = "Connection faults"
#: Every row of this section, in table order, with the outcome it must show.
ROWS: dict[str, str] = {
    "gateway down for a while": (
        "refused retries back off, breaker opens; reconnects once the gateway listens again"
    ),
    "accept-then-close": "each attempt fails fast (handshake_failed), breaker opens; "
    "reconnects once the gateway handshakes again",
    "silent handshake": "each attempt times out after connect_timeout; reconnects after",
    "sync never completes": "API ready but start-up sync unanswered: attempts time out; "
    "reconnects once the gateway answers again",
    "stall (black hole)": "heartbeat probe times out -> reconnect within interval + timeout",
    "FIN mid-session": "close event -> reconnect at once (no probe needed)",
    "RST mid-session": "reset -> reconnect at once (no probe needed)",
    "1100 -> 1102": "DEGRADED, then CONNECTED; no reconnect, no resubscribe",
    "1100 -> 1101": "DEGRADED, then CONNECTED; no reconnect, resubscribe once",
    "2110 (past degraded_grace)": "DEGRADED; reconnects when degraded_grace runs out",
    "326 (stale session)": "stale session holds the id: 326, rotate to the next id, connect",
    "garbage bytes (unframed)": "stream desynchronised: probe times out -> reconnect",
    "garbage bytes (framed, unknown id)": "logged by ib_async, ignored: stays CONNECTED",
    "latency below the heartbeat timeout": "probes slower but answered: NO reconnect",
    "pacing violation (error 100)": "error 100 surfaced, excess dropped: NO reconnect",
}


pytestmark = [pytest.mark.faults, pytest.mark.parametrize("run", RUNS, ids=lambda r: f"run{r}")]
S = ConnectionState

# Scaled settings (see tests/helpers.py fast_settings): retry_delay T, max_delay 4 T,
# heartbeat interval 2 T and timeout 2 T, connect_timeout 20 T; the breaker opens after 3
# failures for 4 T. Rows whose attempts must time out use a shorter connect_timeout.
SHORT_CONNECT = 6 * T
BACKOFF_OR_BREAKER = 4 * T + BREAKER_TIMEOUT  # the longest wait between two attempts
SLACK = 6 * T  # scheduling slack under asyncio debug mode on a busy 2-core machine


def assert_hooks(h: Harness, disconnects: int, reconnects: int, resubscribes: int) -> None:
    assert len(h.disconnected) == disconnects, h.disconnected
    assert sum(h.connected) == reconnects, h.connected
    assert h.resubscribes == resubscribes


@pytest.mark.fault("gateway down for a while")
async def test_gateway_down_for_a_while(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start()
    mark = h.mark()
    await h.gateway.stop()
    await wait_until(lambda: h.seen(S.CIRCUIT_OPEN, mark), timeout=40 * T)
    await asyncio.sleep(8 * T)  # down for a while: the breaker re-opens after failed trials
    assert not manager.is_connected
    up = h.now()
    await h.gateway.start()
    back = await h.recovered(1, timeout=40 * T)
    h.timed("gateway up -> CONNECTED", back - up, BACKOFF_OR_BREAKER + SLACK)
    assert manager.stats.attempts.get("refused", 0) >= 3
    assert manager.circuit_breaker.state.name == "CLOSED"
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("accept-then-close")
async def test_accept_then_close(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start()
    mark = h.mark()
    h.gateway.handshake_fault("close")
    await h.gateway.drop_all()
    await wait_until(lambda: h.seen(S.CIRCUIT_OPEN, mark), timeout=40 * T)
    assert manager.stats.attempts.get("handshake_failed", 0) >= 3
    fixed = h.now()
    h.gateway.handshake_fault(None)
    back = await h.recovered(1, timeout=40 * T)
    h.timed("fault cleared -> CONNECTED", back - fixed, BACKOFF_OR_BREAKER + SLACK)
    assert manager.circuit_breaker.state.name == "CLOSED"
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("silent handshake")
async def test_silent_handshake(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start(connect_timeout=SHORT_CONNECT)
    h.gateway.handshake_fault("silent")
    await h.gateway.drop_all()
    await wait_until(lambda: manager.stats.attempts.get("timeout", 0) >= 1, timeout=40 * T)
    assert not manager.is_connected
    fixed = h.now()
    h.gateway.handshake_fault(None)
    back = await h.recovered(1, timeout=60 * T)
    # An attempt already waiting on a silent socket runs out its connect_timeout first.
    h.timed("fault cleared -> CONNECTED", back - fixed, SHORT_CONNECT + BACKOFF_OR_BREAKER + SLACK)
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("sync never completes")
async def test_sync_never_completes(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start(connect_timeout=SHORT_CONNECT)
    h.gateway.ignore_requests(STARTUP_SYNC_REQUESTS)
    await h.gateway.drop_all()
    await wait_until(lambda: manager.stats.attempts.get("timeout", 0) >= 1, timeout=40 * T)
    assert not manager.is_connected
    fixed = h.now()
    h.gateway.ignore_requests()
    back = await h.recovered(1, timeout=60 * T)
    h.timed("fault cleared -> CONNECTED", back - fixed, SHORT_CONNECT + BACKOFF_OR_BREAKER + SLACK)
    assert h.gateway.client_ids == {manager.client_id}  # no half-synced session left behind
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("stall (black hole)")
async def test_stall(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start(connect_timeout=SHORT_CONNECT)
    budget = manager.heartbeat_interval + manager.settings.heartbeat_timeout
    mark = h.mark()
    stalled = h.now()
    h.gateway.stall()
    left = await h.left_connected(mark, timeout=40 * T)
    h.gateway.unstall()
    h.timed("stall -> reconnect begins", left - stalled, budget + 2 * T)
    assert "heartbeat" in (h.disconnected[-1] if h.disconnected else "")
    await h.recovered(1, timeout=60 * T)
    assert manager.stats.probes_failed == 1
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("FIN mid-session")
async def test_fin_mid_session(harness: Harness, run: int) -> None:
    await _drop(harness, reset=False)


@pytest.mark.fault("RST mid-session")
async def test_rst_mid_session(harness: Harness, run: int) -> None:
    await _drop(harness, reset=True)


async def _drop(h: Harness, reset: bool) -> None:
    manager = await h.start()
    mark = h.mark()
    dropped = h.now()
    await h.gateway.drop_all(reset=reset)
    back = await h.recovered(1, timeout=40 * T)
    left = h.first(S.DISCONNECTED, mark)
    assert left - dropped < manager.heartbeat_interval  # the close event, not a probe
    h.timed("drop -> CONNECTED again", back - dropped, 4 * T)
    assert h.disconnected == ["gateway closed the connection"]
    assert manager.stats.probes_failed == 0
    assert not manager.stats.attempts.keys() - {"ok"}
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("1100 -> 1102")
async def test_1100_then_1102(harness: Harness, run: int) -> None:
    await _cut_off_and_restored(harness, 1102, resubscribes=0)


@pytest.mark.fault("1100 -> 1101")
async def test_1100_then_1101(harness: Harness, run: int) -> None:
    await _cut_off_and_restored(harness, 1101, resubscribes=1)


async def _cut_off_and_restored(h: Harness, restored: int, resubscribes: int) -> None:
    manager = await h.start()
    accepted = h.gateway.connection_count
    cut = h.now()
    h.gateway.broadcast_error(1100)
    await wait_until(lambda: manager.state is S.DEGRADED, timeout=20 * T)
    health = await manager.connection_health()
    assert health["connected"]
    assert not health["healthy"]
    h.gateway.broadcast_error(restored)
    await wait_until(lambda: manager.state is S.CONNECTED, timeout=20 * T)
    h.timed("1100 -> CONNECTED again (DEGRADED meanwhile)", h.now() - cut, 10 * T)
    await wait_until(lambda: h.resubscribes >= resubscribes, timeout=20 * T)
    await asyncio.sleep(4 * T)  # two heartbeat intervals: nothing else may happen
    assert h.gateway.connection_count == accepted
    assert manager.stats.reconnects == 0
    assert_hooks(h, 0, 0, resubscribes)
    await h.finish()


@pytest.mark.fault("2110 (past degraded_grace)")
async def test_2110_past_grace(harness: Harness, run: int) -> None:
    h = harness
    grace = 3 * T
    manager = await h.start(degraded_grace=grace)
    cut = h.now()
    h.gateway.broadcast_error(2110)
    await wait_until(lambda: manager.state is S.DEGRADED, timeout=20 * T)
    back = await h.recovered(1, timeout=40 * T)
    h.timed("2110 -> CONNECTED after a reconnect", back - cut, grace + 4 * T + SLACK)
    assert "cut off" in h.disconnected[-1]
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("326 (stale session)")
async def test_326_stale_session(harness: Harness, run: int) -> None:
    h = harness
    gate = asyncio.Event()
    gate.set()

    async def sleep(seconds: float) -> None:
        await gate.wait()  # holds the reconnect until the stale session is in place
        await asyncio.sleep(seconds)

    manager = await h.start(client_id=[21, 22], jitter=0.5, rng=UpperRandom(), sleep=sleep)
    assert manager.client_id == 21
    gate.clear()
    dropped = h.now()
    await h.gateway.drop_all()
    await wait_until(lambda: 21 not in h.gateway.client_ids, timeout=20 * T)
    stale = IB()
    h.holders.append(stale)
    await stale.connectAsync("127.0.0.1", h.gateway.port, clientId=21, timeout=20 * T)
    gate.set()
    back = await h.recovered(1, timeout=40 * T)
    h.timed("drop -> CONNECTED on the next id", back - dropped, 8 * T + SLACK)
    assert manager.client_id == 22
    assert manager.stats.attempts.get("client_id_in_use") == 1
    assert h.gateway.client_ids == {21, 22}  # the stale session was not disturbed
    assert not h.seen(S.CIRCUIT_OPEN)
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("garbage bytes (unframed)")
async def test_garbage_unframed(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start()
    budget = manager.heartbeat_interval + manager.settings.heartbeat_timeout
    mark = h.mark()
    sent = h.now()
    # A length prefix of ~4 GB: ib_async waits for the rest and decodes nothing after it.
    await h.gateway.send_garbage(b"\xff\xff\xff\x00 not a frame")
    left = await h.left_connected(mark, timeout=40 * T)
    h.timed("garbage -> reconnect begins", left - sent, budget + 2 * T)
    assert "heartbeat" in h.disconnected[-1]
    await h.recovered(1, timeout=40 * T)
    await wait_until(lambda: manager.stats.probes_sent >= 3, timeout=40 * T)
    assert manager.stats.probes_failed == 1  # the new session decodes again
    assert_hooks(h, 1, 1, 1)
    await h.finish()


@pytest.mark.fault("garbage bytes (framed, unknown id)")
async def test_garbage_framed(harness: Harness, run: int, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    manager = await h.start()
    sent = h.now()
    answered = len(h.heartbeats)
    await h.gateway.send_garbage(codec.encode_message(9999, 1, "junk", "\xff"))
    await wait_until(lambda: len(h.heartbeats) >= answered + 3, timeout=40 * T)
    h.timed("garbage -> 3 probes answered since", h.now() - sent, 3 * 3 * T + SLACK)
    assert any("9999" in r.getMessage() for r in caplog.records)  # ib_async saw and logged it
    assert manager.stats.probes_failed == 0
    assert manager.state is S.CONNECTED
    assert manager.stats.reconnects == 0
    assert_hooks(h, 0, 0, 0)
    await h.finish()


@pytest.mark.fault("latency below the heartbeat timeout")
async def test_latency_below_timeout(harness: Harness, run: int) -> None:
    h = harness
    manager = await h.start()
    latency = manager.settings.heartbeat_timeout / 2
    h.gateway.set_latency(latency)
    answered = len(h.heartbeats)
    await wait_until(lambda: len(h.heartbeats) >= answered + 5, timeout=60 * T)
    rtt = max(h.heartbeats[answered:])
    h.timed("slowest probe round trip (5 probes)", rtt, manager.settings.heartbeat_timeout)
    assert min(h.heartbeats[answered:]) >= latency * 0.9
    assert manager.stats.probes_failed == 0
    assert manager.stats.reconnects == 0
    assert manager.state is S.CONNECTED
    assert_hooks(h, 0, 0, 0)
    await h.finish()


@pytest.mark.fault("pacing violation (error 100)")
async def test_pacing_violation(harness: Harness, run: int) -> None:
    h = harness
    # A probe sent inside the gateway's 1 s pacing window would be dropped like any excess
    # message, so the interval here is longer than that window (as the 30 s default is).
    manager = await h.start(heartbeat_interval=25 * T)
    manager.ib.client.MaxRequests = 0  # ib_async's own 45/s throttle off, as a user may set it
    burst = h.now()
    for _ in range(2 * DEFAULT_PACING_LIMIT):
        manager.ib.client.reqCurrentTime()
    await wait_until(lambda: 100 in h.errors, timeout=20 * T)
    h.timed("burst -> error 100", h.now() - burst, 10 * T)
    answered = len(h.heartbeats)
    await wait_until(lambda: len(h.heartbeats) > answered, timeout=40 * T)  # next probe answered
    assert manager.stats.probes_failed == 0
    assert manager.state is S.CONNECTED
    assert manager.stats.reconnects == 0
    assert_hooks(h, 0, 0, 0)
    await h.finish()
