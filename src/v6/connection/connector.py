"""The connect loop: carries out the reconnect planner's decisions with the link, one plan at a
time.

The planner decides (try now with id N / sleep / give up), the link connects; this loop is the
asyncio in between. It also holds the :class:`Session` of the attempt under way, so messages
TWS sends during the handshake (farm notices) land in the session they belong to.

Waits and attempts go through :class:`~v6.connection.restarts.Restarts`: a wait probes the
gateway's readiness and ends early when it answers again, and an attempt after a failure starts
only once the gateway answers the API hello (see that module for the rules).

:class:`ConnectPlans` runs plans one at a time (issue 11's race rules), each in its caller's task (a
task of its own costs loop turns on every connect): :meth:`ConnectPlans.stop` cancels it there
and the caller gets :class:`~v6.errors.ConnectAborted` instead; each stop is counted, so a caller
that waited for another plan, or woke up connected, across a stop is aborted too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, assert_never

from v6.connection.health import ConnectionStats
from v6.connection.link import Link
from v6.connection.planner import Decision, GiveUp, ReconnectPlanner, Sleep, TryNow
from v6.connection.restarts import Restarts
from v6.connection.restarts import SleepFunc as SleepFunc
from v6.connection.retry import Verdict, attempt_label
from v6.connection.session import Session
from v6.connection.settings import ConnectionSettings
from v6.connection.state import ConnectionState
from v6.connection.supervisor import Supervisor
from v6.errors import ConnectAborted

if TYPE_CHECKING:
    from loguru import Logger

Plan = Callable[[], Coroutine[Any, Any, None]]
Classify = Callable[[BaseException], Verdict]
SetState = Callable[[ConnectionState, str], None]


class Connector:
    """Runs one plan at a time until connected; the caller serialises :meth:`run`.

    ``set_state(state, reason)`` is told every step, ``note_error(text)`` every failure.
    """

    def __init__(
        self,
        planner: ReconnectPlanner,
        link: Link,
        *,
        classify: Classify,
        stats: ConnectionStats,
        restarts: Restarts,
        set_state: SetState,
        note_error: Callable[[str], None],
        log: Logger,
    ) -> None:
        self._planner = planner
        self._link = link
        self._classify = classify
        self._stats = stats
        self._restarts = restarts
        self._set_state = set_state
        self._note_error = note_error
        self._log = log
        #: The attempt under way, or the live connection it made; None once dropped.
        self.session: Session | None = None
        self._check_ready = False  # the next attempt follows a failed one

    async def run(
        self, settings: ConnectionSettings, *, max_retries: int | None, after_loss: bool
    ) -> None:
        """Connect (``self.session`` is then the new one) or raise the planner's error."""
        self._planner.begin(max_retries=max_retries, after_loss=after_loss)
        # A plan's first attempt goes out as before (after a loss too: a dropped socket says
        # little about the gateway); attempts after a failure wait for a readiness answer.
        self._check_ready = False
        while True:  # each step carried out here, not in a coroutine of its own: the connect
            # resumes several times per attempt, through every frame of its await chain
            decision: Decision = self._planner.next()
            match decision:
                case TryNow(client_id, reason):
                    if self._check_ready and not await self._gateway_ready(settings):
                        continue
                    self._set_state(ConnectionState.CONNECTING, reason)
                    self._attempt_starts()
                    try:
                        await self._link.connect(client_id, settings)
                    except asyncio.CancelledError:
                        self._attempt_abandoned()
                        raise
                    except Exception as exc:
                        self._failed(exc)
                        continue
                    self._attempt_succeeded()
                    return
                case Sleep(seconds, reason, state):
                    self._set_state(state, reason)
                    if await self._restarts.wait(seconds):
                        self._planner.gateway_ready()
                case GiveUp(error, reason, state):
                    self._set_state(state, reason)
                    raise error
                case _:
                    assert_never(decision)

    async def _gateway_ready(self, settings: ConnectionSettings) -> bool:
        """True if the attempt may start; else the probe's answer stands in for its failure."""
        result = await self._restarts.ready()
        if result is None or result.ready:
            return True
        # The attempt ends at the hello: recorded as the failure a full one would have met.
        self._failed(result.as_error(f"{settings.host}:{settings.port}"))
        return False

    def _attempt_starts(self) -> None:
        self._restarts.attempted()
        self._check_ready = True
        self.session = Session()

    def _attempt_abandoned(self) -> None:
        self.session = None
        self._planner.abandoned()

    def _attempt_succeeded(self) -> None:
        self._planner.succeeded()
        self._check_ready = False
        self._stats.count_attempt("ok")

    def _failed(self, exc: Exception) -> None:
        """An attempt failed (or the readiness probe answered for one)."""
        self.session = None
        verdict = self._classify(exc)
        error = f"{type(exc).__name__}: {exc}"
        self._note_error(error)
        self._stats.count_attempt(attempt_label(exc, verdict))
        self._log.debug("Connect attempt failed: {}", error)  # the state line says it
        expected = self._restarts.expected()
        tried = self._planner.client_id
        self._planner.failed(exc, verdict, expected=expected)
        if self._planner.client_id != tried:
            self._log.warning("Client id {} in use; next is {}", tried, self._planner.client_id)


class _Running:
    """The plan under way: the task it runs in, and when it is over."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.aborted = False  # stop() cancelled it
        self._over: asyncio.Future[None] | None = None  # made only if stop() waits for it

    def over(self) -> asyncio.Future[None]:
        """Done once the plan is over."""
        if self._over is None:
            self._over = self.task.get_loop().create_future()
        return self._over

    def end(self) -> None:
        if self._over is not None:
            self._over.set_result(None)


class ConnectPlans:
    """Runs connect plans one at a time; :meth:`stop` ends the one under way (and supervision)."""

    def __init__(self) -> None:
        self._plan: _Running | None = None  # the connect plan under way (at most one)
        self._stops = 0  # stop() calls so far: a connect waiting since before one is aborted
        self._stopping = 0  # stop() calls under way

    @property
    def stopping(self) -> bool:
        """A stop() is under way (a plan cancelled now is the stop's, not its caller's)."""
        return self._stopping > 0

    @property
    def running(self) -> bool:
        return self._plan is not None

    async def run(self, plan: Plan, *, needed: Callable[[], bool]) -> None:
        """Run ``plan()`` in the caller's task unless ``needed()`` (asked once no other plan
        runs) says no; concurrent callers wait for the plan under way, then ask. A cancelled
        caller cancels the plan too. (The plan under way is the lock: an ``asyncio.Lock``
        would cost every connect four calls into asyncio for a wait that is rare.)"""
        stops = self._stops
        while self._plan is not None:
            await asyncio.shield(self._plan.over())
        if self._stops != stops:
            raise ConnectAborted("stopped while waiting to connect")
        if not needed():
            return
        task = asyncio.current_task()
        assert task is not None  # awaited, so inside a task
        cancelling = task.cancelling()
        running = self._plan = _Running(task)  # no await since the loop's last check
        try:
            await plan()
        except asyncio.CancelledError:
            # stop()'s cancel becomes ConnectAborted; the caller's own cancel stays one
            if running.aborted and task.uncancel() <= cancelling:
                raise ConnectAborted("stopped while connecting") from None
            raise
        finally:
            self._plan = None
            running.end()
        if running.aborted and task.cancelling() > cancelling:
            task.uncancel()  # the plan finished without seeing stop()'s cancel
            raise ConnectAborted("stopped while connecting")
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
                running = self._plan
                if running is not None:
                    if not running.aborted:  # once: every cancel would need its uncancel
                        running.aborted = True
                        running.task.cancel()
                    await asyncio.shield(running.over())
        finally:
            self._stopping -= 1
