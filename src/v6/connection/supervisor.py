"""Supervision: the one background task that keeps a connection up.

It loops *connect -> watch -> tear down* until stopped, so whatever ends a connection (the
socket's close event, an unanswered probe, a long cut-off), one task reconnects and two
reconnect loops can never run at once. A fatal error ends it; :meth:`Supervisor.wait_live`
then raises that error to whoever waits for a connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from v6.connection.listeners import cancel_and_wait
from v6.errors import ConnectFailed

if TYPE_CHECKING:
    from loguru import Logger

#: The supervisor task's name (tests and operators find it by this).
TASK_NAME = "v6-ib-supervisor"


class Supervisor:
    """``connect()`` returns once connected (or raises); ``watch()`` returns the reason the
    connection must end; ``teardown(reason)`` ends it."""

    def __init__(
        self,
        *,
        connect: Callable[[], Awaitable[None]],
        watch: Callable[[], Awaitable[str]],
        teardown: Callable[[str], None],
        log: Logger,
    ) -> None:
        self._connect = connect
        self._watch = watch
        self._teardown = teardown
        self._log = log
        self._task: asyncio.Task[None] | None = None
        self.fatal_error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self.fatal_error = None
        self._task = asyncio.create_task(self._run(), name=TASK_NAME)

    async def stop(self) -> bool:
        """Cancel the task and wait for it; False if there was none."""
        task, self._task = self._task, None
        if task is None:
            return False
        await cancel_and_wait(task)
        return True

    async def wait_live(self, live: asyncio.Event, is_connected: Callable[[], bool]) -> None:
        """Wait until ``is_connected()``; raise the fatal error that ended supervision, or
        ConnectFailed if it ended otherwise first (stop() included)."""
        task = self._task  # stop() clears self._task: keep the one this wait depends on
        while not is_connected():
            self._raise_if_fatal()
            if task is not None and task.done():
                raise ConnectFailed("supervision stopped before a connection was made")
            waiter = asyncio.ensure_future(live.wait())
            watched: set[asyncio.Future[Any]] = {waiter}
            if task is not None:
                watched.add(task)
            try:
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    async def _run(self) -> None:
        try:
            while True:
                await self._connect()
                self._teardown(await self._watch())
        except Exception as exc:  # fatal (see v6.connection.retry): surfaced by wait_live()
            self.fatal_error = exc
            self._log.error("Supervision stopped by a fatal error: {!r}", exc)

    def _raise_if_fatal(self) -> None:
        if self.fatal_error is not None:
            raise self.fatal_error
