"""IB's pacing rules as the fake gateway enforces them: a layer of its own, above the raw message
pacing of each socket (:mod:`.intake`, error 100), and pure: every call takes ``now``.

The rules and their defaults are :class:`~v6.protocol.pacing.PacingLimits` (IB's published
limits; ``None`` turns one off; ``scale`` shortens every window but the one-second message
window). They count per login, across every client of the gateway, as IB does: two clients share
one historical budget. The windows are kept here, in plain deques, independently of the request
scheduler that obeys the same rules (:mod:`v6.pacing`), so that each checks the other.

What is open right now (historical requests waiting for their reply or kept up to date,
market-data lines) is not kept here: the gateway counts it from its clients' live requests and
passes the count in, so a client that goes away frees what it held.

========================================================  =====================================
refused when                                              answer (request id: the request's)
========================================================  =====================================
``open_historical`` historical requests are open           322 :data:`TEXT_OPEN_HISTORICAL_LIMIT`
the same request (bars <= 30 s) within the identical window 162 :data:`TEXT_HISTORICAL_PACING`
``same_contract`` requests for its contract + exchange +   162
tick type within 2 s
more than ``historical`` units in 10 min (BID_ASK: 2;      162
bars >= 1 min exempt)
more than ``realtime_bars`` new reqRealTimeBars in 10 min  420 :data:`TEXT_REALTIME_PACING`
``market_data_lines`` lines in use (reqMktData streaming,  101 :data:`TEXT_MAX_TICKERS`
reqRealTimeBars, reqTickByTickData)
========================================================  =====================================

A refused request is not served, not counted in any window and not open. Undocumented by IB, and
chosen here: a refused request does not count toward the windows either.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Final

from v6.protocol.codes import (
    TEXT_HISTORICAL_PACING,
    TEXT_MAX_TICKERS,
    TEXT_OPEN_HISTORICAL_LIMIT,
    TEXT_REALTIME_PACING,
    ErrorCode,
)
from v6.protocol.pacing import HistoricalQuery, PacingLimits


@dataclass(frozen=True, slots=True)
class PacingRefusal:
    """IB's answer to a request over one of its rules: the error to send, and which rule."""

    code: int
    text: str
    rule: str


OPEN_HISTORICAL: Final = PacingRefusal(
    ErrorCode.ACCOUNT_SUMMARY_LIMIT, TEXT_OPEN_HISTORICAL_LIMIT, "open_historical"
)
IDENTICAL: Final = PacingRefusal(
    ErrorCode.HISTORICAL_DATA_ERROR, TEXT_HISTORICAL_PACING, "identical"
)
SAME_CONTRACT: Final = PacingRefusal(
    ErrorCode.HISTORICAL_DATA_ERROR, TEXT_HISTORICAL_PACING, "same_contract"
)
HISTORICAL: Final = PacingRefusal(
    ErrorCode.HISTORICAL_DATA_ERROR, TEXT_HISTORICAL_PACING, "historical"
)
REALTIME_BARS: Final = PacingRefusal(
    ErrorCode.INVALID_REALTIME_QUERY, TEXT_REALTIME_PACING, "realtime_bars"
)
MARKET_DATA_LINES: Final = PacingRefusal(
    ErrorCode.MAX_TICKERS, TEXT_MAX_TICKERS, "market_data_lines"
)


def _expire(stamps: deque[float], now: float, window: float) -> None:
    while stamps and now - stamps[0] >= window:
        stamps.popleft()


class IbPacingRules:
    """IB's pacing rules for one login. ``limits=None``: every request passes and nothing is
    counted. :attr:`limits` may be replaced at any time; the windows keep what they hold.

    Each ``admit_*`` method decides one request: ``None`` if it passes (and it is counted), else
    the :class:`PacingRefusal` to answer it with (counted in :attr:`refusals`, by code).
    """

    def __init__(self, limits: PacingLimits | None = None) -> None:
        self.limits = limits
        self.refusals: Counter[int] = Counter()
        """Errors answered, by code (162, 322, 420, 101)."""
        self._identical: dict[HistoricalQuery, float] = {}
        self._same_contract: dict[tuple[str, str, str], deque[float]] = {}
        self._historical: deque[float] = deque()  # one stamp per unit (BID_ASK: two)
        self._realtime_bars: deque[float] = deque()

    def admit_historical(
        self, now: float, query: HistoricalQuery, open_requests: int
    ) -> PacingRefusal | None:
        """A reqHistoricalData, with ``open_requests`` historical requests open at the login."""
        limits = self.limits
        if limits is None:
            return None
        refusal = self._historical_refusal(limits, now, query, open_requests)
        if refusal is not None:
            return self._refuse(refusal)
        if limits.identical_window is not None and query.counts_as_identical():
            self._identical[query] = now
        if limits.same_contract is not None:
            self._same_contract.setdefault(query.same_contract_key, deque()).append(now)
        if limits.historical is not None and query.counts_toward_window():
            self._historical.extend([now] * query.weight)
        return None

    def admit_realtime_bars(self, now: float, lines_in_use: int) -> PacingRefusal | None:
        """A reqRealTimeBars, with ``lines_in_use`` market-data lines held at the login."""
        limits = self.limits
        if limits is None:
            return None
        cap = limits.realtime_bars
        if cap is not None:
            _expire(self._realtime_bars, now, limits.realtime_bars_window)
            if len(self._realtime_bars) >= cap:
                return self._refuse(REALTIME_BARS)
        refusal = self.admit_line(lines_in_use)
        if refusal is None and cap is not None:
            self._realtime_bars.append(now)
        return refusal

    def admit_line(self, lines_in_use: int) -> PacingRefusal | None:
        """A request that holds a market-data line until cancelled (streaming reqMktData,
        reqTickByTickData; reqRealTimeBars through :meth:`admit_realtime_bars`)."""
        cap = None if self.limits is None else self.limits.market_data_lines
        if cap is not None and lines_in_use >= cap:
            return self._refuse(MARKET_DATA_LINES)
        return None

    def used(self, now: float) -> dict[str, int]:
        """Units in each 10-minute window at ``now``."""
        limits = self.limits or PacingLimits()
        _expire(self._historical, now, limits.historical_window)
        _expire(self._realtime_bars, now, limits.realtime_bars_window)
        return {"historical": len(self._historical), "realtime_bars": len(self._realtime_bars)}

    # ---- internals

    def _refuse(self, refusal: PacingRefusal) -> PacingRefusal:
        self.refusals[refusal.code] += 1
        return refusal

    def _historical_refusal(
        self, limits: PacingLimits, now: float, query: HistoricalQuery, open_requests: int
    ) -> PacingRefusal | None:
        self._sweep(limits, now)
        if limits.open_historical is not None and open_requests >= limits.open_historical:
            return OPEN_HISTORICAL
        if query in self._identical and query.counts_as_identical():
            return IDENTICAL
        same = self._same_contract.get(query.same_contract_key, ())
        if limits.same_contract is not None and len(same) >= limits.same_contract:
            return SAME_CONTRACT
        if limits.historical is not None and query.counts_toward_window():
            _expire(self._historical, now, limits.historical_window)
            if len(self._historical) + query.weight > limits.historical:
                return HISTORICAL
        return None

    def _sweep(self, limits: PacingLimits, now: float) -> None:
        """Forget what fell out of the identical and same-contract windows."""
        window = limits.scaled_identical_window
        stale = [q for q, at in self._identical.items() if window is None or now - at >= window]
        for query in stale:
            del self._identical[query]
        for key, stamps in list(self._same_contract.items()):
            _expire(stamps, now, limits.same_contract_window)
            if not stamps:
                del self._same_contract[key]
