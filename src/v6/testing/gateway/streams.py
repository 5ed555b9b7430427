"""The live requests of one client, as streams: what each sends and when (pure, no clock: callers
pass the time).

Every live request (reqMktData, reqRealTimeBars, reqTickByTickData, a historical request waiting
for its reply or kept up to date, reqPnL, reqPnLSingle) is one :class:`LiveStream`: its kind,
request id, contract, the farm that serves it, whether it flows, and how many updates it sent.
Two families:

* rate streams (:class:`TickStream`, :class:`TickByTickStream`) send ``tick_rate`` updates per
  second, rendered together by :func:`render_due`;
* timed streams (:class:`TimedStream` subclasses) send one message every interval of their own
  (:meth:`TimedStream.step`), reading what they need through a :class:`StreamFeed`.

A stream *flows* unless it was stopped for good (a farm break, 10182, 10197: only a new request
brings the data back, as at TWS) or a fault holds it for a while (:attr:`LiveStream.held_by`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import ClassVar, Final, Protocol

from v6.protocol import codec
from v6.protocol.codec import TickType
from v6.protocol.data_messages import (
    TickByTickType,
    historical_data_update,
    pnl,
    pnl_single,
    realtime_bar,
    tick_by_tick_bid_ask,
    tick_by_tick_last,
    tick_by_tick_mid_point,
)
from v6.testing.broker import Quote
from v6.testing.gateway.market import bar_at, bar_so_far, bar_step, level_of

MAX_UPDATES_PER_WAKEUP: Final = 256
"""Most price updates one stream renders at once (after a stall or a slow client)."""
REALTIME_BAR_SECONDS: Final = 5
"""The one bar size TWS serves to reqRealTimeBars."""
MARKET_DATA_FARM: Final = "usfarm"
"""The market-data farm every streaming contract is on (2103 / 2104 name it)."""
HISTORICAL_FARM: Final = "ushmds"
"""The historical-data (HMDS) farm (2105 / 2106 name it)."""


class StreamKind(StrEnum):
    """What a live request is."""

    MARKET_DATA = "market_data"
    REALTIME_BARS = "realtime_bars"
    TICK_BY_TICK = "tick_by_tick"
    HISTORICAL = "historical"
    """A historical request still open: waiting for its reply, or kept up to date."""
    PNL = "pnl"
    PNL_SINGLE = "pnl_single"


LINE_KINDS: Final = frozenset(
    {StreamKind.MARKET_DATA, StreamKind.REALTIME_BARS, StreamKind.TICK_BY_TICK}
)
"""Kinds that hold a market-data line until cancelled."""


class LiveStream:
    """What every live request has: identity, farm, whether it flows, updates sent."""

    __slots__ = ("finished", "held_by", "instrument", "req_id", "stopped", "updates")

    kind: ClassVar[StreamKind]
    farm: ClassVar[str | None] = MARKET_DATA_FARM

    def __init__(self, req_id: int, instrument: int) -> None:
        self.req_id = req_id
        self.instrument = instrument
        """The contract (its conId, or a stand-in: :func:`v6.testing.broker.instrument_id`)."""
        self.stopped = False
        """Stopped for good: only a new request brings the data back."""
        self.held_by: set[object] = set()
        """Keys of the faults holding it for now."""
        self.updates = 0
        """Messages this stream sent (a tickPrice + tickSize pair counts once)."""
        self.finished = False
        """Done (a historical reply sent): no longer live."""

    @property
    def key(self) -> tuple[StreamKind, int]:
        return (self.kind, self.req_id)

    @property
    def flowing(self) -> bool:
        return not self.stopped and not self.held_by


class StreamFeed(Protocol):
    """What timed streams read when they render (the gateway's market-data room)."""

    @property
    def realtime_bar_interval(self) -> float: ...

    @property
    def pnl_interval(self) -> float: ...

    def wall_clock(self) -> float: ...

    def quote(self, instrument: int) -> Quote: ...

    def history_reply(self, request: codec.ReqHistoricalData, now: float) -> bytes: ...

    def pnl(self, account: str) -> tuple[float, float, float]:
        """(daily, unrealized, realized) PnL of ``account``."""
        ...

    def pnl_single(self, account: str, con_id: int) -> tuple[float, float, float, float, float]:
        """(position, daily, unrealized, realized PnL, value) of one position."""
        ...


# ----------------------------------------------------------------------------- rate streams


class RateStream(LiveStream):
    """A stream of ``tick_rate`` updates per second (:func:`render_due`)."""

    __slots__ = ("carry",)

    def __init__(self, req_id: int, instrument: int) -> None:
        super().__init__(req_id, instrument)
        self.carry = 0.0

    def render(self, updates: int, quote: Quote) -> bytes:
        raise NotImplementedError


class TickStream(RateStream):
    """One market-data subscription: renders price updates (tickPrice + tickSize) cheaply from
    the broker's quote of :attr:`instrument`.

    Updates cycle bid, ask, last. The client's latest bid stays below its latest ask at every
    message: when the quote moved so that the due side would cross the other side the client
    holds, the other side is sent first.
    """

    __slots__ = ("last_ask", "last_bid", "seq", "volume")

    kind = StreamKind.MARKET_DATA

    def __init__(self, req_id: int, instrument: int) -> None:
        super().__init__(req_id, instrument)
        self.seq = 0
        self.volume = 0
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
    streams: Iterable[LiveStream], elapsed: float, rate: float, quote: Callable[[int], Quote]
) -> bytes:
    """Every flowing rate stream's updates due after ``elapsed`` seconds at ``rate`` updates/s
    (other streams are skipped)."""
    chunks = []
    for stream in list(streams):
        if not isinstance(stream, RateStream):
            continue
        if not stream.flowing:
            stream.carry = 0.0
            continue
        due = math.inf if math.isinf(rate) else stream.carry + elapsed * rate
        n = int(min(due, MAX_UPDATES_PER_WAKEUP))
        stream.carry = 0.0 if math.isinf(due) else min(due - n, 1.0)
        if n:
            chunks.append(stream.render(n, quote(stream.instrument)))
            stream.updates += n
    return b"".join(chunks)


_EXCHANGES: Final = ("NASDAQ", "ARCA", "IEX")
"""Where tick-by-tick trades print (AllLast rotates through them; Last keeps the first)."""


class TickByTickStream(RateStream):
    """reqTickByTickData: one tick per update from the quote of :attr:`instrument` (Last /
    AllLast: a trade at the bid or the ask; BidAsk: the quote; MidPoint: its middle), stamped
    with the wall clock."""

    __slots__ = ("clock", "seq", "tick_type")

    kind = StreamKind.TICK_BY_TICK

    def __init__(
        self, req_id: int, instrument: int, tick_type: TickByTickType, clock: Callable[[], float]
    ) -> None:
        super().__init__(req_id, instrument)
        self.tick_type = tick_type
        self.clock = clock
        self.seq = 0

    def render(self, updates: int, quote: Quote) -> bytes:
        epoch = int(self.clock())
        parts = []
        for _ in range(updates):
            self.seq += 1
            parts.append(self._tick(epoch, quote, 100 * (1 + self.seq % 5)))
        return b"".join(parts)

    def _tick(self, epoch: int, quote: Quote, size: int) -> bytes:
        req_id, kind = self.req_id, self.tick_type
        if kind is TickByTickType.BID_ASK:
            return tick_by_tick_bid_ask(req_id, epoch, quote.bid, quote.ask, size, 2 * size)
        if kind is TickByTickType.MID_POINT:
            return tick_by_tick_mid_point(req_id, epoch, round(quote.mid, 4))
        price = quote.ask if self.seq % 2 else quote.bid
        exchange = _EXCHANGES[self.seq % len(_EXCHANGES) if kind is TickByTickType.ALL_LAST else 0]
        return tick_by_tick_last(req_id, kind, epoch, price, size, exchange)


# ---------------------------------------------------------------------------- timed streams


class TimedStream(LiveStream):
    """A stream that sends one message every interval of its own: :meth:`step` renders it at
    its due time (``next_due``, on the gateway's monotonic clock)."""

    __slots__ = ("next_due",)

    def __init__(self, req_id: int, instrument: int, first_due: float) -> None:
        super().__init__(req_id, instrument)
        self.next_due = first_due

    def step(self, feed: StreamFeed) -> tuple[bytes, float | None]:
        """The message due now, and the seconds until the next one (``None``: finished)."""
        raise NotImplementedError


class RealTimeBarStream(TimedStream):
    """reqRealTimeBars: one 5-second bar every ``realtime_bar_interval``. A bar's time is the
    wall clock's 5-second boundary, at least 5 s after the previous bar's (so with a shorter
    interval than 5 s the bars run ahead of the clock, never repeat a time)."""

    __slots__ = ("last_time", "level")

    kind = StreamKind.REALTIME_BARS

    def __init__(self, req_id: int, instrument: int, level: float, first_due: float) -> None:
        super().__init__(req_id, instrument, first_due)
        self.level = level
        self.last_time = -math.inf

    def step(self, feed: StreamFeed) -> tuple[bytes, float | None]:
        boundary = int(feed.wall_clock()) // REALTIME_BAR_SECONDS * REALTIME_BAR_SECONDS
        start = int(max(boundary, self.last_time + REALTIME_BAR_SECONDS))
        self.last_time = start
        bar = bar_at(start, REALTIME_BAR_SECONDS, self.level)
        return realtime_bar(self.req_id, start, bar), feed.realtime_bar_interval


class HistoricalStream(TimedStream):
    """A historical request while it is open: its reply, due after the gateway's
    ``historical_latency``; then, if it is kept up to date, its current bar as it stands
    (:func:`~.market.bar_so_far`; finished, it is the bar a later request returns for that time)
    every ``realtime_bar_interval`` until cancelled."""

    __slots__ = ("replied", "request")

    kind = StreamKind.HISTORICAL
    farm = HISTORICAL_FARM

    def __init__(self, request: codec.ReqHistoricalData, instrument: int, first_due: float) -> None:
        super().__init__(request.req_id, instrument, first_due)
        self.request = request
        self.replied = False

    def step(self, feed: StreamFeed) -> tuple[bytes, float | None]:
        request, now = self.request, feed.wall_clock()
        keep = feed.realtime_bar_interval if request.keep_up_to_date else None
        if not self.replied:
            self.replied = True
            return feed.history_reply(request, now), keep
        step = bar_step(request.bar_size)
        start = int(now) // step * step
        bar = bar_so_far(start, step, level_of(request), now, request.format_date)
        return historical_data_update(request.req_id, bar), keep


class PnlStream(TimedStream):
    """reqPnL: the account's daily, unrealized and realized PnL every ``pnl_interval``."""

    __slots__ = ("account",)

    kind = StreamKind.PNL
    farm = None

    def __init__(self, req_id: int, account: str, first_due: float) -> None:
        super().__init__(req_id, 0, first_due)
        self.account = account

    def step(self, feed: StreamFeed) -> tuple[bytes, float | None]:
        return pnl(self.req_id, *feed.pnl(self.account)), feed.pnl_interval


class PnlSingleStream(TimedStream):
    """reqPnLSingle: one position's size, PnL and value every ``pnl_interval``."""

    __slots__ = ("account",)

    kind = StreamKind.PNL_SINGLE
    farm = None

    def __init__(self, req_id: int, account: str, con_id: int, first_due: float) -> None:
        super().__init__(req_id, con_id, first_due)
        self.account = account

    def step(self, feed: StreamFeed) -> tuple[bytes, float | None]:
        figures = feed.pnl_single(self.account, self.instrument)
        return pnl_single(self.req_id, *figures), feed.pnl_interval
