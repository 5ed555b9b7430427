from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from v6.connection.circuit_breaker import CircuitState
from v6.connection.health import Health
from v6.connection.state import ConnectionState
from v6.manager import IBConnectionManager

#: connection_health()'s keys, in order, as they have always been (metrics and the CLI read them).
KEYS = [
    "connected",
    "last_heartbeat_age_seconds",
    "circuit_breaker_state",
    "healthy",
    "state",
    "last_rtt_seconds",
    "consecutive_failures",
    "reconnect_count",
    "last_error",
    "host",
    "port",
    "client_id",
    "supervised",
    "degraded_for_seconds",
    "farms",
    "maintenance",  # added last (issue 9): inside a known restart window
]


def sample(**changes: object) -> Health:
    values: dict[str, object] = {
        "connected": True,
        "last_heartbeat_age": 0.12345678,
        "circuit_breaker_state": CircuitState.CLOSED,
        "healthy": True,
        "state": ConnectionState.CONNECTED,
        "last_rtt": None,
        "consecutive_failures": 0,
        "reconnect_count": 2,
        "last_error": None,
        "host": "127.0.0.1",
        "port": 4002,
        "client_id": 7,
        "supervised": True,
        "degraded_for": None,
        "farms": MappingProxyType({"market_data:usfarm": "ok"}),
    }
    values.update(changes)
    return Health(**values)  # type: ignore[arg-type]


def test_as_dict_has_exactly_the_keys_and_json_values() -> None:
    as_dict = sample().as_dict()
    assert list(as_dict) == KEYS
    assert as_dict["last_heartbeat_age_seconds"] == 0.123457
    assert as_dict["state"] == "connected"
    assert as_dict["circuit_breaker_state"] == "closed"
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_health_is_frozen() -> None:
    health = sample()
    with pytest.raises(AttributeError):
        health.healthy = False  # type: ignore[misc]


async def test_a_new_manager_reports_the_same_keys() -> None:
    manager = IBConnectionManager(port=4002, client_id=[7, 8])
    health = await manager.connection_health()
    trading = ["open_orders", "fills_delivered", "fills_recovered", "fills_redelivered",
               "last_reconcile_seconds", "fill_handler_errors", "journal_failing",
               "pinned_client_id"]  # fmt: skip
    # each participant's fields follow, in the order they joined: orders, pacing, live data
    assert list(health) == [*KEYS, *trading, "pacing", "subscriptions", "data"]
    assert health["state"] == "disconnected"
    assert health["healthy"] is False
    assert health["client_id"] == 7
    assert health["farms"] == {}
    assert manager.health().as_dict() == {key: health[key] for key in KEYS}
