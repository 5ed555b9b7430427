from __future__ import annotations

import asyncio

import pytest

from tests.helpers import TIME_UNIT, FakeClock
from v6.connection.defaults import DEFAULT_IBC_RESTART_AFTER
from v6.connection.ibc import (
    IbcEscalation,
    IbcReply,
    send_ibc_command,
)
from v6.connection.readiness import ProbeOutcome, probe_readiness
from v6.errors import ConfigError
from v6.testing import FakeGateway
from v6.testing.fake_ibc import FakeIbcServer

T = TIME_UNIT
HOST = "127.0.0.1"


async def test_restart_is_acknowledged() -> None:
    async with FakeIbcServer() as ibc:
        reply = await send_ibc_command(HOST, ibc.port)
        assert reply == IbcReply(ok=True, text="Restart in progress")
        assert ibc.commands == ["RESTART"]


async def test_error_reply_is_not_ok() -> None:
    async with FakeIbcServer() as ibc:
        ibc.fail_with("RESTART is not valid now")
        reply = await send_ibc_command(HOST, ibc.port, "restart")
        assert reply == IbcReply(ok=False, text="RESTART is not valid now")


async def test_banner_and_prompt_are_skipped() -> None:
    async with FakeIbcServer(banner=True, prompt="IBC> ") as ibc:
        assert await send_ibc_command(HOST, ibc.port, "RECONNECTDATA") == IbcReply(True, "")


async def test_no_server_is_a_failed_reply_not_an_exception() -> None:
    ibc = FakeIbcServer()
    await ibc.start()
    port = ibc.port
    await ibc.stop()
    reply = await send_ibc_command(HOST, port, timeout=40 * T)
    assert not reply.ok
    assert "ConnectionRefusedError" in reply.text


async def test_server_that_never_replies_times_out() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # read the command, answer nothing, wait for the client's close
        writer.close()

    server = await asyncio.start_server(hold, HOST, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reply = await send_ibc_command(HOST, port, timeout=4 * T)
        assert not reply.ok
        assert "no reply to RESTART" in reply.text
    finally:
        server.close()
        await server.wait_closed()


async def test_server_that_closes_without_reply() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # read it first: closing with unread data would send a reset
        writer.close()

    server = await asyncio.start_server(slam, HOST, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reply = await send_ibc_command(HOST, port, timeout=40 * T)
        assert not reply.ok
        assert "closed without a reply" in reply.text
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, r"ibc_command_port must be in \[1, 65535\]"),
        ({"port": 1, "command": "REBOOT"}, "ibc command: 'REBOOT' is not one of"),
        ({"port": 1, "command": "RESTART\nSTOP"}, "is not one of"),
        ({"port": 1, "timeout": 0}, r"ibc_timeout must be in \(0, inf\)"),
    ],
)
async def test_invalid_arguments_raise_config_error(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        await send_ibc_command(HOST, **kwargs)  # type: ignore[arg-type]


# ---- escalation policy (pure)


def test_restart_once_per_stuck_episode(clock: FakeClock) -> None:
    policy = IbcEscalation(restart_after=120, clock=clock)
    assert policy.restart_after == DEFAULT_IBC_RESTART_AFTER
    assert not policy.observe(ProbeOutcome.SILENT)
    clock.advance(119.9)
    assert not policy.observe(ProbeOutcome.CLOSED)
    assert policy.stuck_for() == pytest.approx(119.9)
    clock.advance(0.1)
    assert policy.observe(ProbeOutcome.SILENT)
    clock.advance(500)
    assert not policy.observe(ProbeOutcome.GARBAGE)  # once per episode
    assert policy.restarts_requested == 1
    assert not policy.observe(ProbeOutcome.REFUSED)  # the gateway went down: episode over
    assert policy.stuck_for() == 0
    assert not policy.observe(ProbeOutcome.SILENT)  # a new episode starts its own count
    clock.advance(120)
    assert policy.observe(ProbeOutcome.SILENT)
    assert policy.restarts_requested == 2


def test_an_answer_ends_the_episode(clock: FakeClock) -> None:
    policy = IbcEscalation(restart_after=10, clock=clock)
    policy.observe(ProbeOutcome.SILENT)
    clock.advance(9)
    policy.observe(ProbeOutcome.ANSWERED)
    clock.advance(9)
    assert not policy.observe(ProbeOutcome.SILENT)
    assert policy.restarts_requested == 0


def test_refused_ports_never_trigger_a_restart(clock: FakeClock) -> None:
    policy = IbcEscalation(restart_after=1, clock=clock)
    for _ in range(10):
        clock.advance(5)
        assert not policy.observe(ProbeOutcome.REFUSED)
        assert not policy.observe(ProbeOutcome.CONNECT_TIMEOUT)


@pytest.mark.parametrize("value", [0, -1, float("inf")])
def test_restart_after_must_be_positive(value: float) -> None:
    with pytest.raises(ConfigError, match="ibc_restart_after"):
        IbcEscalation(restart_after=value)


# ---- end to end: a stuck gateway restarted through (fake) IBC


async def test_stuck_gateway_is_restarted_through_ibc(clock: FakeClock) -> None:
    async with FakeGateway(port=0) as gw:
        gw.handshake_fault("silent")

        async def restart(command: str) -> None:
            if command == "RESTART":
                gw.handshake_fault(None)
                await gw.stop()
                await gw.start()

        async with FakeIbcServer(on_command=restart) as ibc:
            policy = IbcEscalation(restart_after=60, clock=clock)
            for _ in range(3):  # three silent probes, 30 s apart on the fake clock
                result = await probe_readiness(HOST, gw.port, timeout=2 * T)
                assert result.outcome is ProbeOutcome.SILENT
                send = policy.observe(result.outcome)
                clock.advance(30)
            assert send
            reply = await send_ibc_command(HOST, ibc.port, timeout=40 * T)
            policy.record_reply(reply)
            assert reply.ok
            assert ibc.commands == ["RESTART"]
            after = await probe_readiness(HOST, gw.port, timeout=40 * T)
            assert after.ready
            assert not policy.observe(after.outcome)
            assert policy.restarts_requested == 1
