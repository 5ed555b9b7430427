"""Market simulation for the fake gateway: historical bars, tick streams and a base price.

Pure: no I/O, no clock (callers pass ``now``); the same request at the same time gives the same
bars, and a tick stream renders the quotes it is given (the broker's, which walk on a timer).
"""

from __future__ import annotations

import math
import re
import time
from typing import Final

from v6.protocol import codec
from v6.protocol.codec import TickType
from v6.testing.market_quotes import Quote

MAX_HISTORICAL_BARS: Final = 2000


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


def make_bars(
    request: codec.ReqHistoricalData, now: float, max_bars: int = MAX_HISTORICAL_BARS
) -> tuple[str, str, list[codec.Bar]]:
    """Deterministic bars covering ``request.duration`` up to ``now``: (start, end, bars)."""
    step = bar_seconds(request.bar_size)
    count = max(1, min(max_bars, duration_seconds(request.duration) // step))
    end = int(now) // step * step
    start = end - count * step
    level = base_price(request.contract.con_id, request.contract.symbol)
    bars = []
    for i in range(count):
        t = start + i * step
        wobble = ((t // step) % 20 - 10) * 0.05
        open_ = round(level + wobble, 2)
        close = round(open_ + 0.03, 2)
        bars.append(
            codec.Bar(
                date=_format_bar_time(t, step, request.format_date),
                open=open_,
                high=round(close + 0.05, 2),
                low=round(open_ - 0.05, 2),
                close=close,
                volume=100 + (t // step) % 7 * 10,
                wap=round((open_ + close) / 2, 3),
                bar_count=1 + (t // step) % 5,
            )
        )
    fmt = "%Y%m%d  %H:%M:%S"
    return time.strftime(fmt, time.gmtime(start)), time.strftime(fmt, time.gmtime(end)), bars


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
