"""Order tracking, the participant that keeps trading state whole across reconnects (issue 8).

:class:`OrderTracking` builds the journal, the :class:`~v6.orders.tracker.FillTracker`, the
:class:`~v6.orders.placing.OrderGate` and two listener lists, and implements the connection's
lifecycle seam (:class:`v6.connection.lifecycle.Participant`): the journal opens before a
connect, the held Trades are re-bound at each handshake, every missed fill is reconciled before
the session counts as live, a 1101 starts a resync, and a client id that owns working orders is
never rotated away from.

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

from v6.connection.lifecycle import ConnectionView, SessionStart
from v6.connection.listeners import ListenerRegistry, Listeners
from v6.connection.state import ConnectionState
from v6.orders.ib_adapter import IbAsyncOrders
from v6.orders.journal import Journal
from v6.orders.placing import OrderGate
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
        connection: ConnectionView,
        listeners: ListenerRegistry,
        log: Logger,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = Journal(journal)  # a newer-schema or corrupt file raises here
        self.fill_listeners = Listeners[[Trade, Fill]]("on_fill", listeners)
        self.commission_listeners = Listeners[[Trade, Fill, CommissionReport]](
            "on_commission", listeners
        )
        self.port = port = IbAsyncOrders(ib)
        self.tracker = FillTracker(
            port,
            self.journal,
            deliver_fill=self.fill_listeners.fire,
            deliver_commission=self.commission_listeners.fire,
            log=log,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.gate = OrderGate(self.tracker, self._refusal, rng, wall_clock=wall_clock)
        port.install(self.tracker)
        port.route_place_order(self.gate.place_order)
        self._connection = connection
        self._tasks = listeners.tasks
        self._log = log
        self._resyncs = 0  # resyncs started: only the latest one runs on

    # ------------------------------------------------------------------ the lifecycle seam

    def before_connect(self) -> None:
        """The journal file is open (stop() closed it)."""
        self.journal.reopen()

    def handshake(self, session: SessionStart) -> None:
        self.tracker.session_started(session)

    def before_live(self, reconnect: bool) -> None:
        self.tracker.reconcile()  # every missed fill, before CONNECTED

    def live(self, reconnect: bool) -> None:
        pass

    def data_lost(self) -> None:
        settings = self._connection.settings
        self._tasks.spawn(self.resync(
            timeout=settings.connect_timeout, retry_delay=settings.retry_delay,
            is_live=lambda: self._connection.is_connected,
        ), "order resync after 1101")  # fmt: skip

    def system_message(self, code: int, text: str) -> None:
        pass

    def lost(self, reason: str) -> None:
        pass

    async def stopped(self) -> None:
        """End the held Trades' events (as ib_async would have), close the journal file."""
        self.tracker.close()
        self.journal.close()

    def may_rotate_client_id(self) -> bool:
        """Error 326 with working orders: only this client id may still manage them."""
        return self.working_orders() == 0

    def health(self) -> dict[str, Any]:
        """``open_orders``, ``fills_delivered``, ``fills_recovered``, ``last_reconcile_seconds``."""
        return self.tracker.health()

    # ------------------------------------------------------------------------ the rest

    def working_orders(self) -> int:
        return self.tracker.registry.working()

    def _refusal(self) -> str | None:
        """Why an order may not go out now (None: it may)."""
        if not self._connection.socket_up:
            return "not connected"
        if self._connection.state is ConnectionState.CONNECTING:
            return "connecting: reconciliation not finished; retry after wait_connected()"
        return None

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
        self._resyncs += 1
        mine, session = self._resyncs, self.tracker.session

        def current() -> bool:
            return is_live() and self.tracker.session == session and self._resyncs == mine

        while current():
            self.tracker.begin_sync()
            try:
                async with asyncio.timeout(timeout):
                    await self.port.sync_orders()
            except TimeoutError:
                self.port.drop_abandoned_requests()
                self._log.warning("Order resync unanswered within {}s; retrying", timeout)
                await sleep(retry_delay)
                continue
            except ConnectionError:
                return  # the socket went: the reconnect reconciles
            if current():
                self.tracker.reconcile()
            return
