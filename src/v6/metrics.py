"""Prometheus metrics for an :class:`~v6.connection.IBConnectionManager` (extra ``v6[metrics]``).

::

    from v6.metrics import serve_metrics

    handle = serve_metrics(manager, port=9108)   # http://127.0.0.1:9108/metrics
    ...
    handle.close()

Series (one manager per registry; every name starts with ``v6_ib_``):

==========================================  =========  ==========================================
``v6_ib_connection_state{state}``           gauge      1 for the current ConnectionState, else 0
``v6_ib_connected``                         gauge      1 while the API connection is up
``v6_ib_connect_attempts_total{result}``    counter    attempts by result: ok, refused, timeout,
                                                       unreachable, handshake_failed,
                                                       client_id_in_use, fatal, error
``v6_ib_reconnects_total``                  counter    successful reconnects
``v6_ib_circuit_breaker_state{state}``      gauge      1 for the breaker's state (closed, open,
                                                       half_open), else 0
``v6_ib_consecutive_failures``              gauge      failed attempts since the last success
``v6_ib_heartbeat_probes_total``            counter    probes sent
``v6_ib_heartbeat_probes_failed_total``     counter    probes unanswered or cut short
``v6_ib_heartbeat_rtt_seconds``             histogram  round trip of answered probes
``v6_ib_last_heartbeat_age_seconds``        gauge      seconds since the last message or probe
                                                       answer (absent before the first one)
``v6_ib_open_orders``                        gauge      orders working or not yet acknowledged
``v6_ib_fills_delivered_total``             counter    executions delivered to on_fill, once each
``v6_ib_fills_recovered_total``             counter    of those, found by reconciliation
``v6_ib_maintenance``                       gauge      1 inside a known restart window or its
                                                       grace (failures expected), else 0
``v6_ib_maintenance_overruns_total``        counter    windows that ended + grace passed with
                                                       no connection (each escalated once)
``v6_ib_readiness_probes_total{outcome}``   counter    readiness probes by outcome: answered,
                                                       refused, silent, closed, garbage, ...
``v6_ib_ibc_restarts_total``                counter    RESTART commands sent to IBC
==========================================  =========  ==========================================

Everything but the histogram is read from the manager when scraped, so the figures cannot drift
from ``connection_health()``. Each :class:`ConnectionMetrics` has its own ``CollectorRegistry``
(never prometheus_client's global one), so tests and several managers in one process do not
collide. :func:`serve_metrics` binds 127.0.0.1 unless told otherwise; its HTTP server runs in a
daemon thread (prometheus_client's), which only reads the manager's counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

try:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest, start_http_server
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ImportError as exc:  # tests/test_metrics.py hides the module to check this message
    raise ImportError(
        "v6.metrics needs prometheus-client, an optional extra: pip install v6[metrics]"
    ) from exc

from v6.connection.circuit_breaker import CircuitState
from v6.connection.state import ConnectionState

if TYPE_CHECKING:
    from v6.manager import IBConnectionManager

#: Where :func:`serve_metrics` listens unless told otherwise: never every interface by default.
DEFAULT_METRICS_HOST: Final = "127.0.0.1"
PREFIX: Final = "v6_ib"
#: Heartbeat round-trip buckets (seconds): a local gateway answers in about a millisecond; the
#: manager's probe gives up at heartbeat_timeout (DEFAULT_HEARTBEAT_TIMEOUT: 10 s).
RTT_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _ManagerCollector(Collector):
    """Reads the manager's state and counters at scrape time."""

    def __init__(self, manager: IBConnectionManager) -> None:
        self._manager = manager

    def describe(self) -> Iterator[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        return self._families()

    def _families(self) -> Iterator[Metric]:
        manager = self._manager
        state = GaugeMetricFamily(
            f"{PREFIX}_connection_state",
            "Connection state of the manager: 1 for the current state, 0 for the others.",
            labels=["state"],
        )
        current = manager.state
        for member in ConnectionState:
            state.add_metric([member.value], 1.0 if member is current else 0.0)
        yield state

        yield GaugeMetricFamily(
            f"{PREFIX}_connected",
            "1 while the API connection to TWS / IB Gateway is up, else 0.",
            value=1.0 if manager.is_connected else 0.0,
        )

        stats = manager.stats
        attempts = CounterMetricFamily(
            f"{PREFIX}_connect_attempts",
            "Connection attempts by result.",
            labels=["result"],
        )
        for result, count in sorted(dict(stats.attempts).items()):
            attempts.add_metric([result], float(count))
        yield attempts

        yield CounterMetricFamily(
            f"{PREFIX}_reconnects",
            "Successful reconnects after a lost connection.",
            value=float(stats.reconnects),
        )

        breaker = GaugeMetricFamily(
            f"{PREFIX}_circuit_breaker_state",
            "Circuit breaker state: 1 for the current state, 0 for the others.",
            labels=["state"],
        )
        breaker_state = manager.circuit_breaker.state
        for circuit in CircuitState:
            breaker.add_metric([circuit.value], 1.0 if circuit is breaker_state else 0.0)
        yield breaker

        yield GaugeMetricFamily(
            f"{PREFIX}_consecutive_failures",
            "Failed connection attempts since the last success.",
            value=float(manager.consecutive_failures),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_heartbeat_probes",
            "Heartbeat probes sent.",
            value=float(stats.probes_sent),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_heartbeat_probes_failed",
            "Heartbeat probes unanswered within heartbeat_timeout or cut short by a lost socket.",
            value=float(stats.probes_failed),
        )

        trading = manager.trading_stats()
        yield GaugeMetricFamily(
            f"{PREFIX}_open_orders",
            "Orders that are (or may be) working: not done, or not yet acknowledged.",
            value=float(trading["open_orders"]),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_fills_delivered",
            "Executions delivered to on_fill (live or recovered), each once.",
            value=float(trading["fills_delivered"]),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_fills_recovered",
            "Of those, executions found by reconciliation after a reconnect, 1101 or restart.",
            value=float(trading["fills_recovered"]),
        )
        yield from _restart_families(manager)
        fields = manager.connection.connection_health()
        yield from _pacing_families(fields["pacing"])
        yield from _data_families(fields["subscriptions"], fields["data"])

        age = GaugeMetricFamily(
            f"{PREFIX}_last_heartbeat_age_seconds",
            "Seconds since the last message or probe answer from the gateway.",
        )
        heard_ago = manager.last_heartbeat_age
        if heard_ago is not None:
            age.add_metric([], heard_ago)
        yield age


def _restart_families(manager: IBConnectionManager) -> Iterator[Metric]:
    """Daily restarts: maintenance windows, readiness probes, IBC."""
    restarts = manager.restarts
    yield GaugeMetricFamily(
        f"{PREFIX}_maintenance",
        "1 inside a known gateway restart window or its grace (failures expected), else 0.",
        value=1.0 if manager.health().maintenance else 0.0,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_maintenance_overruns",
        "Restart windows that ended (plus grace) without a connection; each escalated once.",
        value=float(restarts.overruns),
    )
    probes = CounterMetricFamily(
        f"{PREFIX}_readiness_probes",
        "Readiness probes (TCP connect + API hello) by outcome.",
        labels=["outcome"],
    )
    for outcome, count in sorted((o.value, n) for o, n in restarts.probes.items()):
        probes.add_metric([outcome], float(count))
    yield probes
    yield CounterMetricFamily(
        f"{PREFIX}_ibc_restarts",
        "RESTART commands sent to IBC for a gateway that accepted but did not answer.",
        value=float(restarts.ibc.restarts_requested),
    )


def _pacing_families(pacing: dict[str, Any] | None) -> Iterator[Metric]:
    """The request scheduler's budget (nothing when it is off)."""
    if pacing is None:
        return
    queued = GaugeMetricFamily(
        f"{PREFIX}_requests_queued", "Requests waiting for their pacing slot, by lane.",
        labels=["lane"],
    )  # fmt: skip
    for lane, count in pacing["queued"].items():
        queued.add_metric([lane], float(count))
    yield queued
    yield CounterMetricFamily(f"{PREFIX}_requests_waited",
                              "Requests that waited for their pacing slot.",
                              value=float(pacing["waited"]))  # fmt: skip
    yield CounterMetricFamily(f"{PREFIX}_request_wait_seconds",
                              "Total time requests waited for their pacing slot.",
                              value=float(pacing["wait_seconds"]))  # fmt: skip
    violations = CounterMetricFamily(
        f"{PREFIX}_pacing_violations",
        "Pacing errors that still arrived (162, 420, 322, 100), by code; each retried.",
        labels=["code"],
    )
    for code, count in pacing["violations"].items():
        violations.add_metric([code], float(count))
    yield violations
    for key, help_text in (
        ("market_data_lines", "Market-data lines in use (requests holding one)."),
        ("open_historical", "Historical requests open now (keepUpToDate included)."),
        ("historical_in_window", "Historical requests in IB's 10-minute window."),
    ):
        if pacing[key] is not None:
            yield GaugeMetricFamily(f"{PREFIX}_{key}", help_text, value=float(pacing[key]))


def _data_families(feeds: list[dict[str, Any]], data: dict[str, Any]) -> Iterator[Metric]:
    """Live subscriptions: one series per subscription, and what IB refused or cut."""
    labels = ["number", "kind", "contract"]
    age = GaugeMetricFamily(f"{PREFIX}_subscription_last_update_age_seconds",
                            "Seconds since the subscription last received data.",
                            labels=labels)  # fmt: skip
    resubscribes = CounterMetricFamily(f"{PREFIX}_subscription_resubscribes",
                                       "Times the subscription was requested again.",
                                       labels=labels)  # fmt: skip
    states = GaugeMetricFamily(f"{PREFIX}_subscription_state",
                               "1 for the subscription's current state.",
                               labels=[*labels, "state"])  # fmt: skip
    for feed in feeds:
        values = [str(feed["number"]), feed["kind"], feed["contract"]]
        if feed["last_update_age_seconds"] is not None:
            age.add_metric(values, feed["last_update_age_seconds"])
        resubscribes.add_metric(values, float(feed["resubscribes"]))
        states.add_metric([*values, feed["state"]], 1.0)
    yield from (age, resubscribes, states)
    for name, help_text in (
        ("refusals", "Subscriptions IB refused (101 max tickers, no permissions ...)."),
        ("competing_sessions", "Episodes of 10197: a competing live session had the data."),
        ("farm_flaps", "Data farm connections reported broken (2103 / 2105)."),
    ):
        yield CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=float(data[name]))
    yield GaugeMetricFamily(f"{PREFIX}_subscriptions_dead",
                            "Subscriptions still silent after re-requests and a reconnect.",
                            value=float(data["dead"]))  # fmt: skip


class ConnectionMetrics:
    """The metrics of one manager, in their own registry.

    Registers an ``on_heartbeat`` listener for the round-trip histogram; :meth:`close` removes it.
    """

    def __init__(
        self, manager: IBConnectionManager, registry: CollectorRegistry | None = None
    ) -> None:
        self.manager = manager
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry.register(_ManagerCollector(manager))
        self.heartbeat_rtt = Histogram(
            f"{PREFIX}_heartbeat_rtt_seconds",
            "Round-trip time of answered heartbeat probes.",
            buckets=RTT_BUCKETS,
            registry=self.registry,
        )
        self._listener = manager.on_heartbeat(self.heartbeat_rtt.observe)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format, as a scrape would return them."""
        return bytes(generate_latest(self.registry))

    def close(self) -> None:
        self.manager.remove_listener(self._listener)


class MetricsServer:
    """A running metrics endpoint (from :func:`serve_metrics`). ``close()`` stops it."""

    def __init__(self, metrics: ConnectionMetrics, server: Any, thread: Any) -> None:
        self.metrics = metrics
        self._server = server
        self._thread = thread
        self.host: str = server.server_address[0]
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving, join the server thread and remove the manager listener. Idempotent."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.shutdown()
        server.server_close()
        self._thread.join()
        self.metrics.close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve_metrics(
    manager: IBConnectionManager, port: int, host: str = DEFAULT_METRICS_HOST
) -> MetricsServer:
    """Serve ``manager``'s metrics at ``http://host:port/metrics`` (``port=0``: a free one,
    read back from the handle's ``port``). Raises ``OSError`` if the port cannot be bound."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        from v6.errors import ConfigError

        raise ConfigError(f"port: {port!r} is outside 0..65535")
    metrics = ConnectionMetrics(manager)
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except BaseException:
        metrics.close()
        raise
    return MetricsServer(metrics, server, thread)
