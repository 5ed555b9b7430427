"""Live-data and contract-details messages: exact field layouts, decoded by ib_async's decoder
(ibapi's decoding is checked over sockets in tests/testing/gateway)."""

from __future__ import annotations

from typing import Any

import pytest
from ib_async.decoder import Decoder

from tests.protocol.test_messages import fields_of
from v6.protocol import data_messages as m
from v6.protocol.codec import Bar, ContractSpec
from v6.protocol.data_messages import ContractDetailsSpec, TickByTickType

BAR = Bar("20261124  11:08:15", 150.0, 150.5, 149.5, 150.25, 1200, 150.1, 7)


class Recorder:
    """An ib_async wrapper stand-in recording every callback."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def decode(data: bytes) -> tuple[str, tuple[Any, ...]]:
    recorder = Recorder()
    Decoder(recorder, 178).interpret(fields_of(data))  # type: ignore[arg-type]
    [call] = recorder.calls
    return call


def test_realtime_bar_has_11_fields() -> None:
    f = fields_of(m.realtime_bar(7, 1_795_518_495, BAR))
    assert f == ["50", "3", "7", "1795518495", "150.0", "150.5", "149.5", "150.25", "1200",
                 "150.1", "7"]  # fmt: skip
    assert decode(m.realtime_bar(7, 1_795_518_495, BAR)) == (
        "realtimeBar", (7, 1_795_518_495, 150.0, 150.5, 149.5, 150.25, 1200.0, 150.1, 7),
    )  # fmt: skip


def test_historical_data_update_has_10_fields_in_its_own_order() -> None:
    f = fields_of(m.historical_data_update(3, BAR))
    assert f == ["90", "3", "7", "20261124  11:08:15", "150.0", "150.25", "150.5", "149.5",
                 "150.1", "1200"]  # fmt: skip
    name, (req_id, bar) = decode(m.historical_data_update(3, BAR))
    assert (name, req_id) == ("historicalDataUpdate", 3)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.barCount) == (
        150.0, 150.5, 149.5, 150.25, 1200.0, 7,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "count", "callback"),
    [
        (
            m.tick_by_tick_last(1, TickByTickType.LAST, 5, 1.5, 100, "NASDAQ"),
            9,
            "tickByTickAllLast",
        ),
        (
            m.tick_by_tick_last(1, TickByTickType.ALL_LAST, 5, 1.5, 100, "ARCA"),
            9,
            "tickByTickAllLast",
        ),
        (m.tick_by_tick_bid_ask(1, 5, 1.5, 1.6, 100, 200), 9, "tickByTickBidAsk"),
        (m.tick_by_tick_mid_point(1, 5, 1.55), 5, "tickByTickMidPoint"),
        (m.pnl(1, 10.5, -2.0, 3.0), 5, "pnl"),
        (m.pnl_single(1, 100, 10.5, -2.0, 3.0, 15000.0), 7, "pnlSingle"),
        (m.contract_data_end(4), 3, "contractDetailsEnd"),
    ],
)
def test_live_data_layouts(data: bytes, count: int, callback: str) -> None:
    assert len(fields_of(data)) == count
    assert decode(data)[0] == callback


def test_contract_data_has_40_fields_with_the_hours() -> None:
    spec = ContractDetailsSpec(
        ContractSpec(265598, "AAPL", "STK", exchange="SMART", primary_exchange="NASDAQ",
                     currency="USD", local_symbol="AAPL", trading_class="NMS"),
        market_name="NMS", long_name="APPLE INC", time_zone_id="US/Eastern",
        trading_hours="20261124:0400-20261124:2000;20261128:CLOSED",
        liquid_hours="20261124:0930-20261124:1600;20261128:CLOSED", stock_type="COMMON",
    )  # fmt: skip
    assert len(fields_of(m.contract_data(9, spec))) == 40
    name, (req_id, details) = decode(m.contract_data(9, spec))
    assert (name, req_id) == ("contractDetails", 9)
    assert (details.contract.conId, details.contract.symbol) == (265598, "AAPL")
    assert details.contract.primaryExchange == "NASDAQ"
    assert (details.timeZoneId, details.longName, details.minTick) == (
        "US/Eastern", "APPLE INC", 0.01,
    )  # fmt: skip
    [liquid] = details.liquidSessions()
    assert (liquid.start.hour, liquid.start.minute, liquid.end.hour) == (9, 30, 16)
