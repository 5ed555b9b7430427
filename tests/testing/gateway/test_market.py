"""The market simulation: IB duration and bar-size parsing, deterministic bars, tick streams."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v6.protocol import codec
from v6.protocol.codec import TickType
from v6.testing.broker import Quote, QuoteBook
from v6.testing.gateway.market import HistoryCache, bar_step, make_bars, served_seconds
from v6.testing.gateway.streams import TickStream


@pytest.mark.parametrize(
    ("text", "seconds"), [("30 S", 30), ("1 D", 86_400), ("2 W", 1_209_600), ("garbage", 30)]
)
def test_served_seconds(text: str, seconds: int) -> None:
    assert served_seconds(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5 secs", 5), ("1 min", 60), ("15 mins", 900), ("1 hour", 3600), ("1 day", 86_400),
     ("0 secs", 5), ("x", 5)],
)  # fmt: skip
def test_bar_step(text: str, seconds: int) -> None:
    assert bar_step(text) == seconds


def _hist(duration: str, bar: str, format_date: int = 1) -> codec.ReqHistoricalData:
    return codec.ReqHistoricalData(
        1, codec.ContractSpec(symbol="X"), "", bar, duration, False, "TRADES", format_date
    )


def test_make_bars_is_deterministic_and_bounded() -> None:
    now = 1_795_518_499.0
    start, end, bars = make_bars(_hist("30 S", "5 secs"), now)
    assert len(bars) == 6
    assert (start, end) == ("20261124  11:07:45", "20261124  11:08:15")
    assert bars[0].date == "20261124  11:07:45"
    assert make_bars(_hist("30 S", "5 secs"), now) == (start, end, bars)
    assert len(make_bars(_hist("1 Y", "1 secs"), now, max_bars=50)[2]) == 50
    assert make_bars(_hist("30 S", "5 secs", format_date=2), now)[2][0].date == "1795518465"
    assert make_bars(_hist("2 D", "1 day"), now)[2][0].date == "20261122"


def _decode(data: bytes) -> list[codec.Message]:
    events = codec.ClientCodec()
    events.receive_data(codec.encode_server_hello(178, "now"))
    return [m for m in events.receive_data(data) if isinstance(m, codec.Message)]


def test_tick_stream_renders_price_and_size_pairs_deterministically() -> None:
    first, again = TickStream(7, 265598), TickStream(7, 265598)
    quote = Quote(150.00, 150.02)
    data = first.render(3, quote)
    assert data == again.render(3, quote)
    messages = _decode(data)
    assert [m.msg_id for m in messages] == [1, 2] * 3
    prices = {int(m.fields[3]): float(m.fields[4]) for m in messages if m.msg_id == 1}
    assert prices[TickType.BID] == 150.00
    assert prices[TickType.ASK] == 150.02
    assert first.seq == 3


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.lists(st.integers(1, 5), min_size=1, max_size=40))
def test_a_client_never_sees_bid_at_or_above_ask(seed: int, steps: list[int]) -> None:
    """The crossed-quote bug: the client's latest bid stays below its latest ask at every tick,
    whatever the walk does between renders."""
    book = QuoteBook(seed)
    stream = TickStream(1, 42)
    bid, ask = -math.inf, math.inf
    for updates in steps:
        book.step()
        for m in _decode(stream.render(updates, book.quote(42))):
            if m.msg_id == 1 and int(m.fields[3]) == TickType.BID:
                bid = float(m.fields[4])
            elif m.msg_id == 1 and int(m.fields[3]) == TickType.ASK:
                ask = float(m.fields[4])
            assert bid < ask


@pytest.mark.parametrize(
    ("duration", "bar", "format_date"),
    [("30 S", "5 secs", 1), ("1 Y", "1 secs", 1), ("2 D", "1 day", 1), ("1 D", "1 min", 2)],
)
def test_history_cache_gives_the_bytes_of_the_plain_encoder(
    duration: str, bar: str, format_date: int
) -> None:
    """Cached, slid forward by a few bars, jumped far ahead, even moved back: always the bytes
    codec.historical_data gives for make_bars' bars at that moment."""
    cache = HistoryCache(max_entries=2)
    request = _hist(duration, bar, format_date)
    for now in (1_795_518_499.0, 1_795_518_499.5, 1_795_518_501.0, 1_795_518_560.0,
                1_795_618_560.0, 1_795_518_400.0):  # fmt: skip
        request = dataclasses.replace(request, req_id=request.req_id + 1)
        expected = codec.historical_data(request.req_id, *make_bars(request, now))
        assert cache.reply(request, now) == expected


def test_history_cache_keeps_the_most_recently_used_shapes() -> None:
    cache = HistoryCache(max_entries=2)
    now = 1_795_518_499.0
    shapes = [_hist("30 S", "5 secs"), _hist("60 S", "5 secs"), _hist("90 S", "5 secs")]
    for request in shapes:
        cache.reply(request, now)
    assert len(cache) == 2
