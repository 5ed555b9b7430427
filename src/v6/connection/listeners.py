"""Hooks for the manager's users: listener lists whose callbacks may be sync or async, and the
few asyncio helpers that keep their tasks (and any other task) from leaking.

A callback that raises is logged and never reaches the caller, as in nats.py: a user's bug must
not stop the reconnect loop. An async callback runs as its own task, tracked by
:class:`CallbackTasks` so that ``stop()`` can let it finish briefly and then cancel it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec

from v6.connection.state import ConnectionState

if TYPE_CHECKING:
    from loguru import Logger

P = ParamSpec("P")


class CallbackTasks:
    """The tasks of async callbacks still running; their exceptions are logged, never raised."""

    def __init__(self, log: Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        async def run() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("{} raised; ignored", what)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace: float) -> None:
        """Let the running callbacks finish for up to ``grace`` seconds, then cancel the rest."""
        tasks = list(self._tasks)
        if not tasks:
            return
        await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ListenerRegistry:
    """Every listener list of one owner (a manager), the tasks of their async callbacks and the
    log they report to: a list made with it joins it, so :meth:`remove` reaches them all."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.tasks = CallbackTasks(log)
        self._lists: list[Listeners[...]] = []

    def join(self, listeners: Listeners[...]) -> None:
        self._lists.append(listeners)

    def remove(self, callback: Callable[..., Any]) -> None:
        """Remove ``callback`` from every list that holds it."""
        for listeners in self._lists:
            listeners.remove(callback)


class Listeners(Generic[P]):
    """Callbacks, sync or async. One that raises is logged and never reaches the caller."""

    def __init__(self, name: str, registry: ListenerRegistry) -> None:
        self._name = name
        self._tasks = registry.tasks
        self._log = registry.log
        self._callbacks: list[Callable[P, Any]] = []
        registry.join(self)

    def add(self, callback: Callable[P, Any]) -> Callable[P, Any]:
        self._callbacks.append(callback)
        return callback

    def remove(self, callback: Callable[..., Any]) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def fire(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for callback in tuple(self._callbacks):  # a callback may add or remove callbacks
            try:
                result = callback(*args, **kwargs)
            except Exception:
                self._log.exception("{} callback {!r} raised; ignored", self._name, callback)
                continue
            if result is not None and inspect.isawaitable(result):
                self._tasks.spawn(result, f"{self._name} callback {callback!r}")


class Hooks:
    """The connection's public hook lists (the manager's ``on_*`` methods add to them).

    A new hook is one more list here (or one made with :attr:`registry` in a participant, as
    v6.orders does), one ``on_*`` method on the manager, and one ``fire`` where it happens."""

    def __init__(self, log: Logger) -> None:
        self.registry = registry = ListenerRegistry(log)
        self.connected = Listeners[[bool]]("on_connected", registry)
        self.disconnected = Listeners[[str]]("on_disconnected", registry)
        self.state_change = Listeners[[ConnectionState, ConnectionState, str]](
            "on_state_change", registry
        )
        self.resubscribe = Listeners[[]]("resubscribe", registry)
        self.heartbeat = Listeners[[float]]("on_heartbeat", registry)


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, discarding its outcome.

    A cancel aimed at the caller while it waits is not swallowed: the caller's own
    ``cancelling()`` tells it apart from the CancelledError of the task it cancelled."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        pass  # the task's own failure while unwinding is not the caller's concern
