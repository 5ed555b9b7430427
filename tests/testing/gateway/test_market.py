"""The market simulation: IB duration and bar-size parsing, deterministic bars, tick streams."""

from __future__ import annotations

import pytest

from v6.protocol import codec
from v6.testing.gateway.market import TickStream, bar_seconds, duration_seconds, make_bars


@pytest.mark.parametrize(
    ("text", "seconds"), [("30 S", 30), ("1 D", 86_400), ("2 W", 1_209_600), ("garbage", 30)]
)
def test_duration_seconds(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5 secs", 5), ("1 min", 60), ("15 mins", 900), ("1 hour", 3600), ("1 day", 86_400),
     ("0 secs", 5), ("x", 5)],
)  # fmt: skip
def test_bar_seconds(text: str, seconds: int) -> None:
    assert bar_seconds(text) == seconds


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


def test_tick_stream_renders_price_and_size_pairs_deterministically() -> None:
    first, again = TickStream(7, 150.0), TickStream(7, 150.0)
    data = first.render(3)
    assert data == again.render(3)
    events = codec.ClientCodec()
    events.receive_data(codec.encode_server_hello(178, "now"))
    messages = events.receive_data(data)
    assert [m.msg_id for m in messages if isinstance(m, codec.Message)] == [1, 2] * 3
    assert first.seq == 3
