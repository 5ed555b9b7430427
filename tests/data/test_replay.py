"""Subscriptions through ``manager.data`` over real sockets: the application's own object keeps
updating across reconnects and 1101, with exactly one live request at the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ib_async import Stock, Ticker

from tests.helpers import T, fast_settings, wait_until
from tests.orders.trading import reconnected
from v6.manager import IBConnectionManager
from v6.protocol.codec import ClientMessage
from v6.protocol.codes import ErrorCode
from v6.testing import FakeGateway

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
MSFT = Stock("MSFT", "SMART", "USD", conId=272093)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0, tick_rate=40) as gw:
        yield gw


async def ticks_after(ticker: Ticker, count: int = 3) -> None:
    """``count`` more updates reach the application's own Ticker."""
    seen: list[int] = []
    ticker.updateEvent += lambda t: seen.append(1)
    await wait_until(lambda: len(seen) >= count, timeout=40 * T)


async def test_the_same_ticker_streams_after_a_reconnect(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    ticker = manager.data.market_data(AAPL)
    other = manager.data.market_data(MSFT)
    await ticks_after(ticker)
    await gateway.drop_all()
    await reconnected(manager, 1)
    await ticks_after(ticker)  # the SAME object, its events still firing
    await ticks_after(other)
    assert gateway.market_data_subscriptions == 2  # one live request each, none doubled
    assert manager.ib.ticker(AAPL) is ticker  # ib_async's own table holds it again


async def test_a_subscription_made_while_down_streams_once_connected(
    gateway: FakeGateway,
) -> None:
    manager = IBConnectionManager(port=gateway.port, stale_after=None, **fast_settings())
    ticker = manager.data.market_data(AAPL)
    assert manager.data.feeds[0].state.value == "pending"
    await manager.start()
    await ticks_after(ticker)
    assert gateway.market_data_subscriptions == 1
    await manager.stop()


async def test_1101_re_requests_everything_and_1102_nothing(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    ticker = manager.data.market_data(AAPL)
    await ticks_after(ticker)
    asked = gateway.request_counts[ClientMessage.REQ_MKT_DATA]
    gateway.broadcast_error(ErrorCode.RESTORED_DATA_MAINTAINED)
    await ticks_after(ticker)
    assert gateway.request_counts[ClientMessage.REQ_MKT_DATA] == asked  # 1102: data kept
    gateway.broadcast_error(ErrorCode.RESTORED_DATA_LOST)
    await wait_until(lambda: gateway.request_counts[ClientMessage.REQ_MKT_DATA] == asked + 1)
    await ticks_after(ticker)
    assert gateway.market_data_subscriptions == 1  # cancelled, then asked again
    assert manager.data.feeds[0].resubscribes == 1


async def test_cancel_ends_it_at_the_gateway_and_it_is_not_replayed(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    ticker = manager.data.market_data(AAPL)
    await ticks_after(ticker)
    manager.data.cancel(ticker)
    await wait_until(lambda: gateway.market_data_subscriptions == 0)
    await gateway.drop_all()
    await reconnected(manager, 1)
    assert gateway.market_data_subscriptions == 0
    assert manager.data.feeds == ()


async def test_health_lists_each_subscription(manager: IBConnectionManager) -> None:
    ticker = manager.data.market_data(AAPL)
    await ticks_after(ticker)
    health = await manager.connection_health()
    [entry] = health["subscriptions"]
    assert entry["kind"] == "market_data"
    assert entry["contract"] == "AAPL (265598)"
    assert entry["state"] == "streaming"
    assert 0 <= entry["last_update_age_seconds"] < 1
    assert health["data"]["dead"] == 0


async def test_an_unqualified_contract_is_refused_with_a_clear_error(
    manager: IBConnectionManager,
) -> None:
    with pytest.raises(ValueError, match="qualify it first"):
        manager.data.market_data(Stock("AAPL", "SMART", "USD"))
