"""Order tracking, the participant that keeps trading state whole across reconnects (issue 8).

:class:`OrderTracking` builds the journal, the :class:`~v6.orders.tracker.FillTracker`, the
:class:`~v6.orders.placing.OrderGate` and two listener lists, and implements the connection's
lifecycle seam (:class:`v6.connection.lifecycle.Participant`): the journal opens before a
connect, the held Trades are re-bound at each handshake, every missed fill is reconciled before
the session counts as live, a 1101 starts a resync, and a client id that owns working orders is
never rotated away from.

Delivery contract (README): within a process ``on_fill(trade, fill)`` is called exactly once per
execution id, live fills as they arrive, and the fills found by reconciliation after each
(re)connect when the session goes live (state CONNECTED, before ``on_connected`` and before
``wait_connected()`` returns, so an order placed from the handler is accepted), and after a 1101
or 1102. Across a crash, at least once: a fill is acknowledged in the journal only after its
handlers returned (:mod:`v6.orders.handlers`); one handed out but never acknowledged is delivered
again and counted (``fills_redelivered``). A correction (same exec id stem, higher suffix) is
delivered once through ``on_fill`` too; it replaces the fill it corrects in ``trade.fills`` and
``manager.corrections[new_exec_id]`` names the corrected id. ``on_commission(trade, fill,
report)`` is called once per execution, never before its fill.

1102 (TWS reconnected to IB, "data maintained") also starts a resync: IB's documentation says
market data subscriptions were kept, and nothing about the order and execution messages TWS could
not receive while cut off from IB; a resync is idempotent and costs three requests, so v6 asks.

The journal is watched: a write that failed (disk full, read-only file) is logged as an ERROR
naming the cause, makes ``connection_health()["healthy"]`` false (``journal_failing`` says why),
and is retried every ``retry_delay`` until it succeeds; fills keep reaching ``on_fill`` meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ib_async import IB, CommissionReport, Fill, Trade

from v6.connection.keeper import CALLBACK_GRACE
from v6.connection.lifecycle import ConnectionView, QuietParticipant, SessionStart
from v6.connection.listeners import ListenerRegistry, Listeners
from v6.connection.state import ConnectionState
from v6.orders.handlers import FillHandlers
from v6.orders.ib_adapter import IbAsyncOrders
from v6.orders.journal import Journal
from v6.orders.journal_lock import DEFAULT_JOURNAL_LOCK_TIMEOUT
from v6.orders.placing import OrderGate
from v6.orders.tracker import FillTracker
from v6.protocol.codes import ErrorCode

if TYPE_CHECKING:
    from loguru import Logger

FillHook = Callable[[Trade, Fill], Any]
CommissionHook = Callable[[Trade, Fill, CommissionReport], Any]


class OrderTracking(QuietParticipant):
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
        journal_lock_timeout: float = DEFAULT_JOURNAL_LOCK_TIMEOUT,
    ) -> None:
        # a newer-schema or corrupt file, or one another process holds, raises here
        self.journal = Journal(journal, lock_timeout=journal_lock_timeout)
        self.fill_listeners = FillHandlers(listeners)
        self.commission_listeners = Listeners[[Trade, Fill, CommissionReport]](
            "on_commission", listeners
        )
        self.port = port = IbAsyncOrders(ib)
        self.tracker = FillTracker(
            port,
            self.journal,
            deliver_fill=self._deliver_fill,
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
        self._wall_clock = wall_clock
        self._resyncs = 0  # resyncs started: only the latest one runs on
        self._lost_at: float | None = None  # wall time the last live session ended
        self._journal_failure: str | None = None  # the cause last logged
        self._journal_retry: asyncio.TimerHandle | None = None
        self._pinned: int | None = None  # the client id 326 could not rotate away from

    # ------------------------------------------------------------------ the lifecycle seam

    def before_connect(self) -> None:
        """The journal file is open (stop() closed it)."""
        self.journal.reopen()

    def handshake(self, session: SessionStart) -> None:
        self.tracker.session_started(session)

    def before_live(self, reconnect: bool) -> None:
        self._warn_if_past_midnight()
        self.tracker.reconcile()  # every missed fill decided, before CONNECTED
        self._pinned = None
        self._check_journal()

    def live(self, reconnect: bool) -> None:
        self.tracker.go_live()  # recovered fills handed out: orders from on_fill are accepted
        self._check_journal()

    def data_lost(self) -> None:
        self._start_resync("1101")

    def system_message(self, code: int, text: str) -> None:
        if code == ErrorCode.RESTORED_DATA_MAINTAINED and self._connection.is_connected:
            self._start_resync("1102")

    def lost(self, reason: str) -> None:
        self._lost_at = self._wall_clock()

    async def stopped(self) -> None:
        """Let async on_fill handlers finish briefly (a cancelled one leaves its fill
        unacknowledged), end the held Trades' events, close the journal file."""
        await self.fill_listeners.drain(CALLBACK_GRACE)
        self.tracker.close()
        if self._journal_retry is not None:
            self._journal_retry.cancel()
            self._journal_retry = None
        self.journal.close()

    def may_rotate_client_id(self) -> bool:
        """Error 326 with working orders, or with orders the journal holds under this id (an
        earlier process's, whose stale session holds the id until it times out): only this
        client id may manage them, and only its reqExecutions reports their fills."""
        client_id = self.tracker.endpoint().client_id
        held = self.working_orders()
        settings = self._connection.settings
        journal = client_id in self.journal.client_ids_with_orders(settings.host, settings.port)
        if not held and not journal:
            return True
        if self._pinned != client_id:
            self._log.warning(
                "Client id {} is pinned: {} working order(s) held{}; retrying it (a stale "
                "session frees it when it times out), not rotating to another id",
                client_id, held, ", and orders in the journal" if journal else "",
            )  # fmt: skip
        self._pinned = client_id
        return False

    def health(self) -> dict[str, Any]:
        """``open_orders``, ``fills_delivered``, ``fills_recovered``, ``fills_redelivered``,
        ``fill_handler_errors``, ``last_reconcile_seconds``, ``journal_failing``,
        ``pinned_client_id``; ``healthy`` False while the journal cannot be written."""
        self._check_journal()
        failing = self.journal.failure
        fields = {
            **self.tracker.health(),
            "fill_handler_errors": self.fill_listeners.errors,
            "journal_failing": failing,
            "pinned_client_id": self._pinned,
        }
        # Only a veto: Participants.health() leaves the key in place when the connection is
        # unhealthy already (its `and` short-circuits the pop), so a True here would override.
        return fields if failing is None else {**fields, "healthy": False}

    # ------------------------------------------------------------------------ the rest

    def working_orders(self) -> int:
        return self.tracker.registry.working()

    def _deliver_fill(self, trade: Trade, fill: Fill, done: Callable[[], None]) -> None:
        self.fill_listeners.deliver(trade, fill, done)
        self._check_journal()

    def _start_resync(self, code: str) -> None:
        settings = self._connection.settings
        self._tasks.spawn(self.resync(
            timeout=settings.connect_timeout, retry_delay=settings.retry_delay,
            is_live=lambda: self._connection.is_connected,
        ), f"order resync after {code}")  # fmt: skip

    def _warn_if_past_midnight(self) -> None:
        """reqExecutions reports the current trading day only: fills made before TWS's daily
        reset (its midnight) cannot be recovered by any client. Say so when an outage crossed
        a midnight (UTC or local: TWS's own zone is one of them for most set-ups)."""
        lost, self._lost_at = self._lost_at, None
        if lost is None:
            return
        now = self._wall_clock()
        for zone in (UTC, None):
            day = datetime.fromtimestamp(lost, zone).date()
            if day != datetime.fromtimestamp(now, zone).date():
                self._log.warning(
                    "The outage crossed midnight ({:%Y-%m-%d %H:%M} -> {:%Y-%m-%d %H:%M} UTC): "
                    "fills made before TWS's daily execution reset cannot be recovered",
                    datetime.fromtimestamp(lost, UTC), datetime.fromtimestamp(now, UTC),
                )  # fmt: skip
                return

    def _check_journal(self) -> None:
        """Log a journal write failure once per cause, retry until it is gone."""
        failure = self.journal.failure
        if failure != self._journal_failure:
            if failure is not None:
                self._log.error("Journal {} cannot be written ({}); {} write(s) kept in memory "
                                "and retried; fills are still delivered", self.journal.path,
                                failure, self.journal.unwritten)  # fmt: skip
            else:
                self._log.info("Journal {} written again", self.journal.path)
            self._journal_failure = failure
        if failure is not None and self._journal_retry is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._journal_retry = loop.call_later(
                self._connection.settings.retry_delay, self._retry_journal
            )

    def _retry_journal(self) -> None:
        self._journal_retry = None
        self.journal.retry()
        self._check_journal()

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
                self._check_journal()
            return
