from __future__ import annotations

import asyncio

from v6.testing.fake_ibc import FakeIbcServer

HOST = "127.0.0.1"


async def talk(port: int, *lines: str) -> list[str]:
    """Send ``lines`` and read until the server closes (or 2 s pass)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write("".join(f"{line}\n" for line in lines).encode())
        await writer.drain()
        async with asyncio.timeout(2.0):
            data = await reader.read()
        return data.decode().splitlines()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_records_commands_answers_ok_and_closes_after_restart() -> None:
    async with FakeIbcServer() as ibc:
        assert ibc.port > 0
        replies = await talk(ibc.port, "RECONNECTDATA", "", "RESTART", "STOP")
        assert replies == ["OK", "OK Restart in progress"]
        assert ibc.commands == ["RECONNECTDATA", "RESTART"]  # STOP came after the close


async def test_answers_error_when_told() -> None:
    async with FakeIbcServer() as ibc:
        ibc.fail_with("Command invalid")
        assert await talk(ibc.port, "EXIT") == ["ERROR Command invalid"]
        ibc.fail_with(None)
        assert await talk(ibc.port, "EXIT") == ["OK Goodbye"]


async def test_banner_and_prompt_like_ibc() -> None:
    async with FakeIbcServer(banner=True, prompt="IBC> ") as ibc:
        replies = await talk(ibc.port, "RECONNECTDATA", "EXIT")
        assert replies == ["INFO IBC Command Server", "IBC> OK", "IBC> OK Goodbye"]


async def test_callback_runs_before_the_reply_and_its_errors_do_not_kill_the_server() -> None:
    seen: list[str] = []

    async def on_command(command: str) -> None:
        seen.append(command)
        if command == "RECONNECTDATA":
            raise RuntimeError("boom")

    async with FakeIbcServer(on_command=on_command) as ibc:
        assert await talk(ibc.port, "RECONNECTDATA", "EXIT") == ["OK", "OK Goodbye"]
        assert seen == ["RECONNECTDATA", "EXIT"]


async def test_stop_closes_open_channels_and_refuses_new_ones() -> None:
    ibc = FakeIbcServer()
    await ibc.start()
    reader, writer = await asyncio.open_connection(HOST, ibc.port)
    writer.write(b"RECONNECTDATA\n")
    assert await reader.readline() == b"OK\n"
    await ibc.stop()
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    try:
        _, w = await asyncio.open_connection(HOST, ibc.port)
    except ConnectionRefusedError:
        return
    w.close()
    await w.wait_closed()
    raise AssertionError("the stopped fake IBC still accepts connections")
