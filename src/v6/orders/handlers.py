"""The ``on_fill`` listener list, which says when a fill's handlers are done with it.

A fill is acknowledged in the journal only after every ``on_fill`` handler returned; for a
coroutine function, after its task completed. So a process that dies inside a handler, or a
``stop()`` that cancels an async one, leaves the fill unacknowledged and it is delivered again
after the restart (at least once across a crash; the exec id is the idempotency key). A handler
that raises is the application's bug: logged with the exec id, counted in :attr:`errors`, and
the fill is acknowledged all the same (never retried: it would raise again).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from ib_async import Fill, Trade

from v6.connection.listeners import ListenerRegistry, Listeners, cancel_and_wait


class FillHandlers(Listeners[[Trade, Fill]]):
    """``on_fill`` callbacks; :meth:`deliver` calls ``done()`` once all of them finished."""

    def __init__(self, registry: ListenerRegistry) -> None:
        super().__init__("on_fill", registry)
        self.errors = 0  # handler calls that raised
        self._running: set[asyncio.Future[Any]] = set()

    def deliver(self, trade: Trade, fill: Fill, done: Callable[[], None]) -> None:
        """Call every handler; ``done()`` once each returned (or its task completed), unless
        an async one was cancelled (then the fill stays unacknowledged)."""
        exec_id = fill.execution.execId
        waiting: dict[asyncio.Future[Any], Callable[..., Any]] = {}
        for callback in tuple(self._callbacks):  # a callback may add or remove callbacks
            try:
                result = callback(trade, fill)
            except Exception:
                self._failed(exec_id, callback)
                continue
            if result is not None and inspect.isawaitable(result):
                waiting[asyncio.ensure_future(result)] = callback
        if not waiting:
            done()
            return

        def finished(task: asyncio.Future[Any]) -> None:
            self._running.discard(task)
            callback = waiting.pop(task)
            if task.cancelled():
                return  # never acknowledged: delivered again after a restart
            failure = task.exception()
            if failure is not None:
                self._failed(exec_id, callback, failure)
            if not waiting and not cancelled(pending):
                done()

        pending = list(waiting)
        for task in pending:
            self._running.add(task)
            task.add_done_callback(finished)

    def _failed(self, exec_id: str, callback: Any, exc: BaseException | None = None) -> None:
        self.errors += 1
        log = self._log.opt(exception=exc) if exc is not None else self._log.opt(exception=True)
        log.error("on_fill handler {!r} raised for exec id {}; not retried", callback, exec_id)

    async def drain(self, grace: float) -> None:
        """Let running async handlers finish for up to ``grace`` seconds, then cancel the rest
        (their fills stay unacknowledged: delivered again at the next start)."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=grace)
        for task in list(self._running):
            await cancel_and_wait(task)

def cancelled(tasks: list[asyncio.Future[Any]]) -> bool:
    return any(task.cancelled() for task in tasks)
