"""The lifecycle seam: what a connection tells the parts that ride on it (its participants).

The connection (:class:`~v6.connection.keeper.Connection`) knows no participant by name: order
tracking, the request scheduler and live subscriptions each implement :class:`Participant`, and
the manager (:mod:`v6.manager`) joins them to the connection (:class:`QuietParticipant` gives
a participant a no-op for each moment it does not act on). The connection calls them, in the
order they joined, at these moments of each connect plan and session:

1. :meth:`~Participant.before_connect`: a connect plan starts (a file closed by ``stop()`` may
   be reopened here);
2. :meth:`~Participant.handshake`: an attempt's API session started (ib_async's ``apiStart``),
   before any message of its start-up sync is decoded;
3. :meth:`~Participant.before_live`: the attempt's start-up sync is complete, the session does
   not count as live yet (no ``wait_connected()``, no ``on_connected``): the moment to make the
   state whole (reconciliation). An exception fails the attempt;
4. :meth:`~Participant.live`: the state is CONNECTED, just before the application's hooks run;
5. :meth:`~Participant.data_lost`: TWS said 1101 (reconnected to IB, data lost) on a live
   session; :meth:`~Participant.farm`: a data farm notice (2103-2106, 2157, 2158, read once
   into a :class:`~v6.connection.system_messages.FarmStatus`; every handshake brings several);
   :meth:`~Participant.system_message`: every other TWS system message (request id -1);
6. :meth:`~Participant.lost`: a live session ended (socket closed, stall, teardown);
7. :meth:`~Participant.stopped`: the user stopped the manager (awaited: end tasks, close files).

And asks them: :meth:`~Participant.may_rotate_client_id` (error 326: may the planner move to the
next client id, or does this id own something?) and :meth:`~Participant.health` (their fields of
``connection_health()``; a participant that reports ``"healthy": False`` makes the whole reading
unhealthy, e.g. a journal that cannot be written).

A participant's own failure inside a notification (not ``before_live``) is logged and never
reaches the reconnect loop, as a user's hook. What a participant may read of the connection is
:class:`ConnectionView`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from loguru import Logger

    from v6.connection.settings import ConnectionSettings
    from v6.connection.state import ConnectionState
    from v6.connection.system_messages import FarmStatus


class Endpoint(NamedTuple):
    """Where one API session lives: TWS numbers orders per (host, port, client id)."""

    host: str
    port: int
    client_id: int


class SessionStart(NamedTuple):
    """An API session that just started: its number (1, 2, ... per connection object) and its
    endpoint."""

    number: int
    endpoint: Endpoint


class ConnectionView(Protocol):
    """What a participant may read of the connection it rides on (and wait for)."""

    @property
    def state(self) -> ConnectionState: ...

    @property
    def is_connected(self) -> bool:
        """The API connection is ready (CONNECTED or DEGRADED)."""
        ...

    @property
    def socket_up(self) -> bool:
        """The API socket is up (the state may still be CONNECTING)."""
        ...

    @property
    def supervised(self) -> bool:
        """Supervision runs: a session ended is connected again."""
        ...

    @property
    def settings(self) -> ConnectionSettings: ...

    async def wait_connected(self, timeout: float | None = None) -> None: ...


class Participant(Protocol):
    """A part that rides on the connection (see the module docstring for the moments)."""

    def before_connect(self) -> None: ...

    def handshake(self, session: SessionStart) -> None: ...

    def before_live(self, reconnect: bool) -> None: ...

    def live(self, reconnect: bool) -> None: ...

    def data_lost(self) -> None: ...

    def farm(self, status: FarmStatus) -> None: ...

    def system_message(self, code: int, text: str) -> None: ...

    def lost(self, reason: str) -> None: ...

    async def stopped(self) -> None: ...

    def may_rotate_client_id(self) -> bool: ...

    def health(self) -> Mapping[str, Any]: ...


class QuietParticipant:
    """A :class:`Participant` that ignores every moment and owns nothing: a participant
    subclasses it and writes only the moments it acts on."""

    def before_connect(self) -> None:
        return None

    def handshake(self, session: SessionStart) -> None:
        return None

    def before_live(self, reconnect: bool) -> None:
        return None

    def live(self, reconnect: bool) -> None:
        return None

    def data_lost(self) -> None:
        return None

    def farm(self, status: FarmStatus) -> None:
        return None

    def system_message(self, code: int, text: str) -> None:
        return None

    def lost(self, reason: str) -> None:
        return None

    async def stopped(self) -> None:
        return None

    def may_rotate_client_id(self) -> bool:
        return True

    def health(self) -> Mapping[str, Any]:
        return {}


class Participants:
    """The joined participants, called in the order they joined; at each moment only the ones
    that act on it (a :class:`QuietParticipant`'s inherited no-ops are never called: every
    connect passes these moments, and every handshake brings several system messages)."""

    def __init__(self, log: Logger) -> None:
        self._log = log
        self._members: list[Participant] = []
        self._acting: dict[str, list[Callable[..., Any]]] = {name: [] for name in _MOMENTS}

    def __iter__(self) -> Iterator[Participant]:
        return iter(self._members)

    def join(self, participant: Participant) -> None:
        self._members.append(participant)
        for name, acting in self._acting.items():
            if getattr(type(participant), name, None) is not getattr(QuietParticipant, name):
                acting.append(getattr(participant, name))

    def before_connect(self) -> None:
        for act in self._acting["before_connect"]:
            act()

    def handshake(self, session: SessionStart) -> None:
        for act in self._acting["handshake"]:
            act(session)

    def before_live(self, reconnect: bool) -> None:
        for act in self._acting["before_live"]:
            act(reconnect)

    def live(self, reconnect: bool) -> None:
        self._notify("live", reconnect)

    def data_lost(self) -> None:
        self._notify("data_lost")

    def farm(self, status: FarmStatus) -> None:
        self._notify("farm", status)

    def system_message(self, code: int, text: str) -> None:
        self._notify("system_message", code, text)

    def lost(self, reason: str) -> None:
        self._notify("lost", reason)

    async def stopped(self) -> None:
        for p in self._members:
            try:
                await p.stopped()
            except Exception:
                self._log.exception("{!r} failed to stop; ignored", p)

    def may_rotate_client_id(self) -> bool:
        return all(p.may_rotate_client_id() for p in self._members)

    def health(self, healthy: bool) -> dict[str, Any]:
        """Every participant's fields; ``healthy`` (the connection's verdict) AND theirs."""
        fields: dict[str, Any] = {}
        for p in self._members:
            theirs = dict(p.health())
            verdict = theirs.pop("healthy", True)  # popped first: it must never reach fields
            healthy = healthy and verdict
            fields.update(theirs)
        return {"healthy": healthy, **fields}

    def _notify(self, moment: str, *args: Any) -> None:
        """A notification: a participant's failure is logged, never raised."""
        for act in self._acting[moment]:
            try:
                act(*args)
            except Exception:
                self._log.exception("{!r} raised; ignored", act)


#: The moments :class:`Participants` calls only on the participants that act on them.
_MOMENTS = ("before_connect", "handshake", "before_live", "live", "data_lost", "farm",
            "system_message", "lost")  # fmt: skip
