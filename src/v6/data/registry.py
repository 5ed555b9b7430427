"""The registry of feeds: each subscription requested onto the object the application holds,
again whenever asked (a replay, a stale feed, a farm back), and what IB says about it.

Requests go in the STREAMS lane of the request scheduler; a keepUpToDate bar series asks for
what it missed and merges it in (:mod:`~v6.data.gaps`). An error for a feed's request id gets
the response :mod:`~v6.data.responses` names; an update of a feed's object marks it alive.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ib_async import IB, BarDataList, Contract

from v6.connection.lanes import Lane, in_lane
from v6.connection.lifecycle import ConnectionView
from v6.data.feeds import Feed, FeedState
from v6.data.gaps import gap_duration, merge_bars
from v6.data.ib_adapter import IbAsyncData
from v6.data.responses import COMPETING_BURST, Episodes, Response, response_to
from v6.data.specs import FeedKind, HistoricalBars, Spec, contract_of, feed_name
from v6.protocol.pacing import bar_seconds

if TYPE_CHECKING:
    from loguru import Logger


class FeedRegistry:
    """Feeds by number, request id and object (see the module docstring)."""

    def __init__(
        self,
        ib: IB,
        *,
        connection: ConnectionView,
        log: Logger,
        clock: Callable[[], float],
    ) -> None:
        self.adapter = IbAsyncData(ib)
        self.feeds: list[Feed] = []
        self.ib = ib
        self.connection = connection
        self._log = log
        self._clock = clock
        self._by_req: dict[int, Feed] = {}
        self._by_handle: dict[int, list[Feed]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._numbers = 0
        self.refusals = 0  # 101 and other refusals, over all feeds
        self.competing = Episodes(COMPETING_BURST)
        self.farm_flaps = 0
        self.changed: Callable[[], None] = _ignore  # told when a feed is added, gone or changed
        ib.errorEvent += self._on_error
        ib.pnlEvent += self._on_update  # PnL objects have no event of their own
        ib.pnlSingleEvent += self._on_update

    # ------------------------------------------------------------------ subscribing

    def subscribe(self, spec: Spec, stale_after: float | None) -> Any:
        """Register ``spec``; request it now if a session is live. The object it fills."""
        contract = contract_of(spec)
        if contract is not None:
            _require_hashable(contract)
        self._numbers += 1
        handle = self.adapter.new_handle(spec)
        feed = Feed(self._numbers, spec, handle, stale_after)
        self.feeds.append(feed)
        listeners = self._by_handle.setdefault(id(handle), [])
        if not listeners and hasattr(handle, "updateEvent"):
            handle.updateEvent += self._on_update
        listeners.append(feed)
        if self.connection.is_connected:
            self._request(feed)
        self.changed()
        return handle

    async def subscribe_bars(self, spec: HistoricalBars, stale_after: float | None) -> BarDataList:
        """Register a keepUpToDate bar series; return once its first bars are in."""
        bars: BarDataList = self.subscribe(spec, stale_after)
        while not bars and self.feed_of(bars).state is not FeedState.CANCELLED:
            await self.feed_of(bars).extra.setdefault("first", asyncio.Event()).wait()
        return bars

    def cancel(self, handle: Any) -> None:
        """Stop every subscription that fills ``handle`` (at IB too); its events stay."""
        for feed in list(self._by_handle.pop(id(handle), [])):
            self._cancel_request(feed)
            feed.state = FeedState.CANCELLED
            self.feeds.remove(feed)
            _wake_first(feed)
        if hasattr(handle, "updateEvent"):
            handle.updateEvent -= self._on_update
        self.adapter.release(handle)
        self.changed()

    def feed_of(self, handle: Any) -> Feed:
        return self._by_handle[id(handle)][0]

    def replay(self, everything: bool) -> None:
        """Request every feed (after a reconnect), or the ones registered while down."""
        for feed in self.feeds:
            if everything or feed.state is FeedState.PENDING:
                self._request(feed)

    def session_lost(self) -> None:
        """The requests went with the session; the objects stay."""
        self._by_req.clear()
        for feed in self.feeds:
            feed.req_id = None
        self.cancel_tasks()

    # -------------------------------------------------------------------- requesting

    def resubscribe(self, feed: Feed) -> None:
        """Re-request ``feed`` alone: cancel (if it has a request), then request."""
        self._cancel_request(feed)
        feed.resubscribes += 1
        self._request(feed)

    def _request(self, feed: Feed) -> None:
        if feed.state not in (FeedState.DEAD, FeedState.COMPETING, FeedState.CANCELLED):
            feed.state = FeedState.STREAMING
        if isinstance(feed.spec, HistoricalBars):
            feed.requested(None, self._clock())  # asked now: silence counts from here
            self.spawn(self._fetch_bars(feed, feed.spec))
            return
        try:
            with in_lane(Lane.STREAMS):
                req_id = self.adapter.request(feed.spec, feed.handle)
        except ConnectionError:
            return  # the next session replays it
        self._bind(feed, req_id)

    async def _fetch_bars(self, feed: Feed, spec: HistoricalBars) -> None:
        held: BarDataList = feed.handle
        duration = spec.duration
        if held and feed.last_update > -math.inf:
            bar = bar_seconds(spec.bar_size) or 0.0
            duration, whole = gap_duration(self._clock() - feed.last_update, bar, spec.duration)
            if not whole:
                self._log.warning("{}: outage longer than {}: a gap stays before the replayed "
                                  "bars", feed_name(spec), spec.duration)  # fmt: skip
        try:
            with in_lane(Lane.STREAMS):
                fetched = await self.adapter.fetch_bars(spec, duration)
        except ConnectionError:
            return
        added, replaced = merge_bars(held, fetched)
        self._bind(feed, self.adapter.bind_bars(fetched, held))
        if fetched:
            feed.updated(self._clock())
        if added or replaced:
            held.updateEvent.emit(held, added > 0)
        _wake_first(feed)

    def _bind(self, feed: Feed, req_id: int) -> None:
        feed.requested(req_id, self._clock())
        self._by_req[req_id] = feed

    def _cancel_request(self, feed: Feed) -> None:
        if feed.req_id is not None:
            self._by_req.pop(feed.req_id, None)
            self.adapter.cancel(feed.spec, feed.handle, feed.req_id)
            feed.req_id = None

    # ---------------------------------------------------------------------- events

    def _on_update(self, handle: Any, *args: Any) -> None:
        now = self._clock()
        for feed in self._by_handle.get(id(handle), ()):
            if _brought_data(feed, handle):
                feed.updated(now)

    def _on_error(self, req_id: int, code: int, text: str, contract: Contract | None) -> None:
        feed = self._by_req.get(req_id)
        if feed is None:
            return
        response = response_to(code)
        if response is Response.NONE:
            return
        feed.last_error = f"{code}: {text}"
        if response is Response.RESUBSCRIBE:
            self._log.warning("{} {}: IB {} ({}); re-requested", feed.spec.kind,
                              feed_name(feed.spec), code, text)  # fmt: skip
            feed.failures += 1
            self.resubscribe(feed)
        elif response is Response.COMPETING:
            feed.state = FeedState.COMPETING
            if self.competing.seen(self._clock()):
                self._log.warning("IB {}: {} (a competing live session); streams wait for it",
                                  code, text)  # fmt: skip
        else:
            self._refused(feed, code, text)
        self.changed()

    def _refused(self, feed: Feed, code: int, text: str) -> None:
        if feed.state is not FeedState.REFUSED:
            self.refusals += 1
            self._log.warning("{} {} refused by IB {}: {}", feed.spec.kind, feed_name(feed.spec),
                              code, text)  # fmt: skip
        feed.state = FeedState.REFUSED
        _wake_first(feed)

    # ---------------------------------------------------------------------- tasks

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _ignore() -> None:
    pass


def _brought_data(feed: Feed, handle: Any) -> bool:
    """This update of ``handle`` carries data for ``feed`` (a Ticker is shared by a contract's
    market data and tick-by-tick feeds)."""
    kind = feed.spec.kind
    if kind is FeedKind.MARKET_DATA:
        return bool(handle.ticks)
    if kind is FeedKind.TICK_BY_TICK:
        return bool(handle.tickByTicks)
    return True


def _wake_first(feed: Feed) -> None:
    first = feed.extra.get("first")
    if first is not None:
        first.set()


def _require_hashable(contract: Contract) -> None:
    try:
        hash(contract)
    except ValueError:
        raise ValueError(
            f"contract {contract!r} has no conId: qualify it first (await "
            "manager.request(lambda ib: ib.qualifyContractsAsync(contract)))"
        ) from None
