"""What each IB message about live data calls for (pure): a proportional response, never a
socket teardown for a data-level problem.

======================  =================================================================
IB says                  the registry
======================  =================================================================
2103 / 2105 farm broken  the farm's family (market data / historical) is marked down; its
                         silent feeds are not judged stale meanwhile (no churn)
2104 / 2106 farm OK      the feeds of that family silent since the break are re-requested
2157 / 2158 sec-def      nothing (no stream depends on it); health shows the farm
10182 live updates lost  that feed is re-requested at once (counted as a failure in a row)
101 max tickers          that feed is REFUSED: reported once, tried again at the next replay
10197 competing session  that feed is COMPETING: one episode per burst, reported once, tried
                         again only every ``competing_retry``
200 / 354 / 162 ...      that feed is REFUSED with IB's text (no security definition, not
                         subscribed, no data): reported, not retried in a loop
1101 data lost           every feed re-requested (cancel + request), in registration order
1102 data maintained     nothing
======================  =================================================================
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from v6.protocol.codes import ErrorCode

#: The farm families streams depend on (a sec-def farm serves look-ups, no stream).
STREAM_FAMILIES: Final = frozenset({"market_data", "historical_data"})
#: Errors for a request id that mean IB will not serve that request as asked.
REFUSALS: Final = frozenset({200, 354, 162, 10089, 10090, 10091, 10168, 10186, 10187, 322})
#: 10197s closer together than this are one episode.
COMPETING_BURST: Final = 15.0


class Response(Enum):
    NONE = "none"
    RESUBSCRIBE = "resubscribe"  # 10182
    REFUSED = "refused"  # 101, 200, 354, ...
    COMPETING = "competing"  # 10197


def response_to(code: int) -> Response:
    """What an error for one feed's request id calls for."""
    if code == ErrorCode.LIVE_UPDATES_FAILED:
        return Response.RESUBSCRIBE
    if code == ErrorCode.COMPETING_LIVE_SESSION:
        return Response.COMPETING
    if code == ErrorCode.MAX_TICKERS or code in REFUSALS:
        return Response.REFUSED
    return Response.NONE


class Episodes:
    """Counts bursts as one: an event closer than ``gap`` to the last one continues it."""

    def __init__(self, gap: float) -> None:
        self._gap = gap
        self._last = -float("inf")
        self.count = 0

    def seen(self, now: float) -> bool:
        """Count ``now``; True if it starts a new episode."""
        new = now - self._last >= self._gap
        self._last = now
        if new:
            self.count += 1
        return new
