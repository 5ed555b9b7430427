"""An unmodified ib_async client against the fake gateway, over real sockets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
from ib_async import IB, Contract, Forex, Stock

from tests.testing.helpers import RawClient, wait_until
from v6.protocol.codec import ClientMessage, ServerMessage
from v6.testing import (
    STARTUP_SYNC_REQUESTS,
    AccountState,
    AccountValue,
    FakeGateway,
    Position,
)

MakeGateway = Callable[..., Awaitable[FakeGateway]]

TWO_ACCOUNTS = AccountState(
    accounts=("DU111", "DU222"),
    positions=(
        Position("DU111", "AAPL", 100, 150.0, market_price=151.0, con_id=265598),
        Position("DU222", "MSFT", -5, 400.0, con_id=272093),
    ),
    values={"DU222": (AccountValue("NetLiquidation", "2500.00"),)},
)


async def connect(ib: IB, port: int, client_id: int = 1, timeout: float = 2.0) -> IB:
    return await ib.connectAsync(
        "127.0.0.1", port, clientId=client_id, timeout=timeout, raiseSyncErrors=True
    )


async def test_connect_async_completes_the_whole_sync_without_timeouts(
    fake_gateway: FakeGateway, ib_client: Callable[[], IB], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ib_async")
    ib = ib_client()
    started = time.monotonic()
    await connect(ib, fake_gateway.port)
    assert time.monotonic() - started < 1.0
    assert ib.isConnected()
    assert ib.managedAccounts() == ["DU1234567"]
    assert "Synchronization complete" in caplog.text
    assert "timed out" not in caplog.text
    counts = fake_gateway.request_counts
    assert counts[ClientMessage.START_API] == 1
    for msg_id in STARTUP_SYNC_REQUESTS:
        assert counts[msg_id] == 1, ClientMessage(msg_id).name
    assert fake_gateway.client_ids == {1}


async def test_single_account_values_and_portfolio_come_from_account_state(
    make_gateway: MakeGateway, ib_client: Callable[[], IB]
) -> None:
    state = AccountState(
        accounts=("DU999",),
        positions=(Position("DU999", "AAPL", 10, 150.0, market_price=160.0, con_id=265598),),
    )
    gw = await make_gateway(account_state=state)
    ib = ib_client()
    await connect(ib, gw.port)
    values = {(v.tag, v.currency): v.value for v in ib.accountValues("DU999") if not v.modelCode}
    assert values[("NetLiquidation", "USD")] == "100000.00"
    [item] = ib.portfolio("DU999")
    assert item.contract.symbol == "AAPL"
    assert item.position == 10
    assert item.marketPrice == 160.0
    assert item.marketValue == 1600.0
    assert item.unrealizedPNL == 100.0
    [pos] = ib.positions()
    assert (pos.account, pos.contract.conId, pos.position, pos.avgCost) == (
        "DU999", 265598, 10.0, 150.0,
    )  # fmt: skip


async def test_several_accounts_positions_and_multi_account_values(
    make_gateway: MakeGateway, ib_client: Callable[[], IB]
) -> None:
    gw = await make_gateway(account_state=TWO_ACCOUNTS)
    ib = ib_client()
    await connect(ib, gw.port)
    assert ib.managedAccounts() == ["DU111", "DU222"]
    positions = {(p.account, p.contract.symbol): p.position for p in ib.positions()}
    assert positions == {("DU111", "AAPL"): 100.0, ("DU222", "MSFT"): -5.0}
    net = {v.account: v.value for v in ib.accountValues() if v.tag == "NetLiquidation"}
    assert net == {"DU111": "100000.00", "DU222": "2500.00"}
    # two accounts: ib_async uses reqAccountUpdatesMulti per account, no reqAccountUpdates
    counts = gw.request_counts
    assert counts[ClientMessage.REQ_ACCOUNT_UPDATES_MULTI] == 2
    assert counts[ClientMessage.REQ_ACCOUNT_UPDATES] == 0


async def test_current_time(fake_gateway: FakeGateway, ib_client: Callable[[], IB]) -> None:
    ib = ib_client()
    await connect(ib, fake_gateway.port)
    now = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 1)
    assert abs(now.timestamp() - time.time()) < 5


async def test_account_summary_is_a_subscription(
    make_gateway: MakeGateway, ib_client: Callable[[], IB]
) -> None:
    gw = await make_gateway(account_state=TWO_ACCOUNTS)
    ib = ib_client()
    await connect(ib, gw.port)
    summary = await asyncio.wait_for(ib.accountSummaryAsync(), 1)
    net = {v.account: v.value for v in summary if v.tag == "NetLiquidation"}
    assert net == {"DU111": "100000.00", "DU222": "2500.00"}
    assert gw.active_account_summaries == 1  # ib_async never cancels it


async def test_historical_bars_satisfy_the_watchdog_probe(
    fake_gateway: FakeGateway, ib_client: Callable[[], IB]
) -> None:
    ib = ib_client()
    await connect(ib, fake_gateway.port)
    # exactly the request ib_async's Watchdog sends as its probe
    bars = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(Forex("EURUSD"), "", "30 S", "5 secs", "MIDPOINT", False), 1
    )
    assert len(bars) == 6
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
    assert [b.date for b in bars] == sorted(b.date for b in bars)
    daily = await ib.reqHistoricalDataAsync(
        Stock("AAPL", "SMART", "USD"), "", "5 D", "1 day", "TRADES", True
    )
    assert len(daily) == 5


async def test_tick_stream_at_the_configured_rate_and_cancel(
    make_gateway: MakeGateway, ib_client: Callable[[], IB]
) -> None:
    rate = 50.0
    gw = await make_gateway(tick_rate=rate)
    ib = ib_client()
    await connect(ib, gw.port)
    contract = Contract(conId=265598, symbol="AAPL", secType="STK", exchange="SMART",
                        currency="USD")  # fmt: skip
    ticker = ib.reqMktData(contract)
    await wait_until(lambda: ticker.last == ticker.last and ticker.bid > 0, what="first ticks")
    before = ib.client.connectionStats().numMsgRecv
    window = 0.4
    await asyncio.sleep(window)
    received = ib.client.connectionStats().numMsgRecv - before
    expected = 2 * rate * window  # each update is a tickPrice and a tickSize
    assert 0.5 * expected <= received <= 1.5 * expected, received
    assert ticker.volume > 0
    assert gw.market_data_subscriptions == 1

    ib.cancelMktData(contract)
    await wait_until(lambda: gw.market_data_subscriptions == 0, what="cancel")
    await asyncio.sleep(0.05)
    settled = ib.client.connectionStats().numMsgRecv
    await asyncio.sleep(0.1)
    assert ib.client.connectionStats().numMsgRecv == settled


async def test_duplicate_client_id_gets_326_and_is_closed_until_the_holder_leaves(
    fake_gateway: FakeGateway,
    ib_client: Callable[[], IB],
    raw_client: Callable[[int], Awaitable[RawClient]],
) -> None:
    first = ib_client()
    await connect(first, fake_gateway.port, client_id=7)

    raw = await raw_client(fake_gateway.port)
    await raw.handshake(client_id=7)
    messages = await raw.messages()
    assert [m.fields for m in messages] == [
        ("4", "2", "-1", "326",
         "Unable to connect as the client id is already in use. Retry with a unique client id.",
         ""),
    ]  # fmt: skip
    assert await raw.closed_by_peer()

    second = ib_client()
    errors: list[int] = []
    second.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    with pytest.raises(TimeoutError):
        await connect(second, fake_gateway.port, client_id=7, timeout=0.3)
    assert errors == [326]
    assert fake_gateway.client_ids == {7}

    first.disconnect()
    await wait_until(lambda: not fake_gateway.client_ids, what="id released")
    third = ib_client()
    await connect(third, fake_gateway.port, client_id=7)
    assert fake_gateway.client_ids == {7}


async def test_many_clients_at_once(fake_gateway: FakeGateway, ib_client: Callable[[], IB]) -> None:
    clients = [ib_client() for _ in range(8)]
    await asyncio.gather(*(connect(ib, fake_gateway.port, i) for i, ib in enumerate(clients)))
    assert fake_gateway.client_ids == set(range(8))
    times = await asyncio.gather(*(ib.reqCurrentTimeAsync() for ib in clients))
    assert len(times) == 8


async def test_managed_accounts_and_req_ids_on_request(
    make_gateway: MakeGateway, raw_client: Callable[[int], Awaitable[RawClient]]
) -> None:
    gw = await make_gateway(accounts=["DU1", "DU2"], next_order_id=42)
    raw = await raw_client(gw.port)
    startup = await raw.ready()
    assert startup[0].fields == ("15", "1", "DU1,DU2")
    assert startup[1].fields == ("9", "1", "42")
    assert [m.fields[3] for m in startup[2:]] == ["2104", "2106", "2158"]
    raw.send(ClientMessage.REQ_MANAGED_ACCTS, 1)
    raw.send(ClientMessage.REQ_IDS, 1, 1)
    replies = await raw.messages()
    assert [m.fields for m in replies] == [("15", "1", "DU1,DU2"), ("9", "1", "42")]
    assert replies[0].msg_id == ServerMessage.MANAGED_ACCTS
