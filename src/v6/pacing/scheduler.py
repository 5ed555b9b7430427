"""The request scheduler: every outgoing message passes here, in priority lanes (asyncio glue
around the pure :class:`~v6.pacing.budget.Budget`).

A message goes at once when no message of its lane or an earlier one waits and the budget
allows it; otherwise it waits in its lane. One timer wakes the scheduler when the first waiting
message may go; a request that ends (or a line freed) wakes it too. Within a lane, order is kept
among messages the same rule holds back, and a message held by one rule (a contract's two-second
window, say) does not hold back the next one in its lane. A cancel never waits: a cancel of a
message still waiting withdraws both. When the socket closes, its waiting messages are dropped
(ib_async has failed their requests with ``ConnectionError``; the next socket numbers its
requests anew): :meth:`~v6.pacing.participant.RequestPacing.run` is how a request outlives a
session.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from v6.connection.lanes import Lane
from v6.pacing.budget import Budget, Cost

#: Messages examined per lane per wake (bounds the work one wake does behind a held head).
SCAN_LIMIT: Final = 256


@dataclass(eq=False, slots=True)
class Waiting:
    """A message held back: what it costs, how to send it, and since when it waits."""

    cost: Cost
    send: Callable[[], None]
    since: float


@dataclass
class SchedulerStats:
    """Counters since the scheduler was made (read by health and metrics)."""

    sent: list[int] = field(default_factory=lambda: [0] * len(Lane))  # by lane
    waited: list[int] = field(default_factory=lambda: [0] * len(Lane))  # had to wait, by lane
    wait_seconds: float = 0.0  # total time messages waited
    longest_wait: float = 0.0
    withdrawn: int = 0  # waiting requests withdrawn by their cancel
    dropped: int = 0  # waiting messages of a session that ended


class Scheduler:
    """Lanes of waiting messages and the one timer that releases them."""

    def __init__(self, budget: Budget, clock: Callable[[], float]) -> None:
        self.budget = budget
        self._clock = clock
        self._lanes: dict[Lane, deque[Waiting]] = {lane: deque() for lane in Lane}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._waiting = 0  # messages waiting, over all lanes
        self._withdrawn_cancel: Cost | None = None  # go() withdrew its request: hold() drops it
        self.stats = SchedulerStats()

    def queued(self) -> dict[str, int]:
        return {lane.name.lower(): len(q) for lane, q in self._lanes.items()}

    def next_slot(self) -> float | None:
        """clock() when the first waiting message may go (None: nothing waits)."""
        return None if self._timer_at == math.inf else self._timer_at

    def offer(self, cost: Cost, send: Callable[[], None]) -> None:
        """Send now, or hold until the budget and the lanes allow it."""
        if self.go(cost):
            send()
        else:
            self.hold(cost, send)

    def go_plain(self, lane: Lane) -> bool:
        """:meth:`go` for a message that spends the message rate alone, in URGENT or SYNC
        (an order, the start-up sync): the short way while nothing waits. False: ask
        :meth:`go`."""
        if self._waiting or not self.budget.take_message(lane, self._clock()):
            return False
        self.stats.sent[lane] += 1
        return True

    def go(self, cost: Cost) -> bool:
        """True: the message may go now, and is counted as sent (the caller sends it). False:
        it must wait (:meth:`hold`); or it is a cancel whose request was still waiting, and
        both are withdrawn (:meth:`hold` then does nothing)."""
        now = self._clock()
        if self._waiting and cost.ends is not None and self._withdraw(cost.ends):
            self._withdrawn_cancel = cost
            return False
        if self._waiting and self._ahead_of(cost.lane):
            return False
        if self.budget.earliest(cost, now) > now:
            return False
        self._count(cost, now)
        return True

    def hold(self, cost: Cost, send: Callable[[], None]) -> None:
        """Let ``cost`` wait in its lane (after :meth:`go` said False)."""
        if self._withdrawn_cancel is cost:
            self._withdrawn_cancel = None
            return
        self._lanes[cost.lane].append(Waiting(cost, send, self._clock()))
        self._waiting += 1
        self.pump()

    def pump(self) -> None:
        """Send every waiting message that may go now; set the timer for the next."""
        now = self._clock()
        wake = math.inf
        for lane, waiting in self._lanes.items():
            if not waiting:
                continue
            if self.budget.message_slot(lane, now) > now:
                wake = min(wake, self.budget.message_slot(lane, now))
                continue
            wake = min(wake, self._release(waiting, now))
        self._set_timer(wake)

    def _release(self, waiting: deque[Waiting], now: float) -> float:
        """Send what may go from one lane (scanning past held messages); when the next may."""
        wake = math.inf
        held: list[Waiting] = []
        for _ in range(min(len(waiting), SCAN_LIMIT)):
            item = waiting.popleft()
            at = self.budget.earliest(item.cost, now)
            if at <= now:
                self._waiting -= 1
                self._count(item.cost, now, since=item.since)
                item.send()
                if self.budget.message_slot(item.cost.lane, now) > now:
                    break  # the message rate is spent for this lane
            else:
                held.append(item)
                wake = min(wake, at)
        waiting.extendleft(reversed(held))  # held messages keep their place at the front
        if waiting and len(held) < len(waiting):
            wake = min(wake, self.budget.message_slot(waiting[0].cost.lane, now))
        return wake

    def request_ended(self, req_id: int) -> None:
        """A request ended (data complete, failed, cancelled): its slot may free a waiter."""
        self.budget.ended(req_id)
        self.pump()

    def session_ended(self) -> None:
        """The socket closed: waiting messages belonged to it (ib_async failed their requests);
        open requests and lines went with it."""
        for waiting in self._lanes.values():
            self.stats.dropped += len(waiting)
            waiting.clear()
        self._waiting = 0
        self.budget.session_ended()
        self._set_timer(math.inf)

    def close(self) -> None:
        self.session_ended()

    # ------------------------------------------------------------------- internals

    def _ahead_of(self, lane: Lane) -> bool:
        """A message of ``lane`` or an earlier one waits (a new one must queue behind it)."""
        return any(self._lanes[earlier] for earlier in Lane if earlier <= lane)

    def _count(self, cost: Cost, now: float, since: float = -1) -> None:
        self.budget.spend(cost, now)
        if cost.ends is not None and self._waiting:  # a freed slot: look again once it is sent
            asyncio.get_running_loop().call_soon(self.pump)
        self.stats.sent[cost.lane] += 1
        if since >= 0:
            waited = now - since
            self.stats.waited[cost.lane] += 1
            self.stats.wait_seconds += waited
            self.stats.longest_wait = max(self.stats.longest_wait, waited)

    def _withdraw(self, req_id: int) -> bool:
        for waiting in self._lanes.values():
            for item in waiting:
                if item.cost.req_id == req_id:
                    waiting.remove(item)
                    self._waiting -= 1
                    self.stats.withdrawn += 1
                    return True
        return False

    def _set_timer(self, at: float) -> None:
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at < math.inf:
            loop = asyncio.get_running_loop()
            delay = max(0.0, at - self._clock())
            self._timer = loop.call_at(loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self.pump()

    def usage(self) -> dict[str, Any]:
        return self.budget.usage(self._clock())
