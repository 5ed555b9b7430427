"""The request scheduler over real sockets: every request through ``manager.ib`` passes it, in
lanes, and the gateway's own message pacing (error 100) is never tripped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ib_async import Stock

from tests.helpers import T, fast_settings, wait_until
from tests.orders.trading import AAPL_ID, App
from v6.manager import IBConnectionManager
from v6.protocol.codec import ClientMessage
from v6.protocol.pacing import PacingLimits
from v6.testing import FakeGateway

RATE = 100  # messages per second, at both ends: the default 50 would make these tests slow
AAPL = Stock("AAPL", "SMART", "USD", conId=AAPL_ID)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0, pacing_limit=RATE, market_interval=None) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        yield gw


@pytest.fixture
async def manager(gateway: FakeGateway) -> AsyncIterator[IBConnectionManager]:
    made = IBConnectionManager(
        port=gateway.port, pacing=PacingLimits(messages_per_second=RATE), **fast_settings()
    )
    made.ib.errorEvent += lambda req_id, code, *rest: made.__dict__.setdefault(
        "errors", []
    ).append(code)
    await made.start()
    await made.wait_connected(timeout=40 * T)
    yield made
    await made.stop()


def errors(manager: IBConnectionManager) -> list[int]:
    found: list[int] = manager.__dict__.get("errors", [])
    return found


def snapshots(manager: IBConnectionManager, count: int) -> None:
    for _ in range(count):
        manager.ib.reqMktData(AAPL, snapshot=True)


async def test_a_burst_through_the_manager_trips_no_error_100(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    asked = gateway.request_counts[ClientMessage.REQ_MKT_DATA]
    snapshots(manager, 2 * RATE)
    health = await manager.connection_health()
    assert health["pacing"]["queued"]["streams"] > RATE / 2  # held back, not sent to be refused
    await wait_until(
        lambda: gateway.request_counts[ClientMessage.REQ_MKT_DATA] == asked + 2 * RATE,
        timeout=100 * T,
    )
    assert 100 not in errors(manager)
    assert gateway.frames_dropped == 0
    assert manager.state.value == "connected"


async def test_an_order_goes_out_at_once_behind_a_saturated_lane(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    app = App(manager)
    snapshots(manager, 2 * RATE)  # a second of STREAMS requests waiting
    trade = app.place()
    await wait_until(lambda: trade.orderStatus.status == "Submitted", timeout=40 * T)
    queued = (await manager.connection_health())["pacing"]["queued"]["streams"]
    assert queued > RATE / 2  # acknowledged while most of the burst still waits
    assert 100 not in errors(manager)


async def test_the_heartbeat_probe_is_never_held_behind_a_burst(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    snapshots(manager, 3 * RATE)  # three seconds of STREAMS requests
    gateway.stall()  # nothing answers: the manager probes, through the waiting burst
    probes = gateway.request_counts[ClientMessage.REQ_CURRENT_TIME]
    await wait_until(
        lambda: gateway.request_counts[ClientMessage.REQ_CURRENT_TIME] > probes, timeout=40 * T
    )
    assert manager.connection.participants.health(True)["pacing"]["queued"]["streams"] > 0


async def test_a_cancel_of_a_waiting_request_withdraws_it(
    manager: IBConnectionManager, gateway: FakeGateway
) -> None:
    snapshots(manager, 2 * RATE)
    ticker = manager.ib.reqMktData(AAPL)  # a streaming request, behind the burst
    manager.ib.cancelMktData(ticker.contract)
    await wait_until(
        lambda: (manager.connection.participants.health(True)["pacing"]["queued"]["streams"]
                 == 0),
        timeout=100 * T,
    )  # fmt: skip
    assert gateway.market_data_subscriptions == 0  # neither the request nor its cancel went
    health = await manager.connection_health()
    assert health["pacing"]["market_data_lines"] == 0


async def test_health_shows_the_budget(manager: IBConnectionManager) -> None:
    pacing = (await manager.connection_health())["pacing"]
    assert set(pacing["queued"]) == {"urgent", "sync", "streams", "bulk"}
    assert pacing["messages_in_window"] >= 1  # the start-up sync went through it
    assert pacing["violations"] == {}
    assert pacing["next_slot_in_seconds"] is None


async def test_without_the_scheduler_ib_async_paces_by_itself(gateway: FakeGateway) -> None:
    manager = IBConnectionManager(port=gateway.port, pacing=None, **fast_settings())
    await manager.connect()
    assert manager.ib.client.MaxRequests == 45  # ib_async's own flat window stays
    assert (await manager.connection_health())["pacing"] is None
    await manager.stop()
