"""What the manager holds for trading state (issue 8), and its public hooks.

:class:`OrderTracking` builds the journal, the :class:`~v6.orders.tracker.FillTracker`, the
:class:`~v6.orders.placing.OrderGate` and two listener lists; :class:`TradingHooks` is the
manager's mixin with ``on_fill`` / ``on_commission``.

Delivery contract (README): ``on_fill(trade, fill)`` is called once per execution id, live fills
as they arrive, and the fills found by reconciliation after each (re)connect before the manager
reports CONNECTED, and after a 1101. A correction (same exec id stem, higher suffix) is delivered
once through ``on_fill`` too; it replaces the fill it corrects in ``trade.fills`` and
``manager.corrections[new_exec_id]`` names the corrected id. ``on_commission(trade, fill,
report)`` is called once per execution, never before its fill.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ib_async import IB, CommissionReport, Fill, Trade

from v6.connection.listeners import ListenerRegistry, Listeners
from v6.orders.journal import Journal
from v6.orders.placing import OrderGate, Refusal
from v6.orders.tracker import FillTracker

if TYPE_CHECKING:
    from loguru import Logger

FillHook = Callable[[Trade, Fill], Any]
CommissionHook = Callable[[Trade, Fill, CommissionReport], Any]


class OrderTracking:
    """The journal, the tracker, the order gate and the fill / commission listeners of one IB."""

    def __init__(
        self,
        ib: IB,
        journal: str | os.PathLike[str] | None,
        *,
        listeners: ListenerRegistry,
        log: Logger,
        refusal: Refusal,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = Journal(journal)  # a newer-schema or corrupt file raises here
        self.fill_listeners = Listeners[[Trade, Fill]]("on_fill", listeners)
        self.commission_listeners = Listeners[[Trade, Fill, CommissionReport]](
            "on_commission", listeners
        )
        self.tracker = FillTracker(
            ib,
            self.journal,
            deliver_fill=self.fill_listeners.fire,
            deliver_commission=self.commission_listeners.fire,
            log=log,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.gate = OrderGate(self.tracker, refusal, rng, wall_clock=wall_clock)
        self._log = log
        self._resyncs = 0  # resyncs started: only the latest one runs on

    def working_orders(self) -> int:
        return self.tracker.registry.working()

    async def resync(
        self,
        *,
        timeout: float,
        retry_delay: float,
        is_live: Callable[[], bool],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """After a 1101 (TWS reconnected to IB, data lost): ask again for open orders,
        completed orders and executions, then reconcile. A request that times out leaves the
        state unknown: retried, never taken as "nothing happened". A reconnect (its own sync
        reconciles) or a later 1101 (its own resync) ends this one."""
        ib = self.tracker.ib
        self._resyncs += 1
        mine, session = self._resyncs, self.tracker.session

        def current() -> bool:
            return is_live() and self.tracker.session == session and self._resyncs == mine

        while current():
            self.tracker.begin_sync()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(ib.reqOpenOrdersAsync(), ib.reqCompletedOrdersAsync(False))
                    await ib.reqExecutionsAsync()
            except TimeoutError:
                _drop_abandoned_requests(ib)
                self._log.warning("Order resync unanswered within {}s; retrying", timeout)
                await sleep(retry_delay)
                continue
            except ConnectionError:
                return  # the socket went: the reconnect reconciles
            if current():
                self.tracker.reconcile()
            return

    def open(self) -> None:
        """Before a connect: the journal file is open (stop() closed it)."""
        self.journal.reopen()

    def close(self) -> None:
        """The manager stopped: end the held Trades' events, close the journal file."""
        self.tracker.close()
        self.journal.close()


def _drop_abandoned_requests(ib: IB) -> None:
    """Forget requests whose future was cancelled, so later messages count as live again."""
    wrapper: Any = ib.wrapper
    for key, future in list(wrapper._futures.items()):
        if future.done():
            wrapper._futures.pop(key, None)
            wrapper._results.pop(key, None)


class TradingHooks:
    """The manager's trading hooks (a mixin; see the module docstring for the contract)."""

    _orders: OrderTracking

    def on_fill(self, callback: FillHook) -> FillHook:
        """Call ``callback(trade, fill)`` once per execution id (live or recovered)."""
        return self._orders.fill_listeners.add(callback)

    def on_commission(self, callback: CommissionHook) -> CommissionHook:
        """Call ``callback(trade, fill, report)`` once per execution's commission report."""
        return self._orders.commission_listeners.add(callback)

    @property
    def corrections(self) -> dict[str, str]:
        """Correcting execution id -> the execution id it replaced."""
        return self._orders.tracker.corrections

    def trading_stats(self) -> dict[str, Any]:
        """``open_orders``, ``fills_delivered``, ``fills_recovered``, ``last_reconcile_seconds``
        (also in ``connection_health()``; read by v6.metrics)."""
        return self._orders.tracker.health()

    @property
    def journal(self) -> Journal:
        return self._orders.journal
