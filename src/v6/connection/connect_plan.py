"""The lifecycle of a connect plan, apart from what a plan does (issue 11's race rules).

* One plan at a time runs as its own task (:data:`CONNECT_TASK_NAME`), so :meth:`ConnectPlans.stop`
  can end it without cancelling the callers, who get :class:`~v6.errors.ConnectAborted` instead.
* Each stop is counted: a caller that waited for the lock, or woke up connected, across a stop is
  aborted too.
* :class:`LoopBinding`: a manager belongs to the first event loop that uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from v6.connection.listeners import cancel_and_wait
from v6.connection.supervisor import Supervisor
from v6.errors import ConnectAborted, WrongEventLoop

#: The name of the task that runs one connect plan (stop() cancels it).
CONNECT_TASK_NAME = "v6-ib-connect"

Plan = Callable[[], Coroutine[Any, Any, None]]


class ConnectPlans:
    """Runs connect plans one at a time; :meth:`stop` ends the one under way (and supervision)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._plan: asyncio.Task[None] | None = None  # the connect plan under way
        self._stops = 0  # stop() calls so far: a connect waiting since before one is aborted
        self._stopping = 0  # stop() calls under way

    @property
    def stopping(self) -> bool:
        """A stop() is under way (a plan cancelled now is the stop's, not its caller's)."""
        return self._stopping > 0

    @property
    def running(self) -> bool:
        return self._plan is not None and not self._plan.done()

    async def run(self, plan: Plan, *, needed: Callable[[], bool]) -> None:
        """Run ``plan()`` as its own task unless ``needed()`` (asked under the lock) says no;
        concurrent callers share it. A cancelled caller cancels the plan too."""
        stops = self._stops
        async with self._lock:
            if self._stops != stops:
                raise ConnectAborted("stopped while waiting to connect")
            if not needed():
                return
            task = asyncio.create_task(plan(), name=CONNECT_TASK_NAME)
            self._plan = task
            try:
                await task
            except asyncio.CancelledError:
                caller = asyncio.current_task()
                if task.cancelled() and caller is not None and not caller.cancelling():
                    raise ConnectAborted("stopped while connecting") from None
                raise
            finally:
                if self._plan is task:
                    self._plan = None
            if self._stops != stops:  # connected, then stop() closed it before we woke
                raise ConnectAborted("stopped just after connecting")

    async def stop(self, supervisor: Supervisor) -> None:
        """Stop supervision and the plan under way, until neither runs (either may restart the
        other while the first is awaited)."""
        self._stops += 1
        self._stopping += 1
        try:
            while supervisor.running or self.running:
                await supervisor.stop()
                if self._plan is not None and not self._plan.done():
                    await cancel_and_wait(self._plan)
        finally:
            self._stopping -= 1


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
