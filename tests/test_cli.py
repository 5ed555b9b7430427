"""``v6-ib check`` and ``v6-ib watch`` as an operator runs them: the installed script in a
subprocess, against a FakeGateway served by the test's own event loop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import TIME_UNIT, wait_until
from v6.cli import main
from v6.commands.check import DEFAULT_CHECK_CLIENT_ID, DEFAULT_CHECK_TIMEOUT, check, not_tws
from v6.errors import ConfigError
from v6.protocol.codec import ClientMessage
from v6.protocol.framing import frame
from v6.protocol.pacing import PacingLimits
from v6.testing import FakeGateway
from v6.testing.cli import pacing_rules_from_args, parse_gateway_args

T = TIME_UNIT
SCRIPT = Path(sys.executable).with_name("v6-ib")
#: Python start-up, imports and teardown of the subprocess, on top of its --timeout.
PROCESS_SLACK = 2.5


def command(*args: str) -> list[str]:
    if SCRIPT.exists():
        return [str(SCRIPT), *args]
    return [sys.executable, "-m", "v6.cli", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without IB_* variables (the developer's must not leak into a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IB_")}
    env.update(extra)
    return env


async def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, str, str, float]:
    """Run ``v6-ib ARGS``; return exit code, stdout, stderr and the wall time it took."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command(*args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else clean_env(),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode(), time.monotonic() - started


def one_json_line(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, f"stdout must be exactly one line, got {lines!r}"
    report = json.loads(lines[0])
    assert isinstance(report, dict)
    return report


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0) as gw:
        yield gw


async def free_port() -> int:
    """A port nothing listens on: a gateway's, once stopped."""
    gw = FakeGateway(port=0)
    await gw.start()
    await gw.stop()
    return gw.port


# ---------------------------------------------------------------------------------- check


async def test_check_healthy_gateway_exits_0_with_one_json_line(gateway: FakeGateway) -> None:
    seen_ids: set[int] = set()
    gateway.set_latency(2 * T)  # the session lasts long enough to be seen by polling

    async def watch_ids() -> None:
        while True:
            seen_ids.update(gateway.client_ids)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_ids())
    try:
        code, out, err, _ = await run_cli("check", "--port", str(gateway.port), "--timeout", "5")
    finally:
        watcher.cancel()
    assert code == 0, err
    report = one_json_line(out)
    assert report["healthy"] is True
    assert report["connected"] is True
    assert report["error"] is None
    assert report["client_id"] == DEFAULT_CHECK_CLIENT_ID
    assert report["port"] == gateway.port
    assert 0 < report["probe_rtt_seconds"] < 5
    assert seen_ids == {DEFAULT_CHECK_CLIENT_ID}  # never the application's id
    await wait_until(lambda: not gateway.client_ids, timeout=100 * T)  # it disconnected


async def test_check_stalled_gateway_exits_1_within_the_timeout(gateway: FakeGateway) -> None:
    gateway.stall()  # accepts the socket, never answers the handshake
    timeout = 1.0
    code, out, err, took = await run_cli(
        "check", "--port", str(gateway.port), "--timeout", str(timeout)
    )
    assert code == 1, err
    report = one_json_line(out)
    assert report["healthy"] is False
    assert report["connected"] is False
    assert report["error"]
    assert timeout <= report["check_seconds"] < timeout + 0.5
    assert took < timeout + PROCESS_SLACK


async def test_check_unanswered_probe_exits_1(gateway: FakeGateway) -> None:
    gateway.ignore_requests([ClientMessage.REQ_CURRENT_TIME])  # API up, the probe unanswered
    code, out, err, _ = await run_cli("check", "--port", str(gateway.port), "--timeout", "1")
    assert code == 1, err
    report = one_json_line(out)
    assert report["healthy"] is False
    assert report["connected"] is True  # it got in: only the probe failed
    assert report["probe_rtt_seconds"] is None
    assert "probe" in report["error"]


async def test_check_down_gateway_exits_1_fast() -> None:
    port = await free_port()
    code, out, err, took = await run_cli("check", "--port", str(port), "--timeout", "5")
    assert code == 1, err
    report = one_json_line(out)
    assert report["healthy"] is False
    assert "refused" in report["error"]
    assert report["check_seconds"] < 1.0  # refused: no waiting for the timeout
    assert took < PROCESS_SLACK


async def test_check_flag_wins_over_environment(gateway: FakeGateway) -> None:
    closed = await free_port()
    env = clean_env(IB_HOST="127.0.0.1", IB_PORT=str(gateway.port))
    code, out, _, _ = await run_cli("check", "--timeout", "5", env=env)
    assert (code, one_json_line(out)["port"]) == (0, gateway.port)  # IB_PORT used

    env = clean_env(IB_PORT=str(closed))
    code, out, _, _ = await run_cli("check", "--port", str(gateway.port), "--timeout", "5", env=env)
    assert (code, one_json_line(out)["port"]) == (0, gateway.port)  # --port wins


async def test_check_ignores_the_applications_client_id(gateway: FakeGateway) -> None:
    env = clean_env(IB_PORT=str(gateway.port), IB_CLIENT_ID="1")
    code, out, err, _ = await run_cli("check", "--timeout", "5", env=env)
    assert code == 0, err
    assert one_json_line(out)["client_id"] == DEFAULT_CHECK_CLIENT_ID


async def test_check_bad_environment_exits_2_with_a_clear_message() -> None:
    code, out, err, _ = await run_cli("check", env=clean_env(IB_PORT="four-thousand"))
    assert code == 2
    assert out == ""
    assert "IB_PORT" in err
    assert "must be an integer" in err
    assert "Traceback" not in err


async def test_check_out_of_range_environment_names_the_variable() -> None:
    code, out, err, _ = await run_cli("check", env=clean_env(IB_RETRY_DELAY="100"))
    assert code == 2
    assert out == ""
    assert "IB_RETRY_DELAY=100, IB_MAX_DELAY not set: max_delay must be in [100, inf)" in err


async def test_check_reports_the_real_state_after_a_failed_check(gateway: FakeGateway) -> None:
    """A stalled gateway: the check gives up at its deadline; the state is not 'connecting'."""
    gateway.stall()
    report = await check(port=gateway.port, timeout=4 * T, environ={})
    assert report["healthy"] is False
    assert report["state"] == "disconnected"
    assert report["error"] == f"no answer within {4 * T}s (connect)"


class HttpServer:
    """A web server on the API port: answers anything with a 400, then closes (or not)."""

    def __init__(self, close: bool) -> None:
        self.close = close
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        await asyncio.gather(*self.handlers)  # each ends once its client has gone

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        if not self.close:
            await reader.read()  # until the client goes
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("close", [True, False])
async def test_check_tells_a_web_server_from_a_stalled_gateway(close: bool) -> None:
    async with HttpServer(close) as port:
        report = await check(port=port, timeout=4 * T, environ={})
    assert report["healthy"] is False
    assert report["state"] == "disconnected"
    assert report["error"].startswith("not a TWS API endpoint: it answered the API hello with")
    assert "HTTP/1.1 400" in report["error"]


def test_not_tws_judges_the_first_answer() -> None:
    hello = frame(b"178\x0020240101 12:00:00 EST\x00")
    assert not not_tws(hello + frame(b"15\x001\x00DU1\x00"))  # TWS
    assert not not_tws(b"")  # nothing came: a stall, not a verdict
    assert not not_tws(hello[:3])  # too little to judge
    assert not_tws(b"HTTP/1.1 400 Bad Request\r\n")  # a 1 GiB "length"
    assert not_tws(frame(b"hello"))  # a frame, not a version frame
    assert not_tws(b"SSH-2.0-OpenSSH_9.6\r\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "0"], "must be a finite number > 0"),
        (["--port", "70000"], "outside 0..65535"),
        (["--client-id", "x"], "invalid int value"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
async def test_check_bad_usage_exits_2(args: list[str], message: str) -> None:
    code, out, err, _ = await run_cli("check", *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_check_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_CHECK_CLIENT_ID};" in text
    assert f"(default: {DEFAULT_CHECK_TIMEOUT})" in text
    assert "$IB_HOST" in text
    assert "$IB_PORT" in text


# ---------------------------------------------------------------------------------- watch


class Process:
    """A running ``v6-ib`` whose stdout and stderr lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        assert process.stdout is not None
        assert process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(process.stdout, self.out)),
            asyncio.create_task(self._read(process.stderr, self.err)),
        ]

    @staticmethod
    async def _read(stream: asyncio.StreamReader, lines: list[str]) -> None:
        async for line in stream:
            lines.append(line.decode())

    def find(self, pattern: str, stream: str = "out") -> re.Match[str] | None:
        lines = self.out if stream == "out" else self.err
        for line in list(lines):
            if match := re.search(pattern, line):
                return match
        return None

    async def wait(self, timeout: float = 20.0) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await asyncio.gather(*self._readers)


@pytest.fixture
async def spawn() -> AsyncIterator[Any]:
    started: list[Process] = []

    async def start(*args: str, env: Mapping[str, str] | None = None) -> Process:
        process = await asyncio.create_subprocess_exec(
            *command(*args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else clean_env(),
        )
        started.append(Process(process))
        return started[-1]

    yield start
    for process in started:
        await process.kill()


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


CONNECTED_LINE = r"(?<!DIS)CONNECTED .*reconnects {}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_watch_follows_a_reconnect_and_exits_0_on_signal(
    gateway: FakeGateway, spawn: Any, signum: signal.Signals
) -> None:
    watch: Process = await spawn(
        "watch",
        "--port",
        str(gateway.port),
        "--client-id",
        "31,32",
        "--heartbeat-interval",
        str(4 * T),
        "--heartbeat-timeout",
        str(4 * T),
        "--metrics-port",
        "0",
        # The backoff comes from the environment, as in production (IB_* variables).
        env=clean_env(IB_RETRY_DELAY=str(T), IB_MAX_DELAY=str(4 * T)),
    )
    wait = 200 * T
    # (?<!DIS): the DISCONNECTED line before the first attempt must not count.
    await wait_until(lambda: watch.find(CONNECTED_LINE.format(0)) is not None, timeout=wait)
    assert gateway.client_ids == {31}
    await wait_until(lambda: watch.find(r"Serving metrics at (\S+)", "err") is not None, wait)
    url_match = watch.find(r"Serving metrics at (\S+)", "err")
    assert url_match is not None
    assert url_match.group(1).startswith("http://127.0.0.1:")

    await gateway.drop_all()
    await wait_until(lambda: watch.find(CONNECTED_LINE.format(1)) is not None, timeout=wait)
    assert watch.find(r"CONNECTED -> DISCONNECTED: gateway closed the connection", "err")
    body = await asyncio.to_thread(fetch, url_match.group(1))
    assert "v6_ib_reconnects_total 1.0" in body
    assert 'v6_ib_connection_state{state="connected"} 1.0' in body

    watch.process.send_signal(signum)
    assert await watch.wait() == 0
    errors = "".join(watch.err)
    assert "Traceback" not in errors
    assert watch.find(r"STOPPED") is not None
    await wait_until(lambda: not gateway.client_ids, timeout=wait)


async def test_watch_bad_usage_exits_2() -> None:
    code, _, err, _ = await run_cli("watch", "--client-id", "1,x")
    assert code == 2
    assert "comma-separated list of integers" in err


# ------------------------------------------------------------------------ v6-ib gateway's options


def test_gateway_enforces_ibs_pacing_rules_by_default() -> None:
    args = parse_gateway_args(["gateway"])
    assert pacing_rules_from_args(args) == PacingLimits()
    assert (args.realtime_bar_interval, args.historical_latency) == (5.0, 0.0)


def test_gateway_pacing_options() -> None:
    args = parse_gateway_args(
        ["gateway", "--pacing-scale", "0.01", "--historical-limit", "off", "--market-data-lines",
         "3", "--identical-window", "OFF", "--same-contract-limit", "2", "--open-historical-limit",
         "7", "--realtime-bars-limit", "9", "--realtime-bar-interval", "0.5",
         "--historical-latency", "1"]
    )  # fmt: skip
    assert pacing_rules_from_args(args) == PacingLimits(
        scale=0.01, historical=None, market_data_lines=3, identical_window=None,
        same_contract=2, open_historical=7, realtime_bars=9,
    )  # fmt: skip
    assert (args.realtime_bar_interval, args.historical_latency) == (0.5, 1.0)
    assert pacing_rules_from_args(parse_gateway_args(["gateway", "--no-ib-pacing"])) is None


def test_gateway_pacing_option_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_gateway_args(["gateway", "--historical-limit", "many"])
    assert exit_info.value.code == 2
    assert "expected a count or 'off', got 'many'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="historical must be"):
        pacing_rules_from_args(parse_gateway_args(["gateway", "--historical-limit", "0"]))
    with pytest.raises(ConfigError, match="scale must be"):
        pacing_rules_from_args(parse_gateway_args(["gateway", "--pacing-scale", "0"]))
