"""What each message ib_async writes costs, read the way the fake gateway reads it (no socket:
ib_async's own request methods write into a list)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ib_async import IB, Stock

from v6.connection.lanes import Lane, in_lane
from v6.pacing.budget import Cost
from v6.pacing.ib_adapter import cost_of
from v6.protocol.framing import Message

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


def written(request: Callable[[Any], None]) -> Message:
    """The one message ``request(client)`` makes ib_async write."""
    ib = IB()
    client: Any = ib.client
    client.isConnected = lambda: True
    client._serverVersion = 178
    out: list[str] = []
    client.sendMsg = out.append
    try:
        request(client)
    finally:
        del client.isConnected  # ib_async's own again (IB.__del__ asks it)
    [msg] = out
    fields = msg.split("\0")
    return Message(int(fields[0]), tuple(fields[:-1]))


def price(request: Callable[[Any], None]) -> Cost:
    return cost_of(written(request), 178)


@pytest.mark.parametrize(
    ("request_", "lane"),
    [
        (lambda c: c.placeOrder(5, AAPL, __import__("ib_async").MarketOrder("BUY", 1)),
         Lane.URGENT),
        (lambda c: c.cancelOrder(5, ""), Lane.URGENT),
        (lambda c: c.reqCurrentTime(), Lane.URGENT),
        (lambda c: c.reqExecutions(3, __import__("ib_async").ExecutionFilter()), Lane.SYNC),
        (lambda c: c.reqOpenOrders(), Lane.SYNC),
        (lambda c: c.reqContractDetails(4, AAPL), Lane.BULK),
        (lambda c: c.reqAccountSummary(6, "All", "NetLiquidation"), Lane.STREAMS),
    ],
)  # fmt: skip
def test_lanes_by_message_id(request_: Callable[[Any], None], lane: Lane) -> None:
    assert price(request_).lane is lane


def test_a_historical_request_carries_what_ibs_rules_count() -> None:
    cost = price(lambda c: c.reqHistoricalData(
        9, AAPL, "", "1800 S", "5 secs", "BID_ASK", True, 1, False, []))  # fmt: skip
    assert (cost.lane, cost.req_id) == (Lane.BULK, 9)
    assert cost.historical is not None
    assert cost.historical.weight == 2
    assert cost.historical.same_contract_key == ("265598", "SMART", "BID_ASK")
    assert cost.historical.counts_as_identical()


def test_streams_hold_lines_and_cancels_end_them() -> None:
    assert price(lambda c: c.reqMktData(7, AAPL, "", False, False, [])) == Cost(
        Lane.STREAMS, 7, line=True
    )
    assert price(lambda c: c.reqMktData(8, AAPL, "", True, False, [])).line is False  # snapshot
    bars = price(lambda c: c.reqRealTimeBars(10, AAPL, 5, "TRADES", False, []))
    assert (bars.req_id, bars.realtime_bars) == (10, True)
    assert price(lambda c: c.reqTickByTickData(11, AAPL, "Last", 0, False)).line
    for cancel, req_id in [
        (lambda c: c.cancelMktData(7), 7), (lambda c: c.cancelHistoricalData(9), 9),
        (lambda c: c.cancelRealTimeBars(10), 10), (lambda c: c.cancelTickByTickData(11), 11),
        (lambda c: c.cancelPnL(12), 12), (lambda c: c.cancelPnLSingle(13), 13),
        (lambda c: c.cancelAccountSummary(6), 6),
    ]:  # fmt: skip
        assert price(cancel) == Cost(Lane.URGENT, ends=req_id)


def test_a_marked_lane_moves_a_request_but_never_demotes_an_urgent_one() -> None:
    with in_lane(Lane.STREAMS):
        assert price(lambda c: c.reqContractDetails(4, AAPL)).lane is Lane.STREAMS
        assert price(lambda c: c.cancelMktData(7)).lane is Lane.URGENT
