"""A tiny fake of IBC's command server (asyncio, 127.0.0.1) for tests of the IBC escalation.

It records every command line, answers ``OK <text>`` (or ``ERROR <text>`` when told to), and closes
the channel after ``RESTART`` and ``EXIT`` as IBC does. ``on_command`` (sync or async) runs before
the reply, so a test can make ``RESTART`` really restart a :class:`~v6.testing.FakeGateway`::

    async def restart(command: str) -> None:
        if command == "RESTART":
            await gw.stop()
            await gw.start()

    async with FakeIbcServer(on_command=restart) as ibc: ...
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Final

from loguru import logger

from v6.testing.gateway import DEFAULT_HOST

CommandCallback = Callable[[str], Awaitable[None] | None]
_CLOSING_COMMANDS: Final = frozenset({"RESTART", "EXIT", "STOP"})
_REPLIES: Final = {"RESTART": "Restart in progress", "EXIT": "Goodbye", "STOP": "Shutting down"}


class FakeIbcServer:
    """``async with FakeIbcServer() as ibc``: :attr:`port` is bound, :attr:`commands` recorded."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        on_command: CommandCallback | None = None,
        banner: bool = False,
        prompt: str = "",
    ) -> None:
        self.host = host
        self._port = port
        self.on_command = on_command
        self.banner = banner  # IBC's "INFO IBC Command Server" line (off by default, as in IBC)
        self.prompt = prompt  # IBC's CommandPrompt: at connect and after each reply, no newline
        self.commands: list[str] = []
        self._error: str | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self._port

    def fail_with(self, text: str | None) -> None:
        """Answer ``ERROR <text>`` from now on (``None``: back to ``OK``)."""
        self._error = text

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self._port)
            self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    async def __aenter__(self) -> FakeIbcServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            if self.banner:
                writer.write(b"INFO IBC Command Server\n")
            writer.write(self.prompt.encode())
            while line := await reader.readline():
                command = line.decode("utf-8", errors="replace").strip()
                if not command:
                    continue
                await self._run(command, writer)
                if command.upper() in _CLOSING_COMMANDS:
                    break
                writer.write(self.prompt.encode())
        except (OSError, asyncio.CancelledError):
            # the client went away, or stop() cancelled us: end quietly (asyncio's done-callback
            # for start_server handlers calls task.exception(), which raises on a cancelled task)
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _run(self, command: str, writer: asyncio.StreamWriter) -> None:
        self.commands.append(command)
        if self.on_command is not None:
            try:
                outcome = self.on_command(command)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("fake IBC: on_command callback failed")
        if self._error is not None:
            reply = f"ERROR {self._error}"
        else:
            reply = f"OK {_REPLIES.get(command.upper(), '')}".rstrip()
        writer.write(f"{reply}\n".encode())
        await writer.drain()
