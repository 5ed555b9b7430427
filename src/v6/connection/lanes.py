"""Request priority lanes: how urgent a request of the session is, for whoever paces them.

The request scheduler (:mod:`v6.pacing`) sends waiting requests lane by lane, most urgent first.
A request's lane comes from its message id, unless the code that makes it says otherwise with
:func:`in_lane` (a subscription replayed after a reconnect is STREAMS even when it is a
historical request). Lives below every participant, so any of them can mark its requests without
knowing who paces them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import IntEnum


class Lane(IntEnum):
    """Priority lanes, most urgent first: a request never waits behind one of a later lane."""

    URGENT = 0  # orders, cancels, the heartbeat probe, the handshake
    SYNC = 1  # reconciliation: open and completed orders, executions, positions, accounts
    STREAMS = 2  # subscriptions and their replay; anything not named elsewhere
    BULK = 3  # historical data, contract look-ups and other one-off queries


_LANE: ContextVar[Lane | None] = ContextVar("v6_request_lane", default=None)


#: The lane the running code asked for (None: the message id decides). The ContextVar's own
#: getter: read for every request sent, so no Python frame of ours around it.
marked_lane: Callable[[], Lane | None] = _LANE.get


@contextmanager
def in_lane(lane: Lane) -> Iterator[None]:
    """Requests made inside (in this task) go in ``lane``."""
    token = _LANE.set(lane)
    try:
        yield
    finally:
        _LANE.reset(token)
