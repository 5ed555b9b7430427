"""Market simulation for the fake gateway: historical bars and a base price per contract.

Pure: no I/O, no clock (callers pass ``now``); a bar is a function of (contract, bar size, start
time), so the same request at the same time gives the same bars and a later request agrees with
the updates of a kept-up-to-date one. The live streams are in :mod:`.streams`.
"""

from __future__ import annotations

import time
from typing import Final

from v6.protocol import codec
from v6.protocol.pacing import bar_seconds, duration_seconds

MAX_HISTORICAL_BARS: Final = 2000


_DEFAULT_DURATION: Final = 30
_DEFAULT_BAR: Final = 5


def served_seconds(duration: str) -> int:
    """Seconds of bars served for an IB duration (``30 S``, ``1 D``, ...; 30 if TWS would not
    take it)."""
    seconds = duration_seconds(duration)
    return _DEFAULT_DURATION if seconds is None else int(seconds)


def bar_step(bar_size: str) -> int:
    """Whole seconds in an IB bar size (``5 secs``, ``1 min``, ``1 day``...; 5 if TWS would not
    take it)."""
    seconds = bar_seconds(bar_size)
    return _DEFAULT_BAR if seconds is None else int(seconds)


def _format_bar_time(epoch: int, step: int, format_date: int) -> str:
    if step >= 86_400:
        return time.strftime("%Y%m%d", time.gmtime(epoch))
    if format_date == 2:
        return str(epoch)
    return time.strftime("%Y%m%d  %H:%M:%S", time.gmtime(epoch))


def base_price(con_id: int, symbol: str) -> float:
    """A stable per-contract price level (100..199)."""
    seed = con_id or sum(symbol.encode())
    return 100.0 + seed % 100


def bar_at(t: int, step: int, level: float, format_date: int = 1) -> codec.Bar:
    """The bar of ``step`` seconds starting at epoch ``t`` for a contract at price ``level``: a
    pure function of its arguments, so every request (historical, kept up to date, real-time)
    sees the same bar for the same contract and time."""
    k = t // step
    open_ = round(level + (k % 20 - 10) * 0.05, 2)
    close = round(open_ + 0.03, 2)
    return codec.Bar(
        date=_format_bar_time(t, step, format_date),
        open=open_,
        high=round(close + 0.05, 2),
        low=round(open_ - 0.05, 2),
        close=close,
        volume=100 + k % 7 * 10,
        wap=round((open_ + close) / 2, 3),
        bar_count=1 + k % 5,
    )


def _span(request: codec.ReqHistoricalData, now: float, max_bars: int) -> tuple[int, int, int]:
    """(step, count, end) of the bars answering ``request`` at ``now``."""
    step = bar_step(request.bar_size)
    count = max(1, min(max_bars, served_seconds(request.duration) // step))
    return step, count, int(now) // step * step


def level_of(request: codec.ReqHistoricalData) -> float:
    return base_price(request.contract.con_id, request.contract.symbol)


_SPAN_TIME: Final = "%Y%m%d  %H:%M:%S"


def make_bars(
    request: codec.ReqHistoricalData, now: float, max_bars: int = MAX_HISTORICAL_BARS
) -> tuple[str, str, list[codec.Bar]]:
    """Deterministic bars covering ``request.duration`` up to ``now``: (start, end, bars)."""
    step, count, end = _span(request, now, max_bars)
    start = end - count * step
    level = level_of(request)
    bars = [bar_at(start + i * step, step, level, request.format_date) for i in range(count)]
    return (
        time.strftime(_SPAN_TIME, time.gmtime(start)),
        time.strftime(_SPAN_TIME, time.gmtime(end)),
        bars,
    )


def bar_so_far(t: int, step: int, level: float, now: float, format_date: int = 1) -> codec.Bar:
    """The bar starting at ``t`` as it stands at ``now``, while it is being built: it opens as
    the finished bar (:func:`bar_at`), its close moves toward the finished close and its volume
    grows with the time gone; a later request returns the finished bar."""
    final = bar_at(t, step, level, format_date)
    done = min(1.0, max(0.0, (now - t) / step))
    close = round(final.open + (final.close - final.open) * done, 2)
    top, bottom = max(final.open, close), min(final.open, close)
    return codec.Bar(
        date=final.date,
        open=final.open,
        high=round(top + (final.high - max(final.open, final.close)) * done, 2),
        low=round(bottom - (min(final.open, final.close) - final.low) * done, 2),
        close=close,
        volume=int(final.volume * done),
        wap=round((final.open + close) / 2, 3),
        bar_count=int(final.bar_count * done),
    )


def kept_up_to_date_reply(request: codec.ReqHistoricalData, now: float) -> bytes:
    """The historicalData reply to a ``keepUpToDate`` request at ``now``: the finished bars of
    the duration, the last of them the current bar as it stands (:func:`bar_so_far`)."""
    step = bar_step(request.bar_size)
    current = int(now) // step * step
    start, _, bars = make_bars(request, now)
    so_far = bar_so_far(current, step, level_of(request), now, request.format_date)
    end = time.strftime(_SPAN_TIME, time.gmtime(current + step))
    return codec.historical_data(request.req_id, start, end, [*bars[1:], so_far])


def _encode_bar(bar: codec.Bar) -> bytes:
    # the field order of codec.historical_data (tests compare the two byte for byte)
    return codec.encode_fields(bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume,
                               bar.wap, bar.bar_count)  # fmt: skip


class _Series:
    """The encoded bars of one request shape, ending at ``end``."""

    __slots__ = ("body", "encoded", "end")

    def __init__(self, end: int, encoded: list[bytes]) -> None:
        self.end = end
        self.encoded = encoded
        self.body = b"".join(encoded)


class HistoryCache:
    """historicalData replies made cheap to repeat (a client can ask for 100 KB of bars 45 times
    a second): the encoded bars of each request shape are kept, and when time has moved on only
    the new bars are encoded. Keeps the ``max_entries`` most recently used shapes. Pure."""

    def __init__(self, max_entries: int = 16, max_bars: int = MAX_HISTORICAL_BARS) -> None:
        self.max_entries = max_entries
        self.max_bars = max_bars
        self._series: dict[tuple[int, int, float, int], _Series] = {}

    def __len__(self) -> int:
        return len(self._series)

    def reply(self, request: codec.ReqHistoricalData, now: float) -> bytes:
        """The framed historicalData message answering ``request`` at ``now`` (the same bytes
        as ``codec.historical_data(req_id, *make_bars(request, now))``)."""
        step, count, end = _span(request, now, self.max_bars)
        key = (step, count, level_of(request), request.format_date)
        series = self._series.pop(key, None)  # re-inserted below: most recently used last
        if series is None or series.end != end:
            series = self._advance(series, key, end)
        self._series[key] = series
        while len(self._series) > self.max_entries:
            del self._series[next(iter(self._series))]
        start = end - count * step
        head = codec.encode_fields(codec.ServerMessage.HISTORICAL_DATA, request.req_id,
                                   time.strftime(_SPAN_TIME, time.gmtime(start)),
                                   time.strftime(_SPAN_TIME, time.gmtime(end)), count)  # fmt: skip
        return codec.frame_parts(head, series.body)

    @staticmethod
    def _advance(series: _Series | None, key: tuple[int, int, float, int], end: int) -> _Series:
        step, count, level, format_date = key
        kept: list[bytes] = []
        first_new = end - count * step
        if series is not None and series.end < end and (end - series.end) // step < count:
            shift = (end - series.end) // step
            kept = series.encoded[shift:]
            first_new = series.end
        times = range(first_new, end, step)
        new = [_encode_bar(bar_at(t, step, level, format_date)) for t in times]
        return _Series(end, kept + new)
