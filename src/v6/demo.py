"""The fault demo behind ``v6-ib demo`` (``make demo``): five faults, each measured.

:func:`run_demo` starts a :class:`~v6.testing.FakeGateway` on a free port of 127.0.0.1 and a
supervised :class:`~v6.connection.IBConnectionManager` with short intervals, subscribes to a
market-data stream (re-requested through ``add_resubscribe``), then injects, one after the other:

1. **stall**: the gateway stops answering, sockets open (a frozen TWS): found by the heartbeat;
2. **drop**: every socket closed with a FIN;
3. **gateway down**: the listener stops for :attr:`DemoTimings.outage_hold` seconds, then returns;
4. **1100 / 1101**: TWS cut off from IB, then restored with market data lost;
5. **client id in use**: while the manager is between attempts, a second ``ib_async`` client takes
   its client id, so the next attempt meets error 326 and the manager moves to its second id.

Every figure is measured from timestamps recorded by the manager's hooks (``on_state_change``,
``add_resubscribe``) and ``ib_async`` events (ticks, errors), never assumed:

* *detected after*: from injecting the fault to the manager noticing it (leaving CONNECTED, going
  DEGRADED, or receiving 326);
* *recovered after*: from the end of the fault (unstall, restart, 1101; the injection itself for
  drop and client id) to the manager's next CONNECTED;
* *ticks resumed*: from the same point to the first tick after the stream was re-requested.

Library code: :func:`run_demo` runs in the caller's event loop and prints nothing; the CLI
(:mod:`v6.commands.demo`) draws the live view and the table.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from ib_async import IB, Stock, Ticker
from loguru import logger

from v6.connection import CircuitBreaker, ConnectionState, IBConnectionManager
from v6.connection.state import LIVE_STATES
from v6.testing import FakeGateway

S = ConnectionState

#: The demo manager's client ids: the first is taken by the intruder in fault 5.
DEMO_CLIENT_IDS: Final = (7, 8)
#: AAPL on SMART; ib_async's reqMktData needs conId set (the demo never calls qualifyContracts).
DEMO_CONTRACT: Final = Stock("AAPL", "SMART", "USD", conId=265598)
#: How often the demo's waits look at the recorded timeline (s); the figures come from the
#: recorded timestamps, not from this polling.
POLL_INTERVAL: Final = 0.005

OnStart = Callable[[IBConnectionManager, FakeGateway], None]
OnHealth = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class DemoTimings:
    """Every interval of the demo, in seconds. :meth:`scaled` makes a faster or slower copy."""

    heartbeat_interval: float = 0.3
    heartbeat_timeout: float = 0.3
    retry_delay: float = 0.1
    max_delay: float = 1.0
    connect_timeout: float = 1.0
    breaker_timeout: float = 1.0
    #: Price updates per second: slower than 1 / heartbeat_interval, so probes run between ticks.
    tick_rate: float = 2.0
    #: Ticks flow this long between faults.
    settle: float = 0.6
    stall_hold: float = 1.0
    outage_hold: float = 1.5
    cut_off_hold: float = 0.5
    #: Not scaled: the least backoff time left when the intruder takes the manager's id (fault 5),
    #: so that the intruder's handshake surely lands first.
    staging_window: float = 0.25
    #: Not scaled: give up waiting for a detection or a recovery after this long.
    fault_timeout: float = 15.0

    def scaled(self, factor: float) -> DemoTimings:
        """A copy with every interval multiplied by ``factor`` (the tick rate divided by it)."""
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor!r}")
        fixed = {"staging_window", "fault_timeout"}
        changes: dict[str, float] = {}
        for f in fields(self):
            if f.name in fixed:
                continue
            value = getattr(self, f.name)
            changes[f.name] = value / factor if f.name == "tick_rate" else value * factor
        return replace(self, **changes)


@dataclass(frozen=True)
class FaultResult:
    """One row of the demo's table; every figure in milliseconds, None when it did not happen."""

    fault: str
    lasted_ms: float | None  # injection to the end of the fault (None: it never ends)
    detected_ms: float | None  # injection to the manager noticing
    recovered_ms: float | None  # end of the fault to CONNECTED again
    ticks_ms: float | None  # end of the fault to the first tick of the re-requested stream
    note: str = ""

    @property
    def ok(self) -> bool:
        return None not in (self.detected_ms, self.recovered_ms, self.ticks_ms)


@dataclass(frozen=True)
class DemoReport:
    rows: list[FaultResult]
    #: Market-data streams open at the gateway at the end: 1 unless a resubscription leaked one.
    subscriptions_at_end: int
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows) and self.subscriptions_at_end == 1


class _Timeline:
    """Timestamps (event-loop clock) of what the hooks saw."""

    def __init__(self) -> None:
        self.states: list[tuple[float, ConnectionState]] = []
        self.ticks: list[float] = []
        self.resubscribes: list[float] = []
        self.errors: list[tuple[float, int]] = []

    @staticmethod
    def first(times: Iterable[float], after: float) -> float | None:
        return next((t for t in times if t >= after), None)

    def left_live(self, after: float) -> float | None:
        return self.first((t for t, s in self.states if s not in LIVE_STATES), after)

    def entered(self, state: ConnectionState, after: float) -> float | None:
        return self.first((t for t, s in self.states if s is state), after)

    def error(self, code: int, after: float) -> float | None:
        return self.first((t for t, c in self.errors if c == code), after)

    def ticks_after_resubscribe(self, after: float) -> float | None:
        resubscribed = self.first(self.resubscribes, after)
        return None if resubscribed is None else self.first(self.ticks, resubscribed)


async def _nothing() -> None:
    return None


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else (end - start) * 1000.0


class _Scenario:
    def __init__(
        self,
        gateway: FakeGateway,
        manager: IBConnectionManager,
        timings: DemoTimings,
        on_health: OnHealth | None,
    ) -> None:
        self.gw = gateway
        self.manager = manager
        self.t = timings
        self.timeline = _Timeline()
        self.on_health = on_health
        self.now = asyncio.get_running_loop().time

    # ---------------------------------------------------------------- hooks

    def attach(self) -> None:
        self.manager.on_state_change(self._on_state)
        self.manager.add_resubscribe(self.subscribe)
        self.manager.ib.pendingTickersEvent += self._on_tickers
        self.manager.ib.errorEvent += self._on_error

    def detach(self) -> None:
        self.manager.remove_listener(self._on_state)
        self.manager.remove_listener(self.subscribe)
        self.manager.ib.pendingTickersEvent -= self._on_tickers
        self.manager.ib.errorEvent -= self._on_error

    def subscribe(self) -> None:
        """(Re)request the stream; after 1101 the old request is cancelled first."""
        ib = self.manager.ib
        if ib.ticker(DEMO_CONTRACT) is not None:
            ib.cancelMktData(DEMO_CONTRACT)
        ib.reqMktData(DEMO_CONTRACT)
        self.timeline.resubscribes.append(self.now())

    def _on_state(self, old: ConnectionState, new: ConnectionState, reason: str) -> None:
        self.timeline.states.append((self.now(), new))

    def _on_tickers(self, tickers: set[Ticker]) -> None:
        if any(t.contract is not None and t.contract.conId == DEMO_CONTRACT.conId for t in tickers):
            self.timeline.ticks.append(self.now())

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        self.timeline.errors.append((self.now(), code))

    # ---------------------------------------------------------------- helpers

    async def _wait(
        self, observed: Callable[[], float | None], timeout: float | None = None
    ) -> float | None:
        """Poll until ``observed()`` returns a timestamp; None after the timeout."""
        deadline = self.now() + (self.t.fault_timeout if timeout is None else timeout)
        while (found := observed()) is None:
            if self.now() > deadline:
                return None
            await asyncio.sleep(POLL_INTERVAL)
        return found

    async def _sleep_until(self, moment: float) -> None:
        remaining = moment - self.now()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _report_health(self, label: str) -> None:
        health = await self.manager.connection_health()
        logger.debug("health {}: {}", label, json.dumps(health, sort_keys=True))
        if self.on_health is not None:
            self.on_health(label, health)

    async def settle(self) -> bool:
        """Connected and ticks flowing for ``settle`` seconds."""
        start = self.now()
        ticking = await self._wait(
            lambda: (
                self.timeline.first(self.timeline.ticks, start)
                if self.manager.state is S.CONNECTED
                else None
            )
        )
        await asyncio.sleep(self.t.settle)
        return ticking is not None

    async def measure(
        self,
        name: str,
        *,
        inject: Callable[[], Awaitable[Any]],
        detect: Callable[[float], float | None],
        hold: float = 0.0,
        clear: Callable[[], Awaitable[Any]] | None = None,
        note: str = "",
    ) -> FaultResult:
        """Inject, wait for detection, hold the fault, clear it, wait for recovery and ticks."""
        t0 = self.now()
        await inject()
        detected = await self._wait(lambda: detect(t0))
        if detected is None:
            logger.error("{}: not detected within {}s", name, self.t.fault_timeout)
        await self._sleep_until(t0 + hold)
        ended = t0
        if clear is not None:
            ended = self.now()
            await clear()
        recovered = ticks = None
        if detected is not None:
            recovered = await self._wait(lambda: self.timeline.entered(S.CONNECTED, detected))
        if recovered is not None:
            ticks = await self._wait(lambda: self.timeline.ticks_after_resubscribe(recovered))
        return FaultResult(
            fault=name,
            lasted_ms=(ended - t0) * 1000.0,
            detected_ms=_ms(t0, detected),
            recovered_ms=_ms(ended, recovered),
            ticks_ms=_ms(ended, ticks),
            note=note,
        )

    # ---------------------------------------------------------------- the faults

    async def stall(self) -> FaultResult:
        logger.info("-- fault: stall: the gateway stops answering; sockets stay open")

        async def inject() -> None:
            self.gw.stall()

        async def clear() -> None:
            logger.info("-- stall ends")
            self.gw.unstall()

        return await self.measure(
            "stall (silent gateway)",
            inject=inject,
            detect=self.timeline.left_live,
            hold=self.t.stall_hold,
            clear=clear,
        )

    async def drop(self) -> FaultResult:
        logger.info("-- fault: drop: the gateway closes every socket (FIN)")
        return await self.measure(
            "drop (FIN)",
            inject=lambda: self.gw.drop_all(reset=False),
            detect=self.timeline.left_live,
        )

    async def outage(self) -> FaultResult:
        logger.info("-- fault: gateway down for {}s (connections refused)", self.t.outage_hold)
        started = self.now()
        before = self._failed_attempts()

        async def clear() -> None:
            logger.info("-- gateway back up")
            await self.gw.start()

        row = await self.measure(
            "gateway down",
            inject=self.gw.stop,
            detect=self.timeline.left_live,
            hold=self.t.outage_hold,
            clear=clear,
        )
        note = f"{self._failed_attempts() - before} failed attempts"
        if self.timeline.entered(S.CIRCUIT_OPEN, started) is not None:
            note += ", breaker opened"
        return replace(row, note=note)

    def _failed_attempts(self) -> int:
        attempts = self.manager.stats.attempts
        return sum(n for result, n in attempts.items() if result not in ("ok", "fatal"))

    async def cut_off(self) -> FaultResult:
        logger.info("-- fault: TWS reports 1100 (cut off from IB), then 1101 (data lost)")

        async def inject() -> None:
            self.gw.broadcast_error(1100)

        async def clear() -> None:
            self.gw.broadcast_error(1101)

        return await self.measure(
            "1100 then 1101",
            inject=inject,
            detect=lambda t0: self.timeline.entered(S.DEGRADED, t0),
            hold=self.t.cut_off_hold,
            clear=clear,
            note="no reconnect; stream re-requested",
        )

    async def client_id_in_use(self) -> FaultResult:
        manager, gw = self.manager, self.gw
        victim = manager.client_id
        name = "client id in use (326)"
        logger.info(
            "-- fault: another client takes client id {} while the manager is between attempts",
            victim,
        )
        # Stage: a short outage, until the manager's backoff leaves room for the intruder.
        staged_from = self.now()
        refused_before = manager.stats.attempts.get("refused", 0)
        await gw.stop()
        ready = await self._wait(lambda: self._sleeping_long_enough(refused_before))
        await gw.start()
        outage_ms = (self.now() - staged_from) * 1000.0
        intruder = IB()
        try:
            if ready is not None:
                try:
                    await intruder.connectAsync(
                        gw.host, gw.port, clientId=victim, timeout=self.t.connect_timeout
                    )
                except (ConnectionError, TimeoutError) as exc:
                    logger.error("staging failed: the intruder could not connect: {!r}", exc)
            if not intruder.isConnected() or manager.is_connected:
                return FaultResult(name, None, None, None, None, "staging failed")
            logger.info("-- intruder holds client id {}", victim)
            row = await self.measure(
                name,
                inject=_nothing,  # already injected: the id is held from now on
                detect=lambda t0: self.timeline.error(326, t0),
            )
            note = f"now client id {manager.client_id}; staged by a {outage_ms:.0f} ms outage"
            if self.timeline.entered(S.CIRCUIT_OPEN, staged_from) is not None:
                note += ", breaker opened"
            return replace(row, lasted_ms=None, note=note)
        finally:
            intruder.disconnect()

    def _sleeping_long_enough(self, refused_before: int) -> float | None:
        """Now, if the manager is waiting with at least ``staging_window`` seconds left."""
        manager = self.manager
        now = self.now()
        if manager.state is S.CIRCUIT_OPEN:
            left = manager.circuit_breaker.retry_after()
        elif manager.state is S.BACKING_OFF and self.timeline.states:
            failures = manager.stats.attempts.get("refused", 0) - refused_before
            if failures < 1:
                return None  # the first wait after a loss is short and random
            since, _ = self.timeline.states[-1]
            backoff = manager.settings.backoff
            left = backoff.nominal(failures) * (1.0 - backoff.jitter) - (now - since)
        else:
            return None
        return now if left >= self.t.staging_window else None

    # ---------------------------------------------------------------- the run

    async def run(self) -> list[FaultResult]:
        rows: list[FaultResult] = []
        faults = (self.stall, self.drop, self.outage, self.cut_off, self.client_id_in_use)
        for fault in faults:
            if not await self.settle():
                logger.error("no ticks before the next fault; continuing anyway")
            row = await fault()
            rows.append(row)
            logger.info("== {}", describe(row))
            await self._report_health(f"after {row.fault}")
        return rows


async def run_demo(
    timings: DemoTimings | None = None,
    *,
    on_start: OnStart | None = None,
    on_health: OnHealth | None = None,
) -> DemoReport:
    """Run the five faults against an embedded fake gateway; return the measured rows.

    ``on_start(manager, gateway)`` is called once both run (the CLI starts its status line
    there); ``on_health(label, health)`` at each key point with ``connection_health()``.
    Runs in the caller's event loop; everything started here is stopped before it returns.
    """
    t = timings or DemoTimings()
    started = time.monotonic()
    async with FakeGateway(port=0, tick_rate=t.tick_rate) as gateway:
        manager = IBConnectionManager(
            host=gateway.host,
            port=gateway.port,
            client_id=list(DEMO_CLIENT_IDS),
            retry_delay=t.retry_delay,
            max_delay=t.max_delay,
            heartbeat_interval=t.heartbeat_interval,
            heartbeat_timeout=t.heartbeat_timeout,
            connect_timeout=t.connect_timeout,
            circuit_breaker=CircuitBreaker(timeout=t.breaker_timeout),
        )
        scenario = _Scenario(gateway, manager, t, on_health)
        scenario.attach()
        try:
            logger.info("fake gateway on {}:{}; starting the manager", gateway.host, gateway.port)
            await manager.start()
            if on_start is not None:
                on_start(manager, gateway)
            await manager.wait_connected(timeout=t.fault_timeout)
            scenario.subscribe()
            await scenario._report_health("after connecting")
            rows = await scenario.run()
            subscriptions = gateway.market_data_subscriptions
        finally:
            scenario.detach()
            await manager.stop()
    return DemoReport(rows, subscriptions, time.monotonic() - started)


# -------------------------------------------------------------------------------- formatting

_HEADERS: Final = (
    "fault",
    "lasted (ms)",
    "detected after (ms)",
    "recovered after (ms)",
    "ticks resumed",
    "note",
)


def _cell(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"  # "0" would read as "not measured"


def describe(row: FaultResult) -> str:
    ticks = "no" if row.ticks_ms is None else f"yes, after {_cell(row.ticks_ms)} ms"
    return (
        f"{row.fault}: detected after {_cell(row.detected_ms)} ms, recovered after "
        f"{_cell(row.recovered_ms)} ms, ticks resumed: {ticks}"
    )


def format_table(rows: Iterable[FaultResult]) -> str:
    """The result table, plain text, with a legend of what each column measures."""
    body = [
        (
            r.fault,
            _cell(r.lasted_ms),
            _cell(r.detected_ms),
            _cell(r.recovered_ms),
            "no" if r.ticks_ms is None else f"yes, {_cell(r.ticks_ms)} ms",
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(_HEADERS)]
    right = {1, 2, 3}

    def line(cells: Iterable[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(_HEADERS), line("-" * w for w in widths)]
    out += [line(b) for b in body]
    out.append("")
    out.append(
        "detected after: from injecting the fault. recovered after / ticks resumed: from the"
    )
    out.append("end of the fault (unstall, restart, 1101; the injection for drop and client id).")
    return "\n".join(out)
