"""Market simulation for the fake gateway: historical bars, tick streams and a base price.

Pure: no I/O, no clock (callers pass ``now``); the same request at the same time gives the same
bars, and a tick stream renders the quotes it is given (the broker's, which walk on a timer).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Final

from v6.protocol import codec
from v6.protocol.codec import TickType
from v6.testing.broker import Quote

MAX_HISTORICAL_BARS: Final = 2000
MAX_UPDATES_PER_WAKEUP: Final = 256
"""Most price updates one stream renders at once (after a stall or a slow client)."""


_SPAN_RE: Final = re.compile(r"\s*([0-9]{1,9})\s*([A-Za-z]+)\s*")  # ASCII digits only
_DURATION_UNITS: Final = {"S": 1, "D": 86_400, "W": 604_800, "M": 2_592_000, "Y": 31_536_000}
_BAR_UNITS: Final = {"sec": 1, "min": 60, "hour": 3_600, "day": 86_400, "week": 604_800,
                     "month": 2_592_000}  # fmt: skip
_DEFAULT_DURATION: Final = 30
_DEFAULT_BAR: Final = 5


def duration_seconds(duration: str) -> int:
    """Seconds in an IB duration string (``30 S``, ``1 D``, ``2 W``, ``1 M``, ``1 Y``)."""
    match = _SPAN_RE.fullmatch(duration)
    if match is None or match.group(2).upper() not in _DURATION_UNITS:
        return _DEFAULT_DURATION
    return int(match.group(1)) * _DURATION_UNITS[match.group(2).upper()]


def bar_seconds(bar_size: str) -> int:
    """Seconds in an IB bar size (``5 secs``, ``1 min``, ``1 hour``, ``1 day``, ...)."""
    match = _SPAN_RE.fullmatch(bar_size)
    if match is None:
        return _DEFAULT_BAR
    unit = match.group(2).lower().rstrip("s")
    if unit not in _BAR_UNITS or int(match.group(1)) <= 0:
        return _DEFAULT_BAR
    return int(match.group(1)) * _BAR_UNITS[unit]


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


def _bar(t: int, step: int, level: float, format_date: int) -> codec.Bar:
    """The bar starting at epoch ``t`` (a pure function of its arguments)."""
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
    step = bar_seconds(request.bar_size)
    count = max(1, min(max_bars, duration_seconds(request.duration) // step))
    return step, count, int(now) // step * step


def _level(request: codec.ReqHistoricalData) -> float:
    return base_price(request.contract.con_id, request.contract.symbol)


_SPAN_TIME: Final = "%Y%m%d  %H:%M:%S"


def make_bars(
    request: codec.ReqHistoricalData, now: float, max_bars: int = MAX_HISTORICAL_BARS
) -> tuple[str, str, list[codec.Bar]]:
    """Deterministic bars covering ``request.duration`` up to ``now``: (start, end, bars)."""
    step, count, end = _span(request, now, max_bars)
    start = end - count * step
    level = _level(request)
    bars = [_bar(start + i * step, step, level, request.format_date) for i in range(count)]
    return (
        time.strftime(_SPAN_TIME, time.gmtime(start)),
        time.strftime(_SPAN_TIME, time.gmtime(end)),
        bars,
    )


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
        key = (step, count, _level(request), request.format_date)
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
        new = [_encode_bar(_bar(t, step, level, format_date)) for t in range(first_new, end, step)]
        return _Series(end, kept + new)


class TickStream:
    """One market-data subscription: renders price updates (tickPrice + tickSize) cheaply from
    the broker's quote of :attr:`instrument`.

    Updates cycle bid, ask, last. The client's latest bid stays below its latest ask at every
    message: when the quote moved so that the due side would cross the other side the client
    holds, the other side is sent first.
    """

    __slots__ = ("carry", "instrument", "last_ask", "last_bid", "req_id", "seq", "volume")

    def __init__(self, req_id: int, instrument: int) -> None:
        self.req_id = req_id
        self.instrument = instrument
        self.seq = 0
        self.volume = 0
        self.carry = 0.0
        self.last_bid = -math.inf
        self.last_ask = math.inf

    def render(self, updates: int, quote: Quote) -> bytes:
        parts: list[bytes] = []
        req_id, bid, ask = self.req_id, quote.bid, quote.ask
        tick_price, tick_size = codec.tick_price, codec.tick_size
        seq, volume = self.seq, self.volume
        for _ in range(updates):
            seq += 1
            size = 100 * (1 + seq % 5)
            volume += size
            kind = seq % 3
            if kind == 0 and bid >= self.last_ask:
                kind = 1  # the new bid would cross the ask the client holds: move the ask first
            elif kind == 1 and ask <= self.last_bid:
                kind = 0
            if kind == 0:
                self.last_bid = price = bid
            elif kind == 1:
                self.last_ask = price = ask
            else:
                price = ask if seq % 2 else bid
            parts.append(tick_price(req_id, _PRICE_TYPES[kind], price, size))
            parts.append(tick_size(req_id, _VOLUME, volume))
        self.seq, self.volume = seq, volume
        return b"".join(parts)


_PRICE_TYPES: Final = (TickType.BID.value, TickType.ASK.value, TickType.LAST.value)
_VOLUME: Final = TickType.VOLUME.value


def render_due(
    streams: Iterable[TickStream], elapsed: float, rate: float, quote: Callable[[int], Quote]
) -> bytes:
    """Every stream's updates due after ``elapsed`` seconds at ``rate`` updates/s."""
    chunks = []
    for stream in list(streams):
        due = math.inf if math.isinf(rate) else stream.carry + elapsed * rate
        n = int(min(due, MAX_UPDATES_PER_WAKEUP))
        stream.carry = 0.0 if math.isinf(due) else min(due - n, 1.0)
        if n:
            chunks.append(stream.render(n, quote(stream.instrument)))
    return b"".join(chunks)
