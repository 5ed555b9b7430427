"""The heartbeat on a FakeLink: probes only when silent, stalls found, the interval writable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.connection.fakes import FakeLink
from tests.helpers import T, fast_settings, wait_until
from v6.connection.state import ConnectionState
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

Factory = Callable[..., IBConnectionManager]


async def test_a_silent_link_is_probed_and_rtts_reported(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = fake_manager(link)
    rtts: list[float] = []
    manager.on_heartbeat(rtts.append)
    await manager.start_heartbeat()
    await wait_until(lambda: len(rtts) >= 3)
    assert manager.stats.probes_failed == 0
    assert manager.stats.reconnects == 0
    assert manager.health().last_rtt is not None


async def test_messages_are_proof_of_life(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = fake_manager(link, heartbeat_interval=0.05)
    await manager.start_heartbeat()
    await manager.wait_connected(timeout=1)
    for _ in range(20):
        link.receive()
        await asyncio.sleep(0.01)
    assert link.probes == 0


async def test_an_unanswered_probe_reconnects(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = fake_manager(link)
    await manager.start_heartbeat()
    await manager.wait_connected(timeout=1)
    link.answering = False
    await wait_until(lambda: manager.stats.probes_failed == 1)
    link.answering = True
    await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected)
    assert "heartbeat" in (manager.last_error or "")
    assert link.connects == [1, 1]


async def test_the_interval_setter_takes_effect_at_once(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = fake_manager(link, heartbeat_interval=60.0)
    await manager.start_heartbeat()
    await manager.wait_connected(timeout=1)
    await asyncio.sleep(0.05)
    assert link.probes == 0  # the watcher sleeps toward a probe 60 s away ...
    manager.heartbeat_interval = 0.02  # ... and is woken to recompute
    assert manager.settings.heartbeat_interval == 0.02
    await wait_until(lambda: link.probes >= 1, timeout=1.0)


async def test_stop_heartbeat_keeps_the_connection_open(fake_manager: Factory) -> None:
    link = FakeLink()
    manager = fake_manager(link)
    await manager.start_heartbeat()
    await wait_until(lambda: link.probes >= 1)
    await manager.stop_heartbeat()
    probes = link.probes
    await asyncio.sleep(0.1)  # five intervals
    assert link.probes == probes
    assert manager.is_connected
    assert manager.state is ConnectionState.CONNECTED
    assert link.closes == 0
    assert not manager.health().supervised


async def test_stop_heartbeat_keeps_the_socket_open(gateway: FakeGateway) -> None:
    manager = IBConnectionManager(port=gateway.port, **fast_settings())
    try:
        await manager.connect()
        await manager.start_heartbeat()
        await manager.stop_heartbeat()
        await asyncio.sleep(4 * T)
        assert manager.is_connected
        assert gateway.client_ids == {1}
        assert manager.ib.isConnected()
    finally:
        await manager.stop()


async def test_an_unanswered_request_is_probed_at_once(fake_manager: Factory) -> None:
    """A request with nothing back: probed after half the timeout, stalled at the timeout, long
    before the 60 s idle interval."""
    link = FakeLink()
    manager = fake_manager(link, heartbeat_interval=60.0, heartbeat_timeout=0.1)
    await manager.start_heartbeat()
    await manager.wait_connected(timeout=1)
    link.answering = False
    loop = asyncio.get_running_loop()
    sent = link.awaiting_reply_since = time.monotonic()
    link.on_request()
    await wait_until(lambda: manager.stats.probes_failed == 1, timeout=1)
    assert link.probes == 1
    assert 0.1 <= loop.time() - sent < 0.1 + 0.2  # deadline counted from the request
    assert "after a request" in (manager.last_error or "")


async def test_a_stall_is_declared_at_the_timeout_counted_from_the_request(
    fake_manager: Factory,
) -> None:
    """The probe gets only what is left of the request's timeout, not a fresh one."""
    link = FakeLink()
    manager = fake_manager(link, heartbeat_interval=60.0, heartbeat_timeout=1.0)
    await manager.start_heartbeat()
    await manager.wait_connected(timeout=1)
    link.answering = False
    now = time.monotonic()
    link.awaiting_reply_since = now - 0.9  # unanswered for 0.9 s of its 1 s already
    link.on_request()
    await wait_until(lambda: manager.stats.probes_failed == 1, timeout=2)
    assert time.monotonic() - now < 0.6  # 0.1 s left, not a fresh 1 s
    assert "no message for 1" in (manager.last_error or "")


async def test_a_quiet_connection_without_requests_waits_for_the_interval(
    fake_manager: Factory,
) -> None:
    link = FakeLink()
    manager = fake_manager(link, heartbeat_interval=60.0, heartbeat_timeout=0.05)
    await manager.start_heartbeat()
    await manager.wait_connected(timeout=1)
    await asyncio.sleep(0.2)  # four timeouts of silence, no request: nothing to suspect
    assert link.probes == 0


async def test_a_slow_request_is_not_a_stall_when_the_probe_answers(
    fake_manager: Factory,
) -> None:
    link = FakeLink()
    manager = fake_manager(link, heartbeat_interval=60.0, heartbeat_timeout=0.1)
    await manager.start_heartbeat()
    await manager.wait_connected(timeout=1)
    link.awaiting_reply_since = time.monotonic()  # a historical query, say
    link.on_request()
    await wait_until(lambda: link.probes == 1, timeout=1)
    assert link.awaiting_reply_since is None  # the probe's answer is a message
    await asyncio.sleep(0.2)
    assert link.probes == 1
    assert manager.stats.probes_failed == 0
    assert manager.is_connected
