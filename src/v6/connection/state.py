"""Connection states of IBConnectionManager: an enum, a transition table, and the holder that
enforces it (every change checked, logged once with its reason, and reported)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from v6.errors import IllegalTransition

if TYPE_CHECKING:
    from loguru import Logger


class ConnectionState(Enum):
    DISCONNECTED = "disconnected"  # no connection, none being made (initial, or lost)
    CONNECTING = "connecting"  # an attempt is under way (socket, handshake, start-up sync)
    CONNECTED = "connected"  # API ready and TWS connected to IB
    DEGRADED = "degraded"  # API socket up but TWS reports it is cut off from IB (1100 / 2110)
    BACKING_OFF = "backing_off"  # waiting before the next attempt
    CIRCUIT_OPEN = "circuit_open"  # the breaker refuses attempts until its timeout elapses
    STOPPED = "stopped"  # the user disconnected or stopped supervision

    # Members are singletons compared by identity: hashed by identity too, in C (Enum's own
    # __hash__ is a Python call, paid at every `in LIVE_STATES`).
    __hash__ = object.__hash__


S = ConnectionState
TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    S.DISCONNECTED: frozenset({S.CONNECTING, S.BACKING_OFF, S.CIRCUIT_OPEN, S.STOPPED}),
    S.CONNECTING: frozenset(
        {S.CONNECTED, S.BACKING_OFF, S.CIRCUIT_OPEN, S.DISCONNECTED, S.STOPPED}
    ),
    S.CONNECTED: frozenset({S.DEGRADED, S.DISCONNECTED, S.STOPPED}),
    S.DEGRADED: frozenset({S.CONNECTED, S.DISCONNECTED, S.STOPPED}),
    S.BACKING_OFF: frozenset({S.CONNECTING, S.CIRCUIT_OPEN, S.DISCONNECTED, S.STOPPED}),
    S.CIRCUIT_OPEN: frozenset({S.CONNECTING, S.DISCONNECTED, S.STOPPED}),
    S.STOPPED: frozenset({S.CONNECTING, S.CIRCUIT_OPEN, S.DISCONNECTED}),
}
#: States in which the API connection is up (orders can be sent to TWS).
LIVE_STATES = frozenset({S.CONNECTED, S.DEGRADED})

#: Transitions into these are routine (INFO); into any other state, a WARNING.
_ROUTINE = frozenset({S.CONNECTING, S.CONNECTED, S.STOPPED})

__all__ = [
    "LIVE_STATES",
    "TRANSITIONS",
    "ConnectionState",
    "IllegalTransition",
    "StateHolder",
    "check_transition",
]


def check_transition(old: ConnectionState, new: ConnectionState) -> None:
    if new is not old and new not in TRANSITIONS[old]:
        raise IllegalTransition(f"illegal connection transition {old.name} -> {new.name}")


class StateHolder:
    """The current state. :meth:`move` checks the table, logs ``"<who> OLD -> NEW: reason"``
    and calls ``on_change(old, new, reason)``; ``live`` is set while the state is live."""

    def __init__(
        self,
        log: Logger,
        who: Callable[[], str],
        on_change: Callable[[ConnectionState, ConnectionState, str], None],
        expected: Callable[[ConnectionState], bool] = lambda new: False,
    ) -> None:
        self.current = S.DISCONNECTED
        self._expected = expected  # True: a move into `new` is expected now (maintenance): INFO
        self.live = asyncio.Event()
        self._log = log
        self._who = _Label(who)
        self._on_change = on_change

    def move(self, new: ConnectionState, reason: str) -> None:
        old = self.current
        if new is old:
            return
        check_transition(old, new)
        self.current = new
        if new in LIVE_STATES:
            self.live.set()
        else:
            self.live.clear()
        level = "INFO" if new in _ROUTINE or self._expected(new) else "WARNING"
        self._log.log(level, "{} {.name} -> {.name}: {}", self._who, old, new, reason)
        self._on_change(old, new, reason)


class _Label:
    """Formats as ``who()``: built only when a log handler takes the line."""

    __slots__ = ("_who",)

    def __init__(self, who: Callable[[], str]) -> None:
        self._who = who

    def __format__(self, spec: str) -> str:
        return format(self._who(), spec)
