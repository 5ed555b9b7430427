"""Farm status over real sockets (issue 11, item 10): news belongs to one session, and a hostile
server cannot grow the map without bound."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.helpers import T, wait_until
from v6.connection.system_messages import MAX_FARMS
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

Factory = Callable[..., IBConnectionManager]


async def test_farm_news_is_reset_by_a_gateway_restart(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.start()
    await manager.wait_connected(timeout=40 * T)
    # eufarm: a farm the gateway does not announce at start-up, so only a reset can clear it.
    gateway.broadcast_error(2103, "Market data farm connection is broken:eufarm")
    await wait_until(lambda: manager.health().farms.get("market_data:eufarm") == "broken")
    await gateway.stop()
    await gateway.start()
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected, 100 * T)
    farms = (await manager.connection_health())["farms"]
    assert "market_data:eufarm" not in farms
    assert farms.get("market_data:usfarm") == "ok"  # this session's start-up notice


async def test_50000_distinct_farm_names_stay_bounded(
    make_manager: Factory, gateway: FakeGateway
) -> None:
    manager = make_manager()
    await manager.connect()
    names = 50_000
    started = time.monotonic()
    for n in range(names):
        gateway.broadcast_error(2103, f"Market data farm connection is broken:flood{n}")
    await wait_until(
        lambda: manager.health().farms.get(f"market_data:flood{names - 1}") == "broken",
        timeout=400 * T,
    )
    farms = (await manager.connection_health())["farms"]
    assert len(farms) == MAX_FARMS
    assert f"market_data:flood{names - MAX_FARMS}" in farms  # the newest kept
    assert manager.is_connected
    assert time.monotonic() - started < 400 * T
