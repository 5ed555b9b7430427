"""Connection states of IBConnectionManager as an enum plus a transition table (pure)."""

from __future__ import annotations

from enum import Enum

from v6.errors import IllegalTransition


class ConnectionState(Enum):
    DISCONNECTED = "disconnected"  # no connection, none being made (initial, or lost)
    CONNECTING = "connecting"  # an attempt is under way (socket, handshake, start-up sync)
    CONNECTED = "connected"  # API ready and TWS connected to IB
    DEGRADED = "degraded"  # API socket up but TWS reports it is cut off from IB (1100 / 2110)
    BACKING_OFF = "backing_off"  # waiting before the next attempt
    CIRCUIT_OPEN = "circuit_open"  # the breaker refuses attempts until its timeout elapses
    STOPPED = "stopped"  # the user disconnected or stopped supervision


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

__all__ = ["LIVE_STATES", "TRANSITIONS", "ConnectionState", "IllegalTransition", "check_transition"]


def check_transition(old: ConnectionState, new: ConnectionState) -> None:
    if new is not old and new not in TRANSITIONS[old]:
        raise IllegalTransition(f"illegal connection transition {old.name} -> {new.name}")
