"""Live data, the participant (``manager.data``): subscriptions that replay onto the application's
own objects, stale feeds found, proportional responses to IB's data messages (issue 18).

The application subscribes through ``manager.data`` (:meth:`LiveData.market_data`,
:meth:`~LiveData.tick_by_tick`, :meth:`~LiveData.realtime_bars`,
:meth:`~LiveData.historical_bars`, :meth:`~LiveData.pnl`, :meth:`~LiveData.pnl_single`) and gets
ib_async's own object. Every subscription is requested again onto that SAME object after every
reconnect and after 1101 (not after 1102), in registration order, in the STREAMS lane of the
request scheduler; its events keep firing. :meth:`LiveData.cancel` ends one. What is requested
how is :mod:`~v6.data.registry`'s; what is stale and what to do is :mod:`~v6.data.feeds` and
:mod:`~v6.data.watch`'s; the responses to IB's messages are :mod:`~v6.data.responses`'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from ib_async import IB, BarDataList, Contract, PnL, PnLSingle, RealTimeBarList, Ticker

from v6.connection.lifecycle import ConnectionView, QuietParticipant
from v6.connection.system_messages import FarmStatus
from v6.data.feeds import (
    DEFAULT_COMPETING_RETRY,
    DEFAULT_MAX_RESUBSCRIBES,
    DEFAULT_STALE_AFTER,
    Feed,
    FeedState,
)
from v6.data.registry import FeedRegistry
from v6.data.responses import STREAM_FAMILIES
from v6.data.specs import (
    HistoricalBars,
    MarketData,
    PnLOf,
    PnLSingleOf,
    RealtimeBars,
    TickByTick,
    feed_name,
)
from v6.data.watch import FeedWatch
from v6.protocol.pacing import bar_seconds
from v6.validation import require_int, require_range

if TYPE_CHECKING:
    from loguru import Logger


class _ManagerDefault:
    """``stale_after`` left to the manager's default (a subscription may also say None)."""

    def __repr__(self) -> str:
        return "MANAGER_DEFAULT"


MANAGER_DEFAULT: Final = _ManagerDefault()
Stale = float | None | _ManagerDefault


class LiveData(QuietParticipant):
    """The subscriptions of one manager (see the module docstring)."""

    def __init__(
        self,
        ib: IB,
        *,
        connection: ConnectionView,
        reconnect: Callable[[str], None],
        log: Logger,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        stale_after: float | None = DEFAULT_STALE_AFTER,
        max_resubscribes: int = DEFAULT_MAX_RESUBSCRIBES,
        competing_retry: float = DEFAULT_COMPETING_RETRY,
    ) -> None:
        self.stale_after = _checked_stale(stale_after)
        require_int("max_resubscribes", max_resubscribes, low=0)
        require_range("competing_retry", competing_retry, low=0.0, low_open=True)
        self.registry = FeedRegistry(ib, connection=connection, log=log, clock=clock)
        self.watch = FeedWatch(
            self.registry, clock=clock, wall_clock=wall_clock, log=log,
            max_resubscribes=max_resubscribes, competing_retry=competing_retry,
            reconnect=reconnect,
        )  # fmt: skip
        self.registry.changed = self.watch.changed
        self._clock = clock
        self._log = log

    # ------------------------------------------------------------------ subscribing

    def market_data(
        self, contract: Contract, generic_ticks: str = "", *, stale_after: Stale = MANAGER_DEFAULT
    ) -> Ticker:
        """Stream ``contract``'s market data into the returned Ticker, kept across reconnects.
        ``contract`` needs its conId (qualify it first)."""
        spec = MarketData(contract, generic_ticks)
        handle: Ticker = self.registry.subscribe(spec, self._stale(stale_after))
        return handle

    def tick_by_tick(
        self,
        contract: Contract,
        tick_type: str = "Last",
        number_of_ticks: int = 0,
        ignore_size: bool = False,
        *,
        stale_after: Stale = MANAGER_DEFAULT,
    ) -> Ticker:
        """Tick-by-tick data (``Last``, ``AllLast``, ``BidAsk``, ``MidPoint``) into the returned
        Ticker's ``tickByTicks`` (the contract's one Ticker, shared with its market data)."""
        spec = TickByTick(contract, tick_type, number_of_ticks, ignore_size)
        handle: Ticker = self.registry.subscribe(spec, self._stale(stale_after))
        return handle

    def realtime_bars(
        self,
        contract: Contract,
        bar_size: int = 5,
        what_to_show: str = "TRADES",
        use_rth: bool = False,
        *,
        stale_after: Stale = MANAGER_DEFAULT,
    ) -> RealTimeBarList:
        """Five-second bars into the returned list, kept across reconnects."""
        spec = RealtimeBars(contract, bar_size, what_to_show, use_rth)
        handle: RealTimeBarList = self.registry.subscribe(spec, self._stale(stale_after))
        return handle

    async def historical_bars(
        self,
        contract: Contract,
        duration: str,
        bar_size: str,
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        *,
        stale_after: Stale = MANAGER_DEFAULT,
    ) -> BarDataList:
        """A keepUpToDate bar series, returned once its first bars are in (it waits for a
        connection). After an outage the bars it missed are merged in, in order. Judged stale
        after ``stale_after``, but never before two bars have passed (IB updates the forming
        bar as trades come, not on a clock)."""
        stale = self._stale(stale_after)
        bar = bar_seconds(bar_size)
        if stale is not None and bar is not None:
            stale = max(stale, 2 * bar)
        spec = HistoricalBars(contract, duration, bar_size, what_to_show, use_rth)
        return await self.registry.subscribe_bars(spec, stale)

    def pnl(self, account: str, model_code: str = "", *, stale_after: float | None = None) -> PnL:
        """The account's daily / unrealized / realized PnL, kept across reconnects (not judged
        stale unless asked: TWS sends PnL when it changes)."""
        handle: PnL = self.registry.subscribe(PnLOf(account, model_code), stale_after)
        return handle

    def pnl_single(
        self, account: str, model_code: str, con_id: int, *, stale_after: float | None = None
    ) -> PnLSingle:
        """One position's PnL, kept across reconnects."""
        spec = PnLSingleOf(account, model_code, con_id)
        handle: PnLSingle = self.registry.subscribe(spec, _checked_stale(stale_after))
        return handle

    def cancel(self, handle: Any) -> None:
        """Stop every subscription that fills ``handle`` (at IB too); its events stay alive."""
        self.registry.cancel(handle)

    @property
    def feeds(self) -> tuple[Feed, ...]:
        return tuple(self.registry.feeds)

    def _stale(self, stale_after: Stale) -> float | None:
        if isinstance(stale_after, _ManagerDefault):
            return self.stale_after
        return _checked_stale(stale_after)

    # ------------------------------------------------------------------ the lifecycle seam

    def live(self, reconnect: bool) -> None:
        """Replay every subscription after a reconnect; at the first connect, request the ones
        registered before it."""
        self.registry.replay(everything=reconnect)
        self.watch.start()

    def data_lost(self) -> None:
        """1101: what TWS was streaming is lost; ask again for everything, in order."""
        feeds = self.registry.feeds
        self._log.info("TWS lost its data (1101): re-requesting {} subscription(s)", len(feeds))
        for feed in list(feeds):
            self.registry.resubscribe(feed)

    def farm(self, status: FarmStatus) -> None:
        if status.kind in STREAM_FAMILIES:  # a sec-def farm serves look-ups, no stream
            self.watch.farm(status)

    def lost(self, reason: str) -> None:
        self.registry.session_lost()
        self.watch.stop()

    async def stopped(self) -> None:
        self.registry.cancel_tasks()
        self.watch.stop()

    def health(self) -> Mapping[str, Any]:
        """``subscriptions``: one entry per feed; ``data``: what IB refused or cut."""
        now, registry = self._clock(), self.registry
        return {
            "subscriptions": [_feed_health(feed, now) for feed in registry.feeds],
            "data": {
                "refusals": registry.refusals,
                "competing_sessions": registry.competing.count,
                "farm_flaps": registry.farm_flaps,
                "resubscribes": sum(feed.resubscribes for feed in registry.feeds),
                "dead": sum(feed.state is FeedState.DEAD for feed in registry.feeds),
            },
        }


def _checked_stale(value: float | None) -> float | None:
    if value is not None:
        require_range("stale_after", value, low=0.0, low_open=True)
    return value


def _feed_health(feed: Feed, now: float) -> dict[str, Any]:
    age = None if feed.last_update == -math.inf else round(now - feed.last_update, 6)
    return {
        "number": feed.number,
        "kind": feed.spec.kind.value,
        "contract": feed_name(feed.spec),
        "state": feed.state.value,
        "last_update_age_seconds": age,
        "resubscribes": feed.resubscribes,
        "last_error": feed.last_error,
    }
