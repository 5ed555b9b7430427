from __future__ import annotations

from typing import Any

import pytest

from v6.connection import ConnectionSettings
from v6.connection import defaults as d
from v6.errors import ConfigError
from v6.manager import IBConnectionManager


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


# ------------------------------------------------ careless configuration (issue 11, item 7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retry_delay": 10**400}, r"retry_delay must be in \(0, inf\), got an integer of about"),
        ({"heartbeat_interval": 10**400}, r"heartbeat_interval must be in \(0, inf\)"),
        ({"max_retries": 10**5000}, r"max_retries must be in \[0, inf\), got an integer of"),
        ({"port": 10**400}, r"port must be in \[1, 65535\], got an integer of about 401 digits"),
        ({"client_id": 7.0}, "client_id must be an integer or a non-empty list .*, got 7.0"),
        ({"client_id": None}, "client_id must be an integer .*, got None"),
        ({"client_id": "78"}, "client_id must be an integer .*, got '78'"),
        ({"client_id": {1: 2}}, r"client_id must be an integer .*, got \{1: 2\}"),
        ({"client_id": [7.0]}, "client_id must be an integer, got 7.0"),
        ({"readonly": "no"}, "readonly must be True or False, got 'no'"),
        ({"readonly": None}, "readonly must be True or False, got None"),
        ({"account": 123}, "account must be a string .*, got 123"),
        ({"supervise": "yes"}, "supervise must be True or False, got 'yes'"),
        ({"host": "127.0.0.1\0"}, r"host must be a host name or IP address .*got '127.0.0.1\\x00'"),
        ({"host": "my host"}, "host must be a host name or IP address"),
        ({"host": None}, "host must be a host name or IP address .*got None"),
    ],
)
def test_careless_values_raise_config_error_naming_the_field(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        IBConnectionManager(**kwargs)


def test_the_fields_still_accept_what_is_right() -> None:
    manager = IBConnectionManager(client_id=(7, 8), readonly=True, account="DU123", supervise=True)
    assert manager.settings.client_ids == (7, 8)
    assert IBConnectionManager(client_id=range(3, 5)).settings.client_ids == (3, 4)
    assert IBConnectionManager(host="::1").host == "::1"


# --------------------------------------------- environment values out of range (item 8)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IB_PORT": "0"}, r"^IB_PORT=0: port must be in \[1, 65535\], got 0$"),
        ({"IB_PORT": " 70000 "}, r"^IB_PORT=70000: port must be in \[1, 65535\]"),
        (
            {"IB_RETRY_DELAY": "100"},
            r"^IB_RETRY_DELAY=100, IB_MAX_DELAY not set: max_delay must be in \[100, inf\), "
            r"got 60\.0$",
        ),
        (
            {"IB_RETRY_DELAY": "10", "IB_MAX_DELAY": "5"},
            r"^IB_RETRY_DELAY=10, IB_MAX_DELAY=5: max_delay must be in \[10, inf\), got 5\.0$",
        ),
        ({"IB_CLIENT_ID": "1,1"}, "^IB_CLIENT_ID=1,1: client_id list must not repeat ids"),
        ({"IB_CLIENT_ID": "-4"}, r"^IB_CLIENT_ID=-4: client_id must be in \[0, "),
        ({"IB_HEARTBEAT_TIMEOUT": "inf"}, r"^IB_HEARTBEAT_TIMEOUT=inf: heartbeat_timeout must"),
        ({"IB_HOST": "a b"}, "^IB_HOST=a b: host must be a host name"),
    ],
)
def test_out_of_range_environment_values_name_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        IBConnectionManager.from_env(env)


def test_an_argument_error_does_not_blame_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"^port must be in \[1, 65535\], got 0$"):
        IBConnectionManager.from_env({"IB_PORT": "4002"}, port=0)
