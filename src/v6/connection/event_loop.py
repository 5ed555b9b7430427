"""A connection belongs to the first event loop that uses it."""

from __future__ import annotations

import asyncio

from v6.errors import WrongEventLoop


class LoopBinding:
    """Binds to the first running loop; refuses any other at once (its sockets, tasks and locks
    would be the first loop's, and a connect would only time out)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def check(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            ended = "closed" if self._loop.is_closed() else "still open"
            raise WrongEventLoop(
                f"this IBConnectionManager belongs to the event loop it was first used in "
                f"({ended}); make a new manager for each event loop (each asyncio.run())"
            )
