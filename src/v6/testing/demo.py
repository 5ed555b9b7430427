"""The fault demo behind ``v6-ib demo`` (``make demo``): eight faults, each measured.

:func:`run_demo` starts a :class:`~v6.testing.FakeGateway` on a free port of 127.0.0.1 and a
supervised :class:`~v6.manager.IBConnectionManager` with short intervals, subscribes to a
market-data stream through ``manager.data`` (the strategy's own ``Ticker``, replayed by the
manager), then injects, one after the other:

1. **stall**: the gateway stops answering, sockets open (a frozen TWS): found by the heartbeat;
2. **drop**: every socket closed with a FIN;
3. **gateway down**: the listener stops for :attr:`DemoTimings.outage_hold` seconds, then returns;
4. **1100 / 1101**: TWS cut off from IB, then restored with market data lost;
5. **client id in use**: while the manager is between attempts, a second ``ib_async`` client takes
   its client id, so the next attempt meets error 326 and the manager moves to its second id;
6. **fill during an outage**: a resting limit order is working when the gateway goes down; it
   fills at "IB" while the gateway is down (``gw.fill_order``); after the reconnect the
   application's own ``Trade`` reads Filled and ``on_fill`` has been called exactly once for it,
   before the manager reported CONNECTED;
7. **farm flap**: the market-data farm breaks (2103) and comes back (2104): no reconnect; the
   manager asks for the stream again and the same ``Ticker`` ticks;
8. **silent stream**: the gateway silences the stream, everything else answered: after
   ``stale_after`` the manager asks for it again alone, and the same ``Ticker`` ticks.

Before the faults, a market order is placed and filled live, to show the ordinary path.

Every figure is measured from timestamps recorded by the manager's hooks (``on_state_change``,
``add_resubscribe``) and ``ib_async`` events (ticks, errors), never assumed:

* *detected after*: from injecting the fault to the manager noticing it (leaving CONNECTED, going
  DEGRADED, or receiving 326);
* *recovered after*: from the end of the fault (unstall, restart, 1101; the injection itself for
  drop and client id) to the manager's next CONNECTED;
* *ticks resumed*: from the same point to the first tick after the stream was re-requested.

Every check also verifies that the ticks come to the strategy's own ``Ticker`` object (the one
``manager.data.market_data`` returned at the start), never to a new one.

Each fault is one :class:`~v6.testing.scenario.Step` measured on the scenario harness's
:class:`~v6.testing.scenario.Timeline` (:mod:`v6.testing.scenario`, shared with the fault matrix
and the benchmarks). Library code: :func:`run_demo` runs in the caller's event loop and prints
nothing; the CLI (:mod:`v6.commands.demo`) draws the live view and the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from v6.connection import CircuitBreaker
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway
from v6.testing.demo_faults import DEMO_CLIENT_IDS, DemoFaults, OnHealth
from v6.testing.demo_report import DemoReport, DemoTimings, FaultResult, cell, describe
from v6.testing.gateway import ALWAYS_OPEN

__all__ = [
    "DEMO_CLIENT_IDS",
    "DemoReport",
    "DemoTimings",
    "FaultResult",
    "cell",
    "describe",
    "run_demo",
]

OnStart = Callable[[IBConnectionManager, FakeGateway], None]


async def run_demo(
    timings: DemoTimings | None = None,
    *,
    on_start: OnStart | None = None,
    on_health: OnHealth | None = None,
) -> DemoReport:
    """Run the eight faults against an embedded fake gateway; return the measured rows.

    ``on_start(manager, gateway)`` is called once both run (the CLI starts its status line
    there); ``on_health(label, health)`` at each key point with ``connection_health()``.
    Runs in the caller's event loop; everything started here is stopped before it returns.
    """
    t = timings or DemoTimings()
    started = time.monotonic()
    # open around the clock: the staleness of the demo's stream is judged at any hour
    async with FakeGateway(port=0, tick_rate=t.tick_rate, market_hours=ALWAYS_OPEN) as gateway:
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
            stale_after=t.stale_after,
        )
        scenario = DemoFaults(gateway, manager, t, on_health)
        scenario.attach()
        try:
            logger.info("fake gateway on {}:{}; starting the manager", gateway.host, gateway.port)
            await manager.start()
            if on_start is not None:
                on_start(manager, gateway)
            await manager.wait_connected(timeout=t.fault_timeout)
            await scenario.report_health("after connecting")
            live_order_filled = await scenario.live_order()
            if not live_order_filled:
                logger.error("the live market order was not reported filled")
            rows = await scenario.run()
            subscriptions = gateway.market_data_subscriptions
        finally:
            scenario.detach()
            await manager.stop()
    return DemoReport(rows, subscriptions, time.monotonic() - started, live_order_filled)
