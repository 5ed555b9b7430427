"""Supervision on a FakeLink: losses, TWS's system messages, sessions and fatal errors, without
sockets (the same behaviours against a real FakeGateway are in test_supervision.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.connection.fakes import FakeLink
from tests.helpers import wait_until
from v6.connection.state import ConnectionState
from v6.errors import FatalConnectError
from v6.manager import IBConnectionManager
from v6.protocol.codes import SYSTEM_MESSAGES

Factory = Callable[..., IBConnectionManager]
S = ConnectionState


async def started(make: Factory, link: FakeLink, **overrides: float) -> IBConnectionManager:
    manager = make(link, **overrides)
    await manager.start()
    await manager.wait_connected(timeout=1)
    return manager


async def test_a_loss_reconnects_with_every_hook(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = fake_manager(link)
    connected: list[bool] = []
    reasons: list[str] = []
    resubscribes: list[int] = []
    manager.on_connected(connected.append)
    manager.on_disconnected(reasons.append)
    manager.add_resubscribe(lambda: resubscribes.append(1))
    await manager.start()
    await manager.wait_connected(timeout=1)
    link.drop()
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected)
    assert connected == [False, True]
    assert reasons == ["gateway closed the connection"]
    assert resubscribes == [1]
    assert manager.last_error == "gateway closed the connection"


@pytest.mark.parametrize(("restore", "resubscribes"), [(1102, 0), (1101, 1)])
async def test_cut_off_then_restored(
    fake_manager: Factory, restore: int, resubscribes: int
) -> None:
    link = FakeLink()
    manager = await started(fake_manager, link)
    calls: list[int] = []
    manager.add_resubscribe(lambda: calls.append(1))
    link.system_message(1100, SYSTEM_MESSAGES[1100])
    assert manager.state is S.DEGRADED
    assert manager.health().degraded_for is not None
    assert manager.is_connected
    link.system_message(restore, SYSTEM_MESSAGES[restore])
    assert manager.state is S.CONNECTED
    assert manager.health().degraded_for is None
    assert len(calls) == resubscribes
    assert link.connects == [1]


async def test_cut_off_past_the_grace_reconnects(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = await started(fake_manager, link, degraded_grace=0.05)
    link.system_message(2110, SYSTEM_MESSAGES[2110])
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.state is S.CONNECTED)
    assert "cut off" in (manager.last_error or "")
    assert manager.health().degraded_for is None  # a new session


async def test_farms_belong_to_a_session(fake_manager: Factory) -> None:
    link = FakeLink()
    link.handshake_messages = [(2104, SYSTEM_MESSAGES[2104])]
    manager = await started(fake_manager, link)
    assert manager.health().farms == {"market_data:usfarm": "ok"}  # sent during the handshake
    link.system_message(2105, SYSTEM_MESSAGES[2105])
    assert manager.health().farms["historical_data:ushmds"] == "broken"
    link.handshake_messages = []
    link.drop()
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected)
    assert manager.health().farms == {}  # the old session's news went with it


async def test_a_fatal_error_ends_supervision_and_reaches_the_waiter(
    fake_manager: Factory,
) -> None:
    no_host = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    link = FakeLink(None, no_host)
    manager = await started(fake_manager, link)
    link.drop()
    with pytest.raises(FatalConnectError):
        await manager.wait_connected(timeout=1)
    assert not manager.health().supervised
    assert manager.state is S.DISCONNECTED


async def test_stop_closes_and_reports_once(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = await started(fake_manager, link)
    reasons: list[str] = []
    manager.on_disconnected(reasons.append)
    await manager.stop()
    assert reasons == ["stopped by the user"]
    assert manager.state is S.STOPPED
    assert not link.connected
    assert manager.last_error is None
