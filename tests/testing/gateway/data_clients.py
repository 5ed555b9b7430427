"""An ibapi client that also records the live-data callbacks (real-time bars, bar updates,
tick-by-tick, PnL, contract details), for the gateway's live-data tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.testing.helpers import IBApiClient


class IBApiDataClient(IBApiClient):
    """:class:`IBApiClient` plus the live-data and contract-details callbacks."""

    def realtimeBar(self, reqId: int, time: int, open_: float, high: float, low: float,
                    close: float, volume: Any, wap: Any, count: int) -> None:  # fmt: skip
        self._record("realtimeBar", reqId, time, open_, high, low, close, float(volume),
                     float(wap), count)  # fmt: skip

    def historicalDataUpdate(self, reqId: int, bar: Any) -> None:
        self._record("historicalDataUpdate", reqId, bar)

    def tickByTickAllLast(self, reqId: int, tickType: int, time: int, price: float, size: Any,
                          attrib: Any, exchange: str, specialConditions: str) -> None:  # fmt: skip
        self._record("tickByTickAllLast", reqId, tickType, time, price, float(size), exchange)

    def tickByTickBidAsk(self, reqId: int, time: int, bidPrice: float, askPrice: float,
                         bidSize: Any, askSize: Any, attrib: Any) -> None:  # fmt: skip
        self._record("tickByTickBidAsk", reqId, time, bidPrice, askPrice, float(bidSize),
                     float(askSize))  # fmt: skip

    def tickByTickMidPoint(self, reqId: int, time: int, midPoint: float) -> None:
        self._record("tickByTickMidPoint", reqId, time, midPoint)

    def pnl(self, reqId: int, dailyPnL: float, unrealizedPnL: float, realizedPnL: float) -> None:
        self._record("pnl", reqId, dailyPnL, unrealizedPnL, realizedPnL)

    def pnlSingle(self, reqId: int, pos: Any, dailyPnL: float, unrealizedPnL: float,
                  realizedPnL: float, value: float) -> None:  # fmt: skip
        self._record("pnlSingle", reqId, float(pos), dailyPnL, unrealizedPnL, realizedPnL, value)

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:
        self._record("contractDetails", reqId, contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:
        self._record("contractDetailsEnd", reqId)


@pytest.fixture
def ibapi_data_client() -> Iterator[Callable[[], IBApiDataClient]]:
    """Factory: ``ibapi_data_client()`` -> an :class:`IBApiDataClient`, stopped at teardown."""
    clients: list[IBApiDataClient] = []

    def factory() -> IBApiDataClient:
        client = IBApiDataClient()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.stop()
