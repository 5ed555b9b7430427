"""v6.metrics: the exposition follows a real manager through connect, reconnect and failures."""

from __future__ import annotations

import asyncio
import importlib
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import TIME_UNIT, wait_until
from v6.connection import CircuitBreaker
from v6.errors import ConfigError, ConnectFailed
from v6.manager import IBConnectionManager
from v6.metrics import DEFAULT_METRICS_HOST, ConnectionMetrics, serve_metrics
from v6.testing import FakeGateway

T = TIME_UNIT
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: bytes | str) -> Samples:
    """name + sorted labels -> value, parsed with prometheus_client's own parser."""
    if isinstance(text, bytes):
        text = text.decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0) as gw:
        yield gw


@pytest.fixture
async def make_manager() -> AsyncIterator[Callable[..., IBConnectionManager]]:
    made: list[IBConnectionManager] = []

    def make(port: int, **options: Any) -> IBConnectionManager:
        settings: dict[str, Any] = {
            "retry_delay": T,
            "max_delay": 4 * T,
            "heartbeat_interval": 2 * T,
            "heartbeat_timeout": 10 * T,
            "connect_timeout": 40 * T,
        }
        settings.update(options)
        manager = IBConnectionManager(port=port, **settings)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.stop()


async def test_series_follow_connect_reconnect_and_heartbeats(
    gateway: FakeGateway, make_manager: Callable[..., IBConnectionManager]
) -> None:
    manager = make_manager(gateway.port)
    metrics = ConnectionMetrics(manager)
    try:
        before = samples(metrics.exposition())
        assert value(before, "v6_ib_connection_state", state="disconnected") == 1.0
        assert value(before, "v6_ib_connected") == 0.0
        assert value(before, "v6_ib_reconnects_total") == 0.0
        assert value(before, "v6_ib_last_heartbeat_age_seconds") is None  # never heard

        await manager.start()
        await manager.wait_connected(timeout=100 * T)
        up = samples(metrics.exposition())
        assert value(up, "v6_ib_connection_state", state="connected") == 1.0
        assert value(up, "v6_ib_connection_state", state="disconnected") == 0.0
        assert value(up, "v6_ib_connected") == 1.0
        assert value(up, "v6_ib_connect_attempts_total", result="ok") == 1.0
        assert value(up, "v6_ib_circuit_breaker_state", state="closed") == 1.0
        age = value(up, "v6_ib_last_heartbeat_age_seconds")
        assert age is not None
        assert 0 <= age < 100 * T

        await gateway.drop_all()
        await wait_until(lambda: manager.stats.reconnects == 1 and manager.is_connected)
        # The gateway is silent between requests: the manager probes it every 2 T.
        await wait_until(lambda: manager.stats.probes_sent >= 2)
        after = samples(metrics.exposition())
        assert value(after, "v6_ib_reconnects_total") == 1.0
        assert value(after, "v6_ib_connect_attempts_total", result="ok") == 2.0
        assert value(after, "v6_ib_connection_state", state="connected") == 1.0
        probes = value(after, "v6_ib_heartbeat_probes_total")
        assert probes is not None
        assert probes >= 2
        observed = value(after, "v6_ib_heartbeat_rtt_seconds_count")
        assert observed is not None
        assert 1 <= observed <= probes
        rtt_sum = value(after, "v6_ib_heartbeat_rtt_seconds_sum")
        assert rtt_sum is not None
        assert 0 < rtt_sum < observed * 10 * T
        assert value(after, "v6_ib_heartbeat_rtt_seconds_bucket", le="+Inf") == observed
    finally:
        metrics.close()


async def test_failed_attempts_by_result_and_open_breaker(
    make_manager: Callable[..., IBConnectionManager],
) -> None:
    gw = FakeGateway(port=0)
    await gw.start()
    await gw.stop()  # nothing listens on gw.port now
    manager = make_manager(
        gw.port, max_retries=0, circuit_breaker=CircuitBreaker(failure_threshold=1, timeout=60)
    )
    metrics = ConnectionMetrics(manager)
    try:
        with pytest.raises(ConnectFailed):
            await manager.connect()
        found = samples(metrics.exposition())
        assert value(found, "v6_ib_connect_attempts_total", result="refused") == 1.0
        assert value(found, "v6_ib_connect_attempts_total", result="ok") is None
        assert value(found, "v6_ib_circuit_breaker_state", state="open") == 1.0
        assert value(found, "v6_ib_circuit_breaker_state", state="closed") == 0.0
        assert value(found, "v6_ib_consecutive_failures") == 1.0
        assert value(found, "v6_ib_connected") == 0.0
    finally:
        metrics.close()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body


async def test_serve_metrics_on_loopback_and_close(
    gateway: FakeGateway, make_manager: Callable[..., IBConnectionManager]
) -> None:
    manager = make_manager(gateway.port)
    await manager.connect()
    handle = serve_metrics(manager, port=0)
    try:
        assert handle.host == DEFAULT_METRICS_HOST == "127.0.0.1"
        assert handle.port > 0
        body = await asyncio.to_thread(fetch, handle.url)
        assert value(samples(body), "v6_ib_connection_state", state="connected") == 1.0
    finally:
        handle.close()
    handle.close()  # idempotent
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(fetch, handle.url)


async def test_two_managers_do_not_collide_nor_touch_the_global_registry(
    gateway: FakeGateway, make_manager: Callable[..., IBConnectionManager]
) -> None:
    first = make_manager(gateway.port, client_id=1)
    second = make_manager(gateway.port, client_id=2)
    await first.connect()
    one, two = ConnectionMetrics(first), ConnectionMetrics(second)
    try:
        assert value(samples(one.exposition()), "v6_ib_connected") == 1.0
        assert value(samples(two.exposition()), "v6_ib_connected") == 0.0
        global_names = {family.name for family in prometheus_client.REGISTRY.collect()}
        assert not any(name.startswith("v6_ib") for name in global_names)
    finally:
        one.close()
        two.close()


async def test_close_stops_observing_heartbeats(
    gateway: FakeGateway, make_manager: Callable[..., IBConnectionManager]
) -> None:
    manager = make_manager(gateway.port)
    metrics = ConnectionMetrics(manager)
    metrics.close()
    await manager.start()
    await wait_until(lambda: manager.stats.probes_sent - manager.stats.probes_failed >= 1)
    assert value(samples(metrics.exposition()), "v6_ib_heartbeat_rtt_seconds_count") == 0.0


async def test_serve_metrics_rejects_a_bad_port(
    make_manager: Callable[..., IBConnectionManager],
) -> None:
    manager = make_manager(4002)
    with pytest.raises(ConfigError, match="port"):
        serve_metrics(manager, port=70000)


def test_import_without_prometheus_client_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    monkeypatch.delitem(sys.modules, "v6.metrics")
    with pytest.raises(ImportError, match=r"pip install v6\[metrics\]"):
        importlib.import_module("v6.metrics")


async def test_restart_series(gateway: FakeGateway, make_manager: Callable[..., Any]) -> None:
    manager = make_manager(gateway.port, readiness_interval=T)
    metrics = ConnectionMetrics(manager)
    try:
        await manager.start()
        await manager.wait_connected(timeout=40 * T)
        found = samples(metrics.exposition())
        assert value(found, "v6_ib_maintenance") == 0.0
        assert value(found, "v6_ib_maintenance_overruns_total") == 0.0
        assert value(found, "v6_ib_ibc_restarts_total") == 0.0
        await gateway.stop()
        await wait_until(lambda: manager.restarts.probes, timeout=40 * T)
        found = samples(metrics.exposition())
        assert (value(found, "v6_ib_readiness_probes_total", outcome="refused") or 0) >= 1
    finally:
        metrics.close()


async def test_pacing_and_subscription_series(
    gateway: FakeGateway, make_manager: Callable[..., Any]
) -> None:
    from ib_async import Stock

    manager = make_manager(gateway.port, stale_after=None)
    metrics = ConnectionMetrics(manager)
    try:
        await manager.start()
        await manager.wait_connected(timeout=40 * T)
        ticker = manager.data.market_data(Stock("AAPL", "SMART", "USD", conId=265598))
        await wait_until(lambda: manager.data.feeds[0].last_update > 0, timeout=40 * T)
        found = samples(metrics.exposition())
        assert value(found, "v6_ib_requests_queued", lane="bulk") == 0.0
        assert value(found, "v6_ib_market_data_lines") == 1.0
        labels = {"number": "1", "kind": "market_data", "contract": "AAPL (265598)"}
        age = value(found, "v6_ib_subscription_last_update_age_seconds", **labels)
        assert age is not None
        assert 0 <= age < 1
        assert value(found, "v6_ib_subscription_state", **labels, state="streaming") == 1.0
        assert value(found, "v6_ib_subscription_resubscribes_total", **labels) == 0.0
        assert value(found, "v6_ib_competing_sessions_total") == 0.0
        manager.data.cancel(ticker)
        found = samples(metrics.exposition())
        assert value(found, "v6_ib_subscription_state", **labels, state="streaming") is None
    finally:
        metrics.close()
