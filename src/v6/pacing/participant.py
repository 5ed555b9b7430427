"""Request pacing, the participant: one scheduler for every request of the session (issue 17).

:class:`RequestPacing` builds the :class:`~v6.pacing.budget.Budget`, the
:class:`~v6.pacing.scheduler.Scheduler` and the ib_async adapter, and implements the
connection's lifecycle seam (:class:`v6.connection.lifecycle.Participant`): it reports its
budget in ``connection_health()`` and stops its timers when the manager stops.

Requests sent through ``manager.ib`` are paced as they are written; they live and die with
their session, as ib_async's requests do. :meth:`RequestPacing.run` is the way for a request to
outlive a session: it waits for a live connection, runs the call in its lane, and runs it again
in the next session if the socket closes before the answer, until the caller's ``timeout``.
Identical calls under way share one run (:meth:`RequestPacing.run` with a ``key``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, TypeVar

from ib_async import IB

from v6.connection.lanes import Lane, in_lane
from v6.connection.lifecycle import ConnectionView, QuietParticipant
from v6.errors import RequestTimeout
from v6.pacing.budget import Budget
from v6.pacing.ib_adapter import IbAsyncPacing
from v6.pacing.scheduler import Scheduler
from v6.protocol.pacing import PacingLimits

T = TypeVar("T")


class RequestPacing(QuietParticipant):
    """The scheduler, its adapter and the lifecycle seam (see the module docstring)."""

    def __init__(
        self,
        ib: IB,
        limits: PacingLimits | None,
        *,
        connection: ConnectionView,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``limits`` None: the scheduler is off (ib_async's own throttle stays); :meth:`run`
        still outlives sessions."""
        self.limits = limits
        self.scheduler: Scheduler | None = None
        self.adapter: IbAsyncPacing | None = None
        if limits is not None:
            self.scheduler = Scheduler(Budget(limits), clock)
            self.adapter = IbAsyncPacing(ib, self.scheduler, clock)
            self.adapter.install()
        self._ib = ib
        self._connection = connection
        self._clock = clock
        self._shared: dict[Hashable, asyncio.Future[Any]] = {}

    # ------------------------------------------------------------------ the lifecycle seam

    async def stopped(self) -> None:
        if self.adapter is not None:
            self.adapter.close()

    def health(self) -> Mapping[str, Any]:
        """``pacing``: queued per lane, waits, the next free slot, what each rule has spent,
        and the pacing errors that still arrived (by code)."""
        scheduler, adapter = self.scheduler, self.adapter
        if scheduler is None or adapter is None:
            return {"pacing": None}
        stats = scheduler.stats
        slot = scheduler.next_slot()
        return {"pacing": {
            "queued": scheduler.queued(),
            "sent": {lane.name.lower(): stats.sent[lane] for lane in Lane},
            "waited": sum(stats.waited),
            "wait_seconds": round(stats.wait_seconds, 6),
            "longest_wait_seconds": round(stats.longest_wait, 6),
            "next_slot_in_seconds": None if slot is None else round(slot - self._clock(), 6),
            "violations": {str(code): n for code, n in sorted(adapter.violations.items())},
            "retried": adapter.retried,
            **scheduler.usage(),
        }}  # fmt: skip

    # -------------------------------------------------------------------------- run

    async def run(
        self,
        call: Callable[[IB], Awaitable[T]],
        *,
        lane: Lane = Lane.BULK,
        timeout: float | None = None,
        key: Hashable | None = None,
    ) -> T:
        """``await call(ib)`` in ``lane`` once the connection is live; again in the next
        session if the socket closes first. :class:`~v6.errors.RequestTimeout` after
        ``timeout`` seconds (None: no limit). Calls with the same ``key`` under way share one
        run and its result."""
        if key is None:
            return await self._run(call, lane, timeout)
        shared = self._shared.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._run(call, lane, timeout))
            self._shared[key] = shared
            shared.add_done_callback(lambda _: self._shared.pop(key, None))
        result: T = await asyncio.shield(shared)
        return result

    async def _run(
        self, call: Callable[[IB], Awaitable[T]], lane: Lane, timeout: float | None
    ) -> T:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._connection.wait_connected()
                    try:
                        with in_lane(lane):
                            return await call(self._ib)
                    except ConnectionError:
                        if self._connection.is_connected:
                            raise  # not a lost socket: the call's own failure
        except TimeoutError:
            raise RequestTimeout(
                f"request not answered within {timeout}s (queued for pacing or waiting for a "
                "connection)"
            ) from None
