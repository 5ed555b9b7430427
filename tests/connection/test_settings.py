from __future__ import annotations

from typing import Any

import pytest

from v6.connection import ConnectionSettings, IBConnectionManager
from v6.connection import defaults as d
from v6.errors import ConfigError


def test_plan_defaults() -> None:
    manager = IBConnectionManager()
    assert (manager.host, manager.port, manager.client_id) == ("127.0.0.1", 7497, 1)
    assert (manager.max_retries, manager.retry_delay, manager.heartbeat_interval) == (3, 2.0, 30)
    assert manager.settings.heartbeat_timeout == d.DEFAULT_HEARTBEAT_TIMEOUT
    assert manager.last_heartbeat is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"host": ""}, "host"),
        ({"client_id": -1}, "client_id"),
        ({"client_id": []}, "client_id"),
        ({"client_id": [1, 1]}, "client_id"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_delay": 0}, "retry_delay"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_timeout": -1}, "heartbeat_timeout"),
        ({"connect_timeout": -0.5}, "connect_timeout"),
        ({"max_delay": 1.0}, "max_delay"),
        ({"jitter": 2}, "jitter"),
        ({"degraded_grace": -1}, "degraded_grace"),
    ],
)
def test_invalid_configuration_raises_at_construction(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        IBConnectionManager(**kwargs)
    assert isinstance(info.value, ConfigError)
    assert "must" in str(info.value)


def test_port_error_names_the_range() -> None:
    with pytest.raises(ValueError, match=r"port must be in \[1, 65535\], got 0"):
        IBConnectionManager(port=0)


def test_from_env_reads_prefixed_variables() -> None:
    env = {
        "IB_HOST": "10.0.0.5",
        "IB_PORT": "4002",
        "IB_CLIENT_ID": "7, 8,9",
        "IB_HEARTBEAT_TIMEOUT": "2.5",
        "IB_READONLY": "true",
        "UNRELATED": "x",
    }
    settings = ConnectionSettings.from_env(env)
    assert settings.host == "10.0.0.5"
    assert settings.port == 4002
    assert settings.client_ids == (7, 8, 9)
    assert settings.heartbeat_timeout == 2.5
    assert settings.readonly is True
    manager = IBConnectionManager.from_env(env, heartbeat_interval=5.0)
    assert manager.port == 4002
    assert manager.client_id == 7
    assert manager.heartbeat_interval == 5.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IB_PORT": "abc"}, "IB_PORT='abc': must be an integer"),
        ({"IB_PORT": "0"}, "port must be in"),
        ({"IB_JITTER": "lots"}, "IB_JITTER='lots': must be a number"),
        ({"IB_READONLY": "maybe"}, "IB_READONLY"),
        ({"IB_CLIENT_ID": "1,x"}, "IB_CLIENT_ID"),
    ],
)
def test_from_env_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        IBConnectionManager.from_env(env)
