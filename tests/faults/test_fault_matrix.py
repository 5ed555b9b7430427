"""The fault matrix (issue 5): each fault run three times against a real FakeGateway, asserting
the outcome: recovered or not and within what bound, how often each hook fired, the breaker's
state, and that nothing (task, socket, fd) is left after stop().

Faults of the inject / detect / hold / clear / recover shape are rows of :data:`SPECS`, driven by
one parametrised test on the scenario harness (:mod:`v6.testing.scenario`); faults of another
shape (a gated reconnect, nothing to detect, a steady condition) keep their own tests below.

``make faults`` runs it with ``V6_WRITE_FAULTS=1`` and writes FAULTS.md from the observations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from ib_async import IB

from tests.faults.harness import BREAKER_TIMEOUT, RUNS, Harness, T, UpperRandom
from tests.helpers import wait_until
from v6.connection import ConnectionState
from v6.manager import IBConnectionManager
from v6.protocol import codec
from v6.testing import DEFAULT_PACING_LIMIT, STARTUP_SYNC_REQUESTS
from v6.testing.scenario import Measured, Step, condition, entered, left_live

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


def heartbeat_budget(manager: IBConnectionManager) -> float:
    return manager.heartbeat_interval + manager.settings.heartbeat_timeout


def attempts(manager: IBConnectionManager, result: str) -> int:
    return manager.stats.attempts.get(result, 0)


Check = Callable[[Harness, Measured], Awaitable[None]]


async def no_check(h: Harness, m: Measured) -> None:
    return None


@dataclass(frozen=True)
class FaultSpec:
    """One row: the step to measure (built once the manager runs), which duration is timed
    against which bound, the hooks expected, and what else must hold (``check``)."""

    fault: str  # the ROWS key
    step: Callable[[Harness, IBConnectionManager], Step]
    measure: str
    timed: Callable[[Measured], float | None]
    bound: Callable[[IBConnectionManager], float]
    settings: dict[str, Any] = field(default_factory=dict)
    hooks: tuple[int, int, int] = (1, 1, 1)  # disconnects, reconnects, resubscribes
    check: Check = no_check


def recovered_after(m: Measured) -> float | None:
    return m.recovered_after


def detected_after(m: Measured) -> float | None:
    return m.detected_after


def from_injection_to_recovery(m: Measured) -> float | None:
    return None if m.recovered is None else m.recovered - m.injected


def then_drop(install: Callable[[], object], h: Harness) -> Callable[[], Awaitable[None]]:
    """Install a fault for new connections, then close the current one."""

    async def inject() -> None:
        install()
        await h.gateway.drop_all()

    return inject


def timed_out(manager: IBConnectionManager) -> Callable[[], bool]:
    return lambda: attempts(manager, "timeout") >= 1


async def breaker_closed_after(h: Harness, failures: str) -> None:
    assert h.manager is not None
    assert attempts(h.manager, failures) >= 3
    assert h.manager.circuit_breaker.state.name == "CLOSED"


async def check_gateway_down(h: Harness, m: Measured) -> None:
    await breaker_closed_after(h, "refused")


async def check_accept_then_close(h: Harness, m: Measured) -> None:
    await breaker_closed_after(h, "handshake_failed")


async def check_sync_never_completes(h: Harness, m: Measured) -> None:
    assert h.manager is not None
    assert h.gateway.client_ids == {h.manager.client_id}  # no half-synced session left behind


async def check_stall(h: Harness, m: Measured) -> None:
    assert h.manager is not None
    assert "heartbeat" in (h.disconnected[-1] if h.disconnected else "")
    assert h.manager.stats.probes_failed == 1


async def check_drop(h: Harness, m: Measured) -> None:
    manager = h.manager
    assert manager is not None
    assert m.detected_after is not None
    assert m.detected_after < manager.heartbeat_interval  # the close event, not a probe
    assert h.disconnected == ["gateway closed the connection"]
    assert manager.stats.probes_failed == 0
    assert not manager.stats.attempts.keys() - {"ok"}


async def check_garbage_unframed(h: Harness, m: Measured) -> None:
    manager = h.manager
    assert manager is not None
    assert "heartbeat" in h.disconnected[-1]
    await wait_until(lambda: manager.stats.probes_sent >= 3, timeout=40 * T)
    assert manager.stats.probes_failed == 1  # the new session decodes again


async def check_2110(h: Harness, m: Measured) -> None:
    assert "cut off" in h.disconnected[-1]


def cut_off_then(restored: int) -> Callable[[Harness, IBConnectionManager], Step]:
    def step(h: Harness, manager: IBConnectionManager) -> Step:
        async def clear() -> None:
            health = await manager.connection_health()
            assert health["connected"]
            assert not health["healthy"]
            h.gateway.broadcast_error(restored)

        return Step(
            f"1100 -> {restored}",
            inject=lambda: h.gateway.broadcast_error(1100),
            detect=entered(S.DEGRADED),
            clear=clear,
        )

    return step


def check_no_reconnect(resubscribes: int) -> Check:
    async def check(h: Harness, m: Measured) -> None:
        assert h.manager is not None
        await wait_until(lambda: h.resubscribes >= resubscribes, timeout=20 * T)
        await asyncio.sleep(4 * T)  # two heartbeat intervals: nothing else may happen
        assert h.gateway.connection_count == 1  # the first connect only
        assert h.manager.stats.reconnects == 0

    return check


SPECS = [
    FaultSpec(
        "gateway down for a while",
        lambda h, m: Step(
            "gateway down",
            inject=h.gateway.stop,
            detect=entered(S.CIRCUIT_OPEN),
            # Down for a while: the breaker re-opens after failed trials. 9 T, not a multiple of
            # its 4 T open time, so that the restart never races a trial (the figure would jump).
            hold_after_detect=9 * T,
            clear=h.gateway.start,
        ),
        "gateway up -> CONNECTED",
        recovered_after,
        lambda m: BACKOFF_OR_BREAKER + SLACK,
        check=check_gateway_down,
    ),
    FaultSpec(
        "accept-then-close",
        lambda h, m: Step(
            "accept-then-close",
            inject=then_drop(lambda: h.gateway.handshake_fault("close"), h),
            detect=entered(S.CIRCUIT_OPEN),
            clear=lambda: h.gateway.handshake_fault(None),
        ),
        "fault cleared -> CONNECTED",
        recovered_after,
        lambda m: BACKOFF_OR_BREAKER + SLACK,
        check=check_accept_then_close,
    ),
    FaultSpec(
        "silent handshake",
        lambda h, m: Step(
            "silent handshake",
            inject=then_drop(lambda: h.gateway.handshake_fault("silent"), h),
            detect=condition(timed_out(m)),
            clear=lambda: h.gateway.handshake_fault(None),
        ),
        "fault cleared -> CONNECTED",
        recovered_after,
        # An attempt already waiting on a silent socket runs out its connect_timeout first.
        lambda m: SHORT_CONNECT + BACKOFF_OR_BREAKER + SLACK,
        settings={"connect_timeout": SHORT_CONNECT},
    ),
    FaultSpec(
        "sync never completes",
        lambda h, m: Step(
            "sync never completes",
            inject=then_drop(lambda: h.gateway.ignore_requests(STARTUP_SYNC_REQUESTS), h),
            detect=condition(timed_out(m)),
            clear=h.gateway.ignore_requests,
        ),
        "fault cleared -> CONNECTED",
        recovered_after,
        lambda m: SHORT_CONNECT + BACKOFF_OR_BREAKER + SLACK,
        settings={"connect_timeout": SHORT_CONNECT},
        check=check_sync_never_completes,
    ),
    FaultSpec(
        "stall (black hole)",
        lambda h, m: Step(
            "stall", inject=h.gateway.stall, detect=left_live, clear=h.gateway.unstall
        ),
        "stall -> reconnect begins",
        detected_after,
        lambda m: heartbeat_budget(m) + 2 * T,
        settings={"connect_timeout": SHORT_CONNECT},
        check=check_stall,
    ),
    *(
        FaultSpec(
            f"{kind} mid-session",
            lambda h, m, reset=reset: Step(
                "drop", inject=lambda: h.gateway.drop_all(reset=reset), detect=left_live
            ),
            "drop -> CONNECTED again",
            recovered_after,
            lambda m: 4 * T,
            check=check_drop,
        )
        for kind, reset in (("FIN", False), ("RST", True))
    ),
    *(
        FaultSpec(
            f"1100 -> {restored}",
            cut_off_then(restored),
            "1100 -> CONNECTED again (DEGRADED meanwhile)",
            from_injection_to_recovery,
            lambda m: 10 * T,
            hooks=(0, 0, resubscribes),
            check=check_no_reconnect(resubscribes),
        )
        for restored, resubscribes in ((1102, 0), (1101, 1))
    ),
    FaultSpec(
        "2110 (past degraded_grace)",
        lambda h, m: Step(
            "2110", inject=lambda: h.gateway.broadcast_error(2110), detect=entered(S.DEGRADED)
        ),
        "2110 -> CONNECTED after a reconnect",
        recovered_after,
        lambda m: 3 * T + 4 * T + SLACK,
        settings={"degraded_grace": 3 * T},
        check=check_2110,
    ),
    FaultSpec(
        "garbage bytes (unframed)",
        lambda h, m: Step(
            "garbage",
            # A length prefix of ~4 GB: ib_async waits for the rest and decodes nothing after it.
            inject=lambda: h.gateway.send_garbage(b"\xff\xff\xff\x00 not a frame"),
            detect=left_live,
        ),
        "garbage -> reconnect begins",
        detected_after,
        lambda m: heartbeat_budget(m) + 2 * T,
        check=check_garbage_unframed,
    ),
]


@pytest.mark.parametrize(
    "spec", [pytest.param(s, marks=pytest.mark.fault(s.fault), id=s.fault) for s in SPECS]
)
async def test_fault(harness: Harness, run: int, spec: FaultSpec) -> None:
    h = harness
    manager = await h.start(**spec.settings)
    m = await h.measure(spec.step(h, manager))
    assert m.detected is not None, f"{spec.fault}: not detected"
    assert m.recovered is not None, f"{spec.fault}: not recovered"
    # Nothing reconnects while the fault is on.
    assert m.recovered >= m.cleared
    assert manager.is_connected
    seconds = spec.timed(m)
    assert seconds is not None
    h.timed(spec.measure, seconds, spec.bound(manager))
    await spec.check(h, m)
    assert_hooks(h, *spec.hooks)
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
    # message, so the interval here is longer than that window (as the 30 s default is). The
    # request scheduler is off: with it, the flood is paced and no 100 comes (tests/pacing).
    manager = await h.start(heartbeat_interval=25 * T, pacing=None)
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
