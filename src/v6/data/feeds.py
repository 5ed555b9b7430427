"""What the registry knows of each subscription, and what to do about a silent one (pure).

A :class:`Feed` is one subscription the application made through the manager: what to request
(its :mod:`~v6.data.specs` spec), the object handed to the application (rebound, never
replaced), its state and its clock readings. :func:`judge` is the staleness policy, one pure
function of a feed and ``now``:

* a feed that has received nothing for ``stale_after`` seconds (counted from its last update, or
  from its last request if that is later) while it should stream is re-requested alone, up to
  ``max_resubscribes`` times in a row;
* then the manager reconnects once for it (a stale feed on a healthy socket may be a session TWS
  has half lost);
* still silent after that: the feed is reported dead and left alone (until data flows again, a
  later reconnect replays it, or the application cancels it);
* a feed refused for a competing live session (10197) is tried again only every
  ``competing_retry`` seconds: IB sends no notice when the other session ends.

Any update resets the episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Final

from v6.data.specs import Spec

#: A feed silent this long (seconds) is stale, unless told otherwise (None: never judged).
DEFAULT_STALE_AFTER: Final = 60.0
#: Re-requests of one stale feed before the manager reconnects for it.
DEFAULT_MAX_RESUBSCRIBES: Final = 3
#: How often a feed refused for a competing live session (10197) is tried again: Lean's 15 min.
DEFAULT_COMPETING_RETRY: Final = 900.0


class FeedState(StrEnum):
    PENDING = "pending"  # registered; requested once a session is live
    STREAMING = "streaming"  # requested, and updates arrive (or none is missing yet)
    RESUBSCRIBING = "resubscribing"  # found stale (or its stream failed): re-requested
    FARM_DOWN = "farm_down"  # its data farm is broken: re-requested when the farm is OK again
    REFUSED = "refused"  # IB refused it (101 max tickers, ...): tried again at the next replay
    COMPETING = "competing"  # 10197: another live session has the data
    DEAD = "dead"  # silent after its re-requests and a reconnect: reported, left alone
    CANCELLED = "cancelled"


#: States in which silence is a fault.
JUDGED: Final = frozenset({FeedState.STREAMING, FeedState.RESUBSCRIBING})


class FeedAction(Enum):
    NONE = "none"
    RESUBSCRIBE = "resubscribe"
    RECONNECT = "reconnect"
    GIVE_UP = "give_up"


@dataclass(eq=False)
class Feed:
    """One subscription (see the module docstring)."""

    number: int  # 1, 2, ... in registration order (replays keep it)
    spec: Spec
    handle: Any  # the application's object: Ticker, RealTimeBarList, BarDataList, PnL ...
    stale_after: float | None
    state: FeedState = FeedState.PENDING
    req_id: int | None = None  # the request id of the current session's request
    requested_at: float = -math.inf
    last_update: float = -math.inf
    resubscribes: int = 0  # re-requests since it was made (metrics)
    failures: int = 0  # re-requests in a row without an update
    reconnected: bool = False  # this silent episode already cost a reconnect
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the adapter's own bookkeeping

    def updated(self, now: float) -> None:
        """Data arrived: the feed streams, any silent episode is over."""
        self.last_update = now
        self.failures = 0
        self.reconnected = False
        if self.state is not FeedState.CANCELLED:
            self.state = FeedState.STREAMING

    def requested(self, req_id: int | None, now: float) -> None:
        self.req_id = req_id
        self.requested_at = now

    def silent_since(self) -> float:
        return max(self.last_update, self.requested_at)

    def due(self, competing_retry: float) -> float:
        """When :func:`judge` may next say something other than NONE (``math.inf``: never)."""
        if self.state is FeedState.COMPETING:
            return self.requested_at + competing_retry
        if self.stale_after is None or self.state not in JUDGED:
            return math.inf
        return self.silent_since() + self.stale_after


def judge(
    feed: Feed, now: float, *, max_resubscribes: int, competing_retry: float
) -> FeedAction:
    """What to do about ``feed`` at ``now`` (the module docstring's policy)."""
    if now < feed.due(competing_retry):
        return FeedAction.NONE
    if feed.state is FeedState.COMPETING:
        return FeedAction.RESUBSCRIBE
    if feed.failures < max_resubscribes:
        return FeedAction.RESUBSCRIBE
    if not feed.reconnected:
        return FeedAction.RECONNECT
    return FeedAction.GIVE_UP
