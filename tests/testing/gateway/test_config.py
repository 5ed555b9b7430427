"""Configuration checks, the CLI and the pytest plugin."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.testing.helpers import RawClient
from v6.errors import ConfigError
from v6.protocol import codec
from v6.testing import AccountState, FakeGateway

MakeGateway = Callable[..., Awaitable[FakeGateway]]
RawFactory = Callable[[int], Awaitable[RawClient]]


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"port": -1}, "port", "[0, 65535], got -1"),
        ({"port": 65536}, "port", "[0, 65535], got 65536"),
        ({"max_clients": 0}, "max_clients", "[1, 1024]"),
        ({"pacing_limit": 0}, "pacing_limit", "[1, 100000]"),
        ({"server_version": 123}, "server_version", "[124, 178]"),
        ({"server_version": 179}, "server_version", "[124, 178]"),
        ({"next_order_id": -1}, "next_order_id", "[0, "),
        ({"max_account_summaries": -1}, "max_account_summaries", "[0, 1000]"),
        ({"tick_rate": 0}, "tick_rate", "(0, inf]"),
        ({"tick_rate": math.nan}, "tick_rate", "a number"),
        ({"latency": -0.5}, "latency", "[0, inf)"),
        ({"tick_rate": True}, "tick_rate", "a number, got True"),
        ({"latency": True}, "latency", "a number, got True"),
        ({"latency": math.inf}, "latency", "[0, inf)"),
        ({"max_clients": True}, "max_clients", "an integer, got True"),
        ({"port": 4002.0}, "port", "an integer"),
        ({"accounts": []}, "accounts", "at least one"),
        ({"accounts": ["DU1", "DU1"]}, "accounts", "duplicates"),
        ({"accounts": ["DU 1"]}, "accounts", "A-Za-z0-9"),
        ({"accounts": ["a,b"]}, "accounts", "A-Za-z0-9"),
        ({"accounts": ["DU1"], "account_state": AccountState()}, "accounts", "not both"),
        ({"realtime_bar_interval": 0}, "realtime_bar_interval", "(0, 3600]"),
        ({"historical_latency": -1}, "historical_latency", "[0, 3600]"),
        ({"pacing_rules": 0.01}, "pacing_rules", "a PacingLimits or None"),
    ],
)
def test_invalid_configuration_names_the_field_and_range(
    kwargs: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        FakeGateway(**kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(field)
    assert allowed in str(info.value)


async def test_lower_server_version_offer(
    make_gateway: MakeGateway, raw_client: RawFactory
) -> None:
    gw = await make_gateway(server_version=160)
    raw = await raw_client(gw.port)
    hello = await raw.handshake()
    assert hello.version == 160
    startup = await raw.messages()
    assert startup[2].fields == ("4", "2", "-1", "2104", "Market data farm connection is OK:usfarm")


async def test_plugin_fixture_yields_a_started_gateway(fake_gateway: FakeGateway) -> None:
    assert fake_gateway.is_serving
    assert fake_gateway.port > 0
    assert fake_gateway.host == "127.0.0.1"


def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONASYNCIODEBUG": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6.testing.cli", "gateway", "--port", "0", "--accounts", "DU1,DU2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fake gateway listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(codec.encode_hello() + codec.encode_message(71, 2, 5, ""))
            client = codec.ClientCodec()
            events: list[codec.ClientEvent] = []
            deadline = time.monotonic() + 2
            while len(events) < 2 and time.monotonic() < deadline:
                events += client.receive_data(sock.recv(4096))
            assert events[1] == codec.Message(15, ("15", "1", "DU1,DU2"))
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=5)
        assert proc.returncode == 0
        assert "client connected from" in stderr
        assert "disconnected (client id 5)" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_rejects_bad_port() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "v6.testing.cli", "gateway", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "port must be in [0, 65535], got 70000" in result.stderr


def test_cli_on_every_interface_prints_every_address_with_one_port() -> None:
    env = {**os.environ, "PYTHONASYNCIODEBUG": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6.testing.cli", "gateway", "--host", "", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("fake gateway listening on ")
        addresses = line.removeprefix("fake gateway listening on ").split(", ")
        ports = {a.rsplit(":", 1)[1] for a in addresses}
        assert len(ports) == 1
        (port,) = ports
        expected = {f"0.0.0.0:{port}", f"[::]:{port}"} if socket.has_ipv6 else {f"0.0.0.0:{port}"}
        assert set(addresses) == expected
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_live_data_timing_is_validated_at_runtime_too() -> None:
    gw = FakeGateway()
    gw.realtime_bar_interval = 0.5
    gw.historical_latency = 2
    assert (gw.realtime_bar_interval, gw.historical_latency) == (0.5, 2.0)
    with pytest.raises(ConfigError, match=r"realtime_bar_interval must be in \(0, 3600\]"):
        gw.realtime_bar_interval = 0
    with pytest.raises(ConfigError, match=r"historical_latency must be in \[0, 3600\]"):
        gw.historical_latency = -1
