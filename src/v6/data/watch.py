"""Watching the feeds while a session is live: stale ones re-requested (the policy is
:func:`v6.data.feeds.judge`), farm flaps answered one farm family at a time.

One task per live session sleeps until the first feed is due (a feed's due time only moves later
as data arrives, so the task wakes when something could be stale, not on every update) and acts
on what :func:`~v6.data.feeds.judge` says. A feed is judged only while the connection is CONNECTED
(not DEGRADED: TWS then has no data to send), while no farm of its family is broken (the farm's
return re-requests it), and, when IB gave the contract's liquid hours, only inside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from v6.connection.lanes import Lane, in_lane
from v6.connection.state import ConnectionState
from v6.connection.system_messages import FarmStatus
from v6.data.feeds import Feed, FeedAction, FeedState, judge
from v6.data.hours import LiquidHours, parse_liquid_hours
from v6.data.registry import FeedRegistry
from v6.data.specs import FARM_FAMILY, contract_of, feed_name

if TYPE_CHECKING:
    from loguru import Logger

#: How often a feed is looked at again while it may not be judged (unhealthy connection,
#: market closed): a change is noticed within this.
RECHECK: Final = 1.0


class FeedWatch:
    """The watching task of one registry (see the module docstring)."""

    def __init__(
        self,
        registry: FeedRegistry,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        log: Logger,
        max_resubscribes: int,
        competing_retry: float,
        reconnect: Callable[[str], None],
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._wall_clock = wall_clock
        self._log = log
        self._max_resubscribes = max_resubscribes
        #: Seconds before a feed refused for a competing session (10197) is asked for again.
        self.competing_retry = competing_retry
        self._reconnect = reconnect
        self._task: asyncio.Task[None] | None = None
        self._live = False  # a session is live: feeds are watched
        self._wake = asyncio.Event()
        self._down: dict[str, dict[str, float]] = defaultdict(dict)  # family -> farm -> since
        self._hours: dict[int, LiquidHours | None] = {}  # conId -> hours (None: unknown)

    def start(self) -> None:
        """Watch while the session is live (a task only while there is a feed to watch)."""
        self._live = True
        if self._registry.feeds and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        self._live = False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._down.clear()  # a new session's farms start OK

    def changed(self) -> None:
        """A feed was added, removed or changed state: look again now."""
        if self._live and self._task is None:
            self.start()
        self._wake.set()

    # ----------------------------------------------------------------------- farms

    def farm(self, notice: FarmStatus) -> None:
        """A farm of a stream family (market data, historical data) broke or is OK again."""
        if not notice.ok:
            down = self._down[notice.kind]
            if notice.farm not in down:
                down[notice.farm] = self._clock()
                self._registry.farm_flaps += 1
                self._log.info("Data farm {} broken: its {} feeds wait for it", notice.farm,
                               notice.kind)  # fmt: skip
            return
        was_down = self._down.get(notice.kind)  # (every handshake's farms say OK: none was)
        broke = None if was_down is None else was_down.pop(notice.farm, None)
        if broke is None:
            return
        silent = [
            feed for feed in self._registry.feeds
            if FARM_FAMILY.get(feed.spec.kind) == notice.kind and feed.last_update < broke
        ]  # fmt: skip
        self._log.info("Data farm {} OK again: re-requesting {} feed(s) silent since it broke",
                       notice.farm, len(silent))  # fmt: skip
        for feed in silent:
            self._registry.resubscribe(feed)
        self.changed()

    # -------------------------------------------------------------------- watching

    async def _run(self) -> None:
        while True:
            now = self._clock()
            wake = math.inf
            for feed in list(self._registry.feeds):
                due = self._due(feed, now)
                if due <= now:
                    self._act(feed, now)
                    due = self._due(feed, now)
                wake = min(wake, due)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if wake == math.inf else max(0.0, wake - now)):
                    await self._wake.wait()

    def _due(self, feed: Feed, now: float) -> float:
        due = feed.due(self.competing_retry)
        if due == math.inf:
            return due
        if not self._may_judge(feed):
            return max(due, now + RECHECK)
        return due

    def _may_judge(self, feed: Feed) -> bool:
        connection = self._registry.connection
        if connection.state is not ConnectionState.CONNECTED or not connection.is_connected:
            return False
        family = FARM_FAMILY.get(feed.spec.kind)
        if family is not None and self._down[family]:
            return False
        return self._liquid(feed)

    def _liquid(self, feed: Feed) -> bool:
        contract = contract_of(feed.spec)
        if contract is None or not contract.conId:
            return True
        if contract.conId not in self._hours:
            self._hours[contract.conId] = None  # judged at all hours until they are known
            self._registry.spawn(self._fetch_hours(contract))
        hours = self._hours[contract.conId]
        now = self._wall_clock()
        if hours is None or hours.known_until is None or now >= hours.known_until:
            return True
        return hours.is_open(now)

    async def _fetch_hours(self, contract: Any) -> None:
        with in_lane(Lane.BULK):
            details = await self._registry.ib.reqContractDetailsAsync(contract)
        if details:
            self._hours[contract.conId] = parse_liquid_hours(
                details[0].liquidHours or "", details[0].timeZoneId or ""
            )

    def _act(self, feed: Feed, now: float) -> None:
        action = judge(feed, now, max_resubscribes=self._max_resubscribes,
                       competing_retry=self.competing_retry)  # fmt: skip
        name = f"{feed.spec.kind} {feed_name(feed.spec)}"
        if action is FeedAction.RESUBSCRIBE:
            level = "WARNING" if feed.failures == 0 else "DEBUG"  # once per silent episode
            self._log.log(level, "{} silent for {:.3g}s; re-requested", name,
                          now - feed.silent_since())  # fmt: skip
            if feed.state is not FeedState.COMPETING:
                feed.failures += 1
                feed.state = FeedState.RESUBSCRIBING
            self._registry.resubscribe(feed)
        elif action is FeedAction.RECONNECT and self._registry.connection.supervised:
            feed.reconnected = True
            self._log.warning("{} still silent after {} re-request(s): reconnecting once",
                              name, feed.failures)  # fmt: skip
            self._reconnect(f"{name} silent after {feed.failures} re-request(s)")
        elif action is not FeedAction.NONE:
            feed.reconnected = True
            feed.state = FeedState.DEAD
            self._log.error("{} is dead: silent after re-requests and a reconnect", name)
