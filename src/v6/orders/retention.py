"""What the trading state may forget, and when: so that weeks of unattended trading do not grow
memory or the journal without bound.

* A delivered fill is kept (journal row, in-memory copy) for :data:`DEFAULT_FILL_RETENTION`
  after its execution time. TWS reports executions since midnight, or of up to seven days when
  its Trade Log is set so; a fill older than that can never be reported again, so forgetting it
  can never deliver it twice.
* A done order's Trade (Filled, Cancelled, Inactive ...) stays held, and re-bound at every
  reconnect, for :data:`DEFAULT_DONE_TRADE_RETENTION` after its last update: long enough for a
  commission report that missed a reconnect and for a same-day correction. Working and UNKNOWN
  orders are never forgotten.

The tracker prunes when it is made (the journal file as opened), then asks
:class:`PruneSchedule` each time it adds state (a fill, an order, a reconciliation): at most once
per :data:`DEFAULT_PRUNE_INTERVAL`. Times are UTC epoch seconds from an injected wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from v6.orders.journal import Journal
from v6.orders.registry import TradeRegistry

DAY = 86_400.0
DEFAULT_FILL_RETENTION = 8 * DAY
DEFAULT_DONE_TRADE_RETENTION = DAY
DEFAULT_PRUNE_INTERVAL = 3_600.0


class PruneSchedule:
    """When the next prune is due (``wall_clock``: UTC epoch seconds)."""

    def __init__(self, wall_clock: Callable[[], float]) -> None:
        self._wall_clock = wall_clock
        self._next = wall_clock() + DEFAULT_PRUNE_INTERVAL  # the maker prunes once at start

    def due(self) -> float | None:
        """The time now if a prune is due (the next one is then an interval away), else None."""
        now = self._wall_clock()
        if now < self._next:
            return None
        self._next = now + DEFAULT_PRUNE_INTERVAL
        return now


def forget_expired(
    now: float,
    registry: TradeRegistry,
    journal: Journal,
    corrections: dict[str, str],
    replaced: dict[str, Any],
) -> tuple[int, int]:
    """Forget done Trades and delivered fills past their retention, and the corrections whose
    correcting fill the journal forgot (``replaced``: corrected exec id -> its old Fill).
    Returns (Trades, fills) forgotten."""
    trades = registry.prune_done(datetime.fromtimestamp(now - DEFAULT_DONE_TRADE_RETENTION, UTC))
    fills = journal.prune(before=now - DEFAULT_FILL_RETENTION)
    for by, old in list(corrections.items()):
        if not journal.is_delivered(by):
            del corrections[by]
            replaced.pop(old, None)
    return trades, fills
