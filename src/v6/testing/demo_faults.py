"""The demo's eight faults (:class:`DemoFaults`), each one :class:`~v6.testing.scenario.Step` on
one gateway and one manager, recorded on one :class:`~v6.testing.scenario.Timeline`; what each
does and measures is told in :mod:`v6.testing.demo`, which runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from ib_async import IB, Fill, LimitOrder, MarketOrder, Stock, Ticker, Trade
from loguru import logger

from v6.connection import ConnectionState
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway
from v6.testing.demo_report import DemoTimings, FaultResult, describe, row_of
from v6.testing.scenario import (
    Detector,
    Kind,
    Step,
    Timeline,
    condition,
    entered,
    error,
    left_live,
    measure,
    poll,
    ticks_after_resubscribe,
)

S = ConnectionState

#: The demo manager's client ids: the first is taken by the intruder in fault 5.
DEMO_CLIENT_IDS: Final = (7, 8)
#: AAPL on SMART; ib_async's reqMktData needs conId set (the demo never calls qualifyContracts).
DEMO_CONTRACT: Final = Stock("AAPL", "SMART", "USD", conId=265598)
#: Shares per demo order (the fake gateway's fill_size splits larger orders into partial fills).
DEMO_QUANTITY: Final = 10
OnHealth = Callable[[str, Mapping[str, Any]], None]


def _nothing() -> None:
    return None


class DemoFaults:
    """The demo's steps against one gateway and one manager, recorded on one timeline."""

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
        self.timeline = Timeline()
        self.on_health = on_health
        self._detach: list[Callable[[], None]] = []
        #: exec id -> on_fill calls for it, and the Trade each call carried
        self.fills: dict[str, list[Trade]] = {}
        self.own_ticks = 0  # updates of the strategy's own Ticker

    def attach(self) -> None:
        self._detach.append(self.timeline.attach(self.manager))
        self.manager.on_fill(self._on_fill)
        #: The strategy's own Ticker: the manager replays the stream onto it, never a new one.
        self.ticker = self.manager.data.market_data(DEMO_CONTRACT)
        self.ticker.updateEvent += self._on_tick

    def detach(self) -> None:
        self.ticker.updateEvent -= self._on_tick
        for detach in self._detach:
            detach()

    def _on_tick(self, ticker: Ticker) -> None:
        self.own_ticks += 1

    def own_ticker_ticks(self) -> Detector:
        """The first tick of the strategy's own Ticker after ``since``: the stream back on the
        object the strategy holds (an entry of the timeline's, checked against the object)."""
        seen = self.own_ticks

        def detect(timeline: Timeline, since: float) -> float | None:
            if self.own_ticks == seen:
                return None
            return timeline.at(Kind.TICK, since)

        return detect

    def _on_fill(self, trade: Trade, fill: Fill) -> None:
        self.fills.setdefault(fill.execution.execId, []).append(trade)
        logger.info(
            "on_fill: order {} {} {} @ {} (exec {}), order now {} {}/{}",
            trade.order.orderId,
            fill.execution.side,
            fill.execution.shares,
            fill.execution.price,
            fill.execution.execId,
            trade.orderStatus.status,
            trade.orderStatus.filled,
            trade.order.totalQuantity,
        )

    async def live_order(self) -> bool:
        """Place a market order and wait until on_fill has reported all of it."""
        trade = self.manager.ib.placeOrder(DEMO_CONTRACT, MarketOrder("BUY", DEMO_QUANTITY))
        order_id = trade.order.orderId
        logger.info("-- order: BUY {} AAPL at market (order {})", DEMO_QUANTITY, order_id)
        done = await poll(
            lambda: True if self._delivered(trade) >= DEMO_QUANTITY else None, self.t.fault_timeout
        )
        return done is not None

    def _delivered(self, trade: Trade) -> float:
        return sum(
            sum(f.execution.shares for f in trade.fills if f.execution.execId == exec_id)
            for exec_id, trades in self.fills.items()
            if trades and trades[0] is trade
        )

    async def report_health(self, label: str) -> None:
        health = await self.manager.connection_health()
        logger.debug("health {}: {}", label, json.dumps(health, sort_keys=True))
        if self.on_health is not None:
            self.on_health(label, health)

    async def settle(self) -> bool:
        """Connected and ticks flowing for ``settle`` seconds."""
        start = self.timeline.now()
        ticking = await poll(
            lambda: (
                self.timeline.at(Kind.TICK, start) if self.manager.state is S.CONNECTED else None
            ),
            self.t.fault_timeout,
        )
        await asyncio.sleep(self.t.settle)
        return ticking is not None

    async def measure(self, step: Step) -> FaultResult:
        """One step; unless it says otherwise, ticks resuming after the re-requested stream
        count as its end."""
        if step.resume is None:
            step = replace(step, resume=ticks_after_resubscribe)
        measured = await measure(step, self.timeline, self.t.fault_timeout)
        if measured.detected is None:
            logger.error("{}: not detected within {}s", step.name, self.t.fault_timeout)
        return row_of(measured)

    # ---------------------------------------------------------------- the faults
    # One method per fault, listed in :meth:`steps`: a new fault is one method and one line.

    async def stall(self) -> FaultResult:
        logger.info("-- fault: stall: the gateway stops answering; sockets stay open")
        return await self.measure(
            Step(
                "stall (silent gateway)",
                inject=self.gw.stall,
                detect=left_live,
                hold=self.t.stall_hold,
                clear=self._logged("-- stall ends", self.gw.unstall),
            )
        )

    async def drop(self) -> FaultResult:
        logger.info("-- fault: drop: the gateway closes every socket (FIN)")
        return await self.measure(
            Step("drop (FIN)", inject=lambda: self.gw.drop_all(reset=False), detect=left_live)
        )

    async def outage(self) -> FaultResult:
        logger.info("-- fault: gateway down for {}s (connections refused)", self.t.outage_hold)
        started = self.timeline.now()
        before = self._failed_attempts()
        row = await self.measure(
            Step(
                "gateway down",
                inject=self.gw.stop,
                detect=left_live,
                hold=self.t.outage_hold,
                clear=self._logged("-- gateway back up", self.gw.start),
            )
        )
        note = f"{self._failed_attempts() - before} failed attempts"
        if self.timeline.entered(S.CIRCUIT_OPEN, started) is not None:
            note += ", breaker opened"
        return replace(row, note=note)

    def _failed_attempts(self) -> int:
        attempts = self.manager.stats.attempts
        return sum(n for result, n in attempts.items() if result not in ("ok", "fatal"))

    @staticmethod
    def _logged(message: str, action: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            logger.info(message)
            return action()

        return run

    async def cut_off(self) -> FaultResult:
        logger.info("-- fault: TWS reports 1100 (cut off from IB), then 1101 (data lost)")
        return await self.measure(
            Step(
                "1100 then 1101",
                inject=lambda: self.gw.broadcast_error(1100),
                detect=entered(S.DEGRADED),
                hold=self.t.cut_off_hold,
                clear=lambda: self.gw.broadcast_error(1101),
                note="no reconnect; stream re-requested",
            )
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
        staged_from = self.timeline.now()
        refused_before = manager.stats.attempts.get("refused", 0)
        await gw.stop()
        ready = await poll(lambda: self._sleeping_long_enough(refused_before), self.t.fault_timeout)
        await gw.start()
        outage_ms = (self.timeline.now() - staged_from) * 1000.0
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
            # already injected: the id is held from now on
            row = await self.measure(Step(name, inject=_nothing, detect=error(326)))
            note = f"now client id {manager.client_id}; staged by a {outage_ms:.0f} ms outage"
            if self.timeline.entered(S.CIRCUIT_OPEN, staged_from) is not None:
                note += ", breaker opened"
            return replace(row, lasted_ms=None, note=note)
        finally:
            intruder.disconnect()

    def _sleeping_long_enough(self, refused_before: int) -> float | None:
        """Now, if the manager is waiting with at least ``staging_window`` seconds left."""
        manager = self.manager
        now = self.timeline.now()
        states = self.timeline.states()
        if manager.state is S.CIRCUIT_OPEN:
            left = manager.circuit_breaker.retry_after()
        elif manager.state is S.BACKING_OFF and states:
            failures = manager.stats.attempts.get("refused", 0) - refused_before
            if failures < 1:
                return None  # the first wait after a loss is short and random
            since = states[-1].at
            backoff = manager.settings.backoff
            left = backoff.nominal(failures) * (1.0 - backoff.jitter) - (now - since)
        else:
            return None
        return now if left >= self.t.staging_window else None

    # ---------------------------------------------------------------- the run

    async def fill_during_outage(self) -> FaultResult:
        limit = round(self.gw.quote(DEMO_CONTRACT.conId).bid / 2, 2)  # far below the bid: rests
        trade = self.manager.ib.placeOrder(DEMO_CONTRACT, LimitOrder("BUY", DEMO_QUANTITY, limit))
        order_id = trade.order.orderId
        await poll(lambda: True if trade.orderStatus.status == "Submitted" else None, 5.0)
        logger.info("-- fault: gateway down while BUY {} LMT {} (order {}) is working",
                    DEMO_QUANTITY, limit, order_id)  # fmt: skip
        filled: list[str] = []

        async def fill_while_down() -> None:
            filled.append(self.gw.fill_order(order_id, client_id=self.manager.client_id))
            logger.info("-- order {} fills at IB while the gateway is down ({})", order_id, filled)
            await self.gw.start()

        row = await self.measure(
            Step(
                "fill during an outage",
                inject=self.gw.stop,
                detect=left_live,
                hold=self.t.outage_hold,
                clear=fill_while_down,
            )
        )
        calls = [len(self.fills.get(exec_id, [])) for exec_id in filled]
        same = all(t is trade for e in filled for t in self.fills.get(e, []))
        status = f"{trade.orderStatus.status} {trade.orderStatus.filled:g}/{DEMO_QUANTITY}"
        verified = calls == [1] and same and trade.orderStatus.status == "Filled"
        note = f"on_fill calls {calls}; the held Trade: {status}, same object: {same}"
        return replace(row, note=note, verified=verified)

    async def farm_flap(self) -> FaultResult:
        logger.info("-- fault: the market-data farm breaks for {}s (2103, then 2104)",
                    self.t.farm_hold)  # fmt: skip
        feed = self.manager.data.feeds[0]
        resubscribes = feed.resubscribes
        row = await self.measure(
            Step(
                "farm flap (2103 -> 2104)",
                inject=lambda: self.gw.farm_flap("usfarm", self.t.farm_hold),
                detect=error(2103),
                hold=self.t.farm_hold,
                clear=_nothing,  # the farm comes back by itself after farm_hold
                recover=error(2104),
                resume=self.own_ticker_ticks(),
            )
        )
        asked = feed.resubscribes - resubscribes
        return replace(row, note=f"no reconnect; the strategy's Ticker asked for again x{asked}")

    async def silent_stream(self) -> FaultResult:
        feed = self.manager.data.feeds[0]
        asked = feed.resubscribes
        assert feed.req_id is not None
        logger.info("-- fault: the gateway silences the stream (request {}); probes answered",
                    feed.req_id)  # fmt: skip
        row = await self.measure(
            Step(
                "silent stream",
                inject=lambda: self.gw.silence_stream(feed.req_id or 0),
                detect=condition(lambda: feed.resubscribes > asked),
                clear=lambda: self.gw.silence_stream(feed.req_id or 0, on=False),
                recover=condition(lambda: True),
                resume=self.own_ticker_ticks(),
            )
        )
        note = f"stale_after {self.t.stale_after:g}s; asked for again alone"
        return replace(row, lasted_ms=None, note=note)

    def steps(self) -> list[Callable[[], Awaitable[FaultResult]]]:
        """The demo's faults, in order."""
        return [
            self.stall,
            self.drop,
            self.outage,
            self.cut_off,
            self.client_id_in_use,
            self.fill_during_outage,
            self.farm_flap,
            self.silent_stream,
        ]

    async def run(self) -> list[FaultResult]:
        rows: list[FaultResult] = []
        for fault in self.steps():
            if not await self.settle():
                logger.error("no ticks before the next fault; continuing anyway")
            row = await fault()
            rows.append(row)
            logger.info("== {}", describe(row))
            await self.report_health(f"after {row.fault}")
        return rows
