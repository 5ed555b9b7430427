from __future__ import annotations

import pytest

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
