"""Filling the hole an outage leaves in a keepUpToDate bar series (pure).

A replay asks for the bars since the series last heard from IB (its last update, by the
monotonic clock: no bar-date format or time zone to interpret), plus two bars of overlap, never
more than the series' own duration; :func:`merge_bars` appends what is newer than the last bar
held, in order, and replaces the last bar when IB has a newer version of it: no duplicate, no
hole, as far as IB returns the bars.

Where IB cannot fill a gap: an outage longer than the series' duration leaves a hole before the
bars the replay gets (logged); IB returns at most its per-request maximum of small bars; bars
outside regular trading hours are absent with ``use_rth=True`` by IB's design.
"""

from __future__ import annotations

import math
from collections.abc import MutableSequence, Sequence
from typing import Any, Final

from v6.protocol.pacing import duration_seconds

DAY: Final = 86_400
#: Bars of overlap asked for beyond the gap (the bar that was forming, and one for safety).
OVERLAP_BARS: Final = 2


def gap_duration(gap: float, bar: float, original: str) -> tuple[str, bool]:
    """The duration to ask for after ``gap`` seconds without updates, with bars of ``bar``
    seconds; and whether it covers the gap (False: the outage outlasted ``original``)."""
    wanted = gap + OVERLAP_BARS * bar
    limit = duration_seconds(original)
    if limit is not None and wanted > limit:
        return original, False
    if wanted <= DAY and bar < DAY:
        return f"{max(1, math.ceil(wanted))} S", True
    return f"{max(1, math.ceil(wanted / DAY))} D", True


def merge_bars(held: MutableSequence[Any], fresh: Sequence[Any]) -> tuple[int, bool]:
    """Merge ``fresh`` bars into ``held`` by bar date; (bars appended, last bar replaced)."""
    if not held:
        held.extend(fresh)
        return len(fresh), False
    added, replaced = 0, False
    last = held[-1].date
    for bar in fresh:
        if bar.date > last:
            held.append(bar)
            last = bar.date
            added += 1
        elif bar.date == last and bar != held[-1]:
            held[-1] = bar
            replaced = True
    return added, replaced
