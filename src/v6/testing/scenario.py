"""The one "inject a fault, time the recovery" harness, shared by the demo, the fault matrix and
the benchmarks.

* :class:`Timeline` records what a manager (and its ``ib_async`` client) did, every entry stamped
  by one clock: state changes, connects, disconnects, resubscribes, answered heartbeats, TWS
  errors, ticks, and the scenario's own marks. :meth:`Timeline.attach` hooks a manager;
  :meth:`Timeline.wait` waits for an entry (woken by the entry itself, no polling), and
  :meth:`Timeline.listen` runs a callback at the moment an entry is recorded (for benchmarks that
  must react in the same callback, e.g. start a stall the instant a connect completes).
* :func:`wait_until` / :func:`poll`: the one polling helper, for conditions that are not entries.
* :class:`Step` + :func:`measure`: inject, detect, hold, clear, recover, resume, each moment a
  timestamp from the timeline's clock; :class:`Measured` turns them into durations.

Figures are read from the recorded timestamps, never from when a waiter happened to wake up.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, TypeVar

from v6.connection.state import LIVE_STATES, ConnectionState

if TYPE_CHECKING:
    from ib_async import Ticker

    from v6.manager import IBConnectionManager

_T = TypeVar("_T")

#: How often :func:`poll` looks at its condition (s). Figures never come from this polling.
DEFAULT_POLL_INTERVAL: Final = 0.005


class Kind(Enum):
    """What a timeline entry records."""

    STATE = "state"  # value: the new ConnectionState, old: the one left, text: the reason
    CONNECTED = "connected"  # value: True for a reconnect
    DISCONNECTED = "disconnected"  # text: the reason
    RESUBSCRIBE = "resubscribe"
    HEARTBEAT = "heartbeat"  # value: the probe's round trip (s)
    ERROR = "error"  # value: the TWS code, text: its message
    TICK = "tick"  # value: the conIds of the tickers that changed
    MARK = "mark"  # text: what the scenario did (fault injected, cleared, ...)


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    kind: Kind
    value: Any = None
    text: str = ""
    old: ConnectionState | None = None


Match = Callable[[Entry], bool]


def _all(entry: Entry) -> bool:
    return True


class Timeline:
    """Timestamped entries, in the order they happened, from one ``clock`` (default: the running
    event loop's ``time()``)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.now = clock if clock is not None else asyncio.get_running_loop().time
        self.entries: list[Entry] = []
        self._listeners: list[Callable[[Entry], None]] = []

    # ---- recording

    def record(self, kind: Kind, value: Any = None, text: str = "", **extra: Any) -> Entry:
        entry = Entry(self.now(), kind, value, text, **extra)
        self.entries.append(entry)
        for listener in list(self._listeners):
            listener(entry)
        return entry

    def mark(self, text: str) -> float:
        """Record what the scenario does now; returns the timestamp."""
        return self.record(Kind.MARK, text=text).at

    def listen(self, callback: Callable[[Entry], None]) -> Callable[[], None]:
        """Call ``callback(entry)`` for each new entry, synchronously; returns the remover."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def attach(self, manager: IBConnectionManager) -> Callable[[], None]:
        """Record every hook of ``manager`` and its client's errors and ticks; returns detach."""
        ib = manager.ib
        hooks: list[Callable[..., Any]] = [
            manager.on_state_change(
                lambda old, new, reason: self.record(Kind.STATE, new, reason, old=old)
            ),
            manager.on_connected(lambda reconnect: self.record(Kind.CONNECTED, reconnect)),
            manager.on_disconnected(lambda reason: self.record(Kind.DISCONNECTED, text=reason)),
            manager.add_resubscribe(lambda: self.record(Kind.RESUBSCRIBE)),
            manager.on_heartbeat(lambda rtt: self.record(Kind.HEARTBEAT, rtt)),
        ]

        def on_error(req_id: int, code: int, text: str, contract: object) -> None:
            self.record(Kind.ERROR, code, text)

        def on_tickers(tickers: set[Ticker]) -> None:
            con_ids = {t.contract.conId for t in tickers if t.contract is not None}
            self.record(Kind.TICK, frozenset(con_ids))

        ib.errorEvent += on_error
        ib.pendingTickersEvent += on_tickers

        def detach() -> None:
            for hook in hooks:
                manager.remove_listener(hook)
            ib.errorEvent -= on_error
            ib.pendingTickersEvent -= on_tickers

        return detach

    # ---- reading

    def select(
        self, kind: Kind, *, since: int = 0, after: float | None = None, where: Match = _all
    ) -> list[Entry]:
        """Entries of ``kind`` from index ``since`` on, at or after ``after``, matching."""
        return [e for e in self.entries[since:] if _matches(e, kind, after, where)]

    def first(
        self, kind: Kind, *, since: int = 0, after: float | None = None, where: Match = _all
    ) -> Entry | None:
        return next(
            (e for e in self.entries[since:] if _matches(e, kind, after, where)),
            None,
        )

    def states(self, since: int = 0) -> list[Entry]:
        return self.select(Kind.STATE, since=since)

    def entered(self, state: ConnectionState, after: float | None = None) -> float | None:
        """When the manager first moved into ``state`` (at or after ``after``)."""
        found = self.first(Kind.STATE, after=after, where=lambda e: e.value is state)
        return None if found is None else found.at

    def left(
        self, states: Collection[ConnectionState] = LIVE_STATES, after: float | None = None
    ) -> float | None:
        """When the manager first moved out of ``states`` (default: the live ones)."""
        found = self.first(Kind.STATE, after=after, where=lambda e: e.value not in states)
        return None if found is None else found.at

    def at(self, kind: Kind, after: float | None = None, where: Match = _all) -> float | None:
        found = self.first(kind, after=after, where=where)
        return None if found is None else found.at

    def error(self, code: int, after: float | None = None) -> float | None:
        return self.at(Kind.ERROR, after, lambda e: e.value == code)

    async def wait(
        self,
        kind: Kind,
        timeout: float,
        *,
        since: int = 0,
        after: float | None = None,
        where: Match = _all,
    ) -> Entry:
        """The first matching entry, recorded already or to come; TimeoutError after
        ``timeout`` seconds. Woken by the entry itself: nothing polls."""
        found = self.first(kind, since=since, after=after, where=where)
        if found is not None:
            return found
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()

        def check(entry: Entry) -> None:
            if not future.done() and _matches(entry, kind, after, where):
                future.set_result(entry)

        remove = self.listen(check)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"no {kind.value} entry within {timeout:.2f}s") from None
        finally:
            remove()


def _matches(entry: Entry, kind: Kind, after: float | None, where: Match) -> bool:
    return entry.kind is kind and (after is None or entry.at >= after) and where(entry)


# -------------------------------------------------------------------------------- polling


async def poll(
    observe: Callable[[], _T | None], timeout: float, *, step: float = DEFAULT_POLL_INTERVAL
) -> _T | None:
    """Call ``observe()`` every ``step`` s until it returns neither None nor False; return that
    value, or None once ``timeout`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (found := observe()) is None or found is False:
        if loop.time() > deadline:
            return None
        await asyncio.sleep(step)
    return found


async def wait_until(
    condition: Callable[[], _T | None],
    timeout: float,
    *,
    step: float = DEFAULT_POLL_INTERVAL,
    what: str = "condition",
) -> _T:
    """:func:`poll`, raising ``TimeoutError`` naming ``what`` when the time runs out."""
    found = await poll(condition, timeout, step=step)
    if found is None:
        raise TimeoutError(f"{what} not reached within {timeout:.2f}s")
    return found


async def wait_true(
    condition: Callable[[], object],
    timeout: float,
    *,
    step: float = DEFAULT_POLL_INTERVAL,
    what: str = "condition",
) -> None:
    """Wait until ``condition()`` is truthy (an empty Counter or a 0 is not reached, unlike
    :func:`poll`, which waits only while the value is None or False); ``TimeoutError`` naming
    ``what`` when the time runs out."""
    await wait_until(lambda: True if condition() else None, timeout, step=step, what=what)


# -------------------------------------------------------------------------------- one step

Action = Callable[[], Awaitable[Any] | Any]
#: ``detector(timeline, since)``: when the awaited thing happened (at or after ``since``), or
#: None while it has not.
Detector = Callable[[Timeline, float], float | None]


def left_live(timeline: Timeline, since: float) -> float | None:
    """The manager left CONNECTED / DEGRADED (a reconnect begins)."""
    return timeline.left(LIVE_STATES, since)


def entered(state: ConnectionState) -> Detector:
    return lambda timeline, since: timeline.entered(state, since)


def error(code: int) -> Detector:
    return lambda timeline, since: timeline.error(code, since)


def condition(check: Callable[[], bool]) -> Detector:
    """Detected when ``check()`` is first seen true (a polled condition, not an entry)."""
    return lambda timeline, since: timeline.now() if check() else None


reconnected = entered(ConnectionState.CONNECTED)


def ticks_after_resubscribe(timeline: Timeline, since: float) -> float | None:
    """The first tick after the first resubscribe (both at or after ``since``)."""
    resubscribed = timeline.at(Kind.RESUBSCRIBE, since)
    return None if resubscribed is None else timeline.at(Kind.TICK, resubscribed)


@dataclass(frozen=True)
class Step:
    """One fault: ``inject``; wait until ``detect``; keep the fault ``hold`` s from the injection
    and ``hold_after_detect`` s from the detection; ``clear`` it; wait until ``recover`` (from
    the detection) and ``resume`` (from the recovery)."""

    name: str
    inject: Action
    detect: Detector
    hold: float = 0.0
    hold_after_detect: float = 0.0
    clear: Action | None = None
    recover: Detector | None = reconnected
    resume: Detector | None = None
    note: str = ""


@dataclass(frozen=True)
class Measured:
    """When each moment of a :class:`Step` happened (timeline clock; None: it did not)."""

    name: str
    injected: float
    detected: float | None
    cleared: float  # the injection itself for a fault that is never cleared
    recovered: float | None
    resumed: float | None
    note: str = ""

    @property
    def lasted(self) -> float:
        return self.cleared - self.injected

    @property
    def detected_after(self) -> float | None:
        return None if self.detected is None else self.detected - self.injected

    @property
    def recovered_after(self) -> float | None:
        """From the end of the fault."""
        return None if self.recovered is None else self.recovered - self.cleared

    @property
    def resumed_after(self) -> float | None:
        """From the end of the fault."""
        return None if self.resumed is None else self.resumed - self.cleared


async def _act(action: Action) -> None:
    result = action()
    if inspect.isawaitable(result):
        await result


async def _sleep_until(timeline: Timeline, moment: float) -> None:
    remaining = moment - timeline.now()
    if remaining > 0:
        await asyncio.sleep(remaining)


async def _after(
    timeline: Timeline, detector: Detector | None, since: float | None, timeout: float
) -> float | None:
    if detector is None or since is None:
        return None
    return await poll(lambda: detector(timeline, since), timeout)


async def measure(step: Step, timeline: Timeline, timeout: float) -> Measured:
    """Run ``step``; each wait gives up after ``timeout`` s (that moment is then None). The
    clear runs even when nothing was detected, so the next step starts from a healthy gateway."""
    injected = timeline.mark(f"inject {step.name}")
    await _act(step.inject)
    detected = await _after(timeline, step.detect, injected, timeout)
    await _sleep_until(timeline, injected + step.hold)
    if detected is not None:
        await _sleep_until(timeline, detected + step.hold_after_detect)
    cleared = injected
    if step.clear is not None:
        cleared = timeline.mark(f"clear {step.name}")
        await _act(step.clear)
    recovered = await _after(timeline, step.recover, detected, timeout)
    resumed = await _after(timeline, step.resume, recovered, timeout)
    return Measured(step.name, injected, detected, cleared, recovered, resumed, step.note)
