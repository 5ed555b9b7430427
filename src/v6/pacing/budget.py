"""IB's pacing budget (pure): when may this request go, and what did it spend.

Every request is described by a :class:`Cost`: its :class:`Lane`, and what IB's rules
(:mod:`v6.protocol.pacing`) count of it. :meth:`Budget.earliest` says when it may go (``now``,
a later time, or ``math.inf`` while a concurrent cap is full); :meth:`Budget.spend` records it.
Nothing here sleeps or reads a clock: every call takes ``now``.

The message window is kept honestly. IB counts messages when they arrive, this budget when they
are sent, and a message that waits on its way (behind a burst the receiver is still reading)
stays in IB's window longer: so the window here is ``message_guard`` seconds longer than IB's
second (every other window ``window_guard`` seconds longer than IB's), and the STREAMS and BULK
lanes, which can saturate it, go in bursts of at most ``burst`` messages and are otherwise spread
evenly at the rate they may use (a token bucket): a large burst is
read by its receiver over several turns, so its last messages are counted late, and the next
window's first messages then meet them in IB's count (seen on the fake gateway with bursts of 25
and more). URGENT and SYNC go as bursts within the window (an order; a connect's start-up sync of
about ten messages).
``urgent_reserve`` messages of each window are kept for the URGENT lane, and ``bulk_reserve`` are
never BULK's (a backfill leaves room for a burst of orders), so an order goes out at
once even while a backfill saturates the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from v6.connection.lanes import Lane
from v6.pacing.windows import KeyedLogs, SlidingLog, TokenBucket
from v6.protocol.pacing import MESSAGE_WINDOW, HistoricalQuery, PacingLimits

#: Seconds added to IB's one-second message window (see the module docstring).
DEFAULT_MESSAGE_GUARD: Final = 0.02
#: Seconds added to IB's other windows (2 s, 15 s, 10 min: nothing to their throughput).
DEFAULT_WINDOW_GUARD: Final = 0.05
#: Messages of each window only the URGENT lane may use.
DEFAULT_URGENT_RESERVE: Final = 1
#: Messages of each window BULK leaves to the other lanes: a backfill that saturates what it
#: may use still leaves room for a burst of orders (IB allows 50; BULK takes at most 40).
DEFAULT_BULK_RESERVE: Final = 10
#: Messages STREAMS and BULK may send at once before they are spread evenly.
DEFAULT_BURST: Final = 20


@dataclass(frozen=True, slots=True)
class Cost:
    """What one message spends of IB's budget."""

    lane: Lane
    req_id: int | None = None
    historical: HistoricalQuery | None = None
    realtime_bars: bool = False
    line: bool = False  # holds a market-data line until cancelled (or the session ends)
    ends: int | None = None  # a cancel: the request id it ends


class Budget:
    """IB's windows and caps for one login (see the module docstring)."""

    def __init__(
        self,
        limits: PacingLimits,
        *,
        message_guard: float = DEFAULT_MESSAGE_GUARD,
        window_guard: float = DEFAULT_WINDOW_GUARD,
        urgent_reserve: int = DEFAULT_URGENT_RESERVE,
        bulk_reserve: int = DEFAULT_BULK_RESERVE,
        burst: int = DEFAULT_BURST,
    ) -> None:
        self.limits = limits
        rate = limits.messages_per_second
        seconds = MESSAGE_WINDOW + message_guard
        self._messages = None if rate is None else SlidingLog(rate, seconds)
        full = rate or 1  # (no rate: no message log, and these go unread)
        other = max(1, full - urgent_reserve)
        #: Messages each lane may have in the window (by lane: a tuple, read per message).
        self._limits = (full, other, other, max(1, min(other, full - bulk_reserve)))
        #: STREAMS and BULK: bursts of ``burst``, then spread at the rate they may use.
        self._spread = TokenBucket(min(burst, other), other / seconds)
        identical = limits.scaled_identical_window
        self._identical = (
            None if identical is None
            else KeyedLogs[HistoricalQuery](1, identical + window_guard)
        )  # fmt: skip
        guard = window_guard
        self._same_contract = _keyed(limits.same_contract, limits.same_contract_window + guard)
        self._historical = _log(limits.historical, limits.historical_window + guard)
        self._realtime_bars = _log(limits.realtime_bars, limits.realtime_bars_window + guard)
        self.open_historical: set[int] = set()  # request ids of open historical requests
        self.lines: set[int] = set()  # request ids holding a market-data line
        self.paused_until = -math.inf  # after an error 100: only URGENT goes until then

    # ------------------------------------------------------------------------ decide

    def earliest(self, cost: Cost, now: float) -> float:
        """When ``cost`` may be spent: ``now``, a later time, or ``math.inf`` (a concurrent cap
        is full: ask again when a request ends)."""
        at = self.message_slot(cost.lane, now)
        if cost.ends is not None or not (cost.historical or cost.realtime_bars or cost.line):
            return at  # a plain message, or a cancel: the message rate alone
        if cost.historical is not None:
            at = max(at, self._historical_slot(cost.historical, now))
        if cost.realtime_bars and self._realtime_bars is not None:
            at = max(at, self._realtime_bars.earliest(now))
        if (cost.line or cost.realtime_bars) and self._lines_full():
            return math.inf
        return at

    def message_slot(self, lane: Lane, now: float) -> float:
        """When a message of ``lane`` may go, by the message rate alone."""
        at = now if lane is Lane.URGENT else max(now, self.paused_until)
        if self._messages is None:
            return at
        limit = self._limits[lane]
        if lane >= Lane.STREAMS:
            at = max(at, self._spread.earliest(now))
        return max(at, self._messages.earliest(now, 1, limit))

    def take_message(self, lane: Lane, now: float) -> bool:
        """A message of URGENT or SYNC that spends the message rate alone: spent now (True)
        if :meth:`message_slot` is ``now`` (False: nothing spent). Its rule for these two
        lanes (no spread), checked and spent in one pass."""
        if lane is not Lane.URGENT and self.paused_until > now:
            return False
        return self._messages is None or self._messages.take(now, self._limits[lane])

    def _historical_slot(self, query: HistoricalQuery, now: float) -> float:
        cap = self.limits.open_historical
        if cap is not None and len(self.open_historical) >= cap:
            return math.inf
        at = now
        if self._identical is not None and query.counts_as_identical():
            at = max(at, self._identical.earliest(query, now))
        if self._same_contract is not None:
            at = max(at, self._same_contract.earliest(query.same_contract_key, now))
        if self._historical is not None and query.counts_toward_window():
            at = max(at, self._historical.earliest(now, query.weight))
        return at

    def _lines_full(self) -> bool:
        cap = self.limits.market_data_lines
        return cap is not None and len(self.lines) >= cap

    # ------------------------------------------------------------------------- spend

    def spend(self, cost: Cost, now: float) -> None:
        if self._messages is not None:
            self._messages.add(now)
            if cost.lane >= Lane.STREAMS:
                self._spread.take(now)
        if cost.ends is not None:
            self.ended(cost.ends)
        query = cost.historical
        if query is not None:
            self._spend_historical(query, cost.req_id, now)
        if cost.realtime_bars and self._realtime_bars is not None:
            self._realtime_bars.add(now)
        if (cost.line or cost.realtime_bars) and cost.req_id is not None:
            self.lines.add(cost.req_id)

    def _spend_historical(self, query: HistoricalQuery, req_id: int | None, now: float) -> None:
        if self._identical is not None and query.counts_as_identical():
            self._identical.add(query, now)
        if self._same_contract is not None:
            self._same_contract.add(query.same_contract_key, now)
        if self._historical is not None and query.counts_toward_window():
            self._historical.add(now, query.weight)
        if req_id is not None:
            self.open_historical.add(req_id)

    def ended(self, req_id: int) -> None:
        """A request ended (its data is complete, it failed, or it was cancelled)."""
        self.open_historical.discard(req_id)
        self.lines.discard(req_id)

    def session_ended(self) -> None:
        """The socket closed: every open request and line went with it (the windows did not:
        IB counts per login)."""
        self.open_historical.clear()
        self.lines.clear()

    def pause(self, until: float) -> None:
        """After an error 100: nothing but URGENT goes before ``until``."""
        self.paused_until = max(self.paused_until, until)

    # -------------------------------------------------------------------------- read

    def usage(self, now: float) -> dict[str, Any]:
        """What is spent now, per rule (for health and metrics)."""
        return {
            "messages_in_window": None if self._messages is None else self._messages.used(now),
            "historical_in_window": _used(self._historical, now),
            "realtime_bars_in_window": _used(self._realtime_bars, now),
            "open_historical": len(self.open_historical),
            "market_data_lines": len(self.lines),
        }


def _log(limit: int | None, window: float) -> SlidingLog | None:
    return None if limit is None else SlidingLog(limit, window)


def _keyed(limit: int | None, window: float) -> KeyedLogs[tuple[str, str, str]] | None:
    return None if limit is None else KeyedLogs(limit, window)


def _used(log: SlidingLog | None, now: float) -> int | None:
    return None if log is None else log.used(now)
