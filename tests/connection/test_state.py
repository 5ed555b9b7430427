from __future__ import annotations

import pytest

from tests.helpers import log_lines
from v6.connection.state import (
    LIVE_STATES,
    TRANSITIONS,
    ConnectionState,
    IllegalTransition,
    check_transition,
)

S = ConnectionState


def test_every_state_has_a_row_and_can_reach_connected() -> None:
    assert set(TRANSITIONS) == set(S)
    for state in S:
        seen, frontier = {state}, [state]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert S.CONNECTED in seen or state is S.CONNECTED


def test_illegal_transition_raises() -> None:
    with pytest.raises(IllegalTransition, match="DISCONNECTED -> CONNECTED"):
        check_transition(S.DISCONNECTED, S.CONNECTED)  # must pass through CONNECTING
    check_transition(S.CONNECTED, S.CONNECTED)  # staying put is not a transition


def test_live_states() -> None:
    assert {S.CONNECTED, S.DEGRADED} == LIVE_STATES


def test_state_holder_checks_logs_reports_and_tracks_live() -> None:
    from loguru import logger

    from v6.connection.state import StateHolder

    changes: list[tuple[ConnectionState, ConnectionState, str]] = []
    with log_lines("INFO") as lines:
        holder = StateHolder(logger, lambda: "gw:4002 #7", lambda *c: changes.append(c))
        holder.move(S.CONNECTING, "attempt 1")
        holder.move(S.CONNECTED, "synced")
        holder.move(S.CONNECTED, "again")  # staying put: nothing happens
        assert holder.live.is_set()
        with pytest.raises(IllegalTransition):
            holder.move(S.CIRCUIT_OPEN, "not from CONNECTED")
        assert holder.current is S.CONNECTED
        holder.move(S.DISCONNECTED, "lost")
        assert not holder.live.is_set()
    assert changes == [
        (S.DISCONNECTED, S.CONNECTING, "attempt 1"),
        (S.CONNECTING, S.CONNECTED, "synced"),
        (S.CONNECTED, S.DISCONNECTED, "lost"),
    ]
    assert lines == [
        "gw:4002 #7 DISCONNECTED -> CONNECTING: attempt 1",
        "gw:4002 #7 CONNECTING -> CONNECTED: synced",
        "gw:4002 #7 CONNECTED -> DISCONNECTED: lost",
    ]


def test_illegal_transition_is_ours_and_a_runtime_error() -> None:
    from v6.errors import IllegalTransition as FromErrors
    from v6.errors import V6Error

    assert IllegalTransition is FromErrors
    assert issubclass(IllegalTransition, V6Error)
    assert issubclass(IllegalTransition, RuntimeError)
