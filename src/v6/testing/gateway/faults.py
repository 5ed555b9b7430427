"""Faults as objects, hooked into every session at fixed points.

A session asks the active faults, in this order of a connection's life:

* ``on_accept()`` when a socket is accepted: ``CLOSE`` it at once, or ``SILENCE`` it (its hello
  is never answered);
* ``on_hello()`` when a hello arrives: ``SILENCE`` leaves it unanswered for good;
* ``on_request(msg_id)`` for every message after the hello (paced before it is decoded):
  ``SILENCE`` drops it (a frozen TWS), ``DROP`` ignores it (read and counted, never answered);
* ``on_send()`` for every reply: seconds to delay it by;
* ``on_flush()`` before bytes are written: False holds the output (delivered once released);
* ``on_handled(msg_id)`` after a request was handled: ``CLOSE`` closes that socket at once, before
  anything the request caused is sent;
* ``on_events(events)`` for the simulated broker's events on their way to the clients: the fault
  may hold, drop or reorder them; ``release()`` returns what it held when it is switched off.

Switch faults on and off on a running gateway through ``gw.faults`` (:class:`Faults`)::

    gw.faults.switch_on(HoldOrderStatus())   # or Latency(0.5), IgnoreRequests({49}), Stall()...
    gw.faults.switch_off(HoldOrderStatus)    # a class, or a fault (the one it would replace)
    gw.faults.active                         # (HoldOrderStatus(held=0),)

``FakeGateway``'s fault methods (``stall()``, ``set_latency()``, ``hold_order_status(on)``...) are
one-line shortcuts to it. A new fault is one :class:`Fault` subclass overriding the hooks it needs
(plus, if it helps, such a shortcut). At most one fault per :attr:`Fault.key` is active: by
default one of each class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from enum import Enum, StrEnum
from typing import Final, TypeVar

from v6.errors import ConfigError
from v6.protocol.ids import ClientMessage
from v6.testing.broker import (
    BrokerEvent,
    CommissionReportEvent,
    ExecDetailsEvent,
    OrderStatusEvent,
)
from v6.validation import require_range


class HookVerdict(Enum):
    """What a hook decides about the event it sees."""

    PASS = "pass"
    DROP = "drop"
    """Ignore this request."""
    SILENCE = "silence"
    """Never answer this (hello: the socket; request: dropped, as by a frozen TWS)."""
    CLOSE = "close"
    """Close the socket now."""


_SEVERITY: Final = {
    HookVerdict.PASS: 0,
    HookVerdict.DROP: 1,
    HookVerdict.SILENCE: 2,
    HookVerdict.CLOSE: 3,
}


class HandshakeFault(StrEnum):
    """What new connections get instead of a handshake (``None``: a normal handshake)."""

    CLOSE = "close"
    """Accept, then close at once (socat in front of a dead gateway)."""
    SILENT = "silent"
    """Accept, read the hello, never answer."""


class Fault:
    """Base class of every fault: each hook has no effect until a subclass overrides it.

    A fault's public attributes are its parameters: they make two faults equal (switching on a
    fault equal to the active one changes nothing) and they are shown in its ``repr``. What a
    fault gathers while it is on (held events) lives in underscore attributes.
    """

    @property
    def key(self) -> tuple[object, ...]:
        """The slot this fault takes among the active ones: by default ``(its class,)``, so
        switching it on replaces the active fault of that class. A fault that may be on several
        times at once (one per stream, say) returns ``(its class, its target)``."""
        return (type(self),)

    def _parameters(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Fault)
            and other._parameters() == self._parameters()
        )

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        args = (v.value if isinstance(v, Enum) else v for v in self._parameters().values())
        return f"{type(self).__name__}({', '.join(map(repr, args))})"

    def on_accept(self) -> HookVerdict:
        return HookVerdict.PASS

    def on_hello(self) -> HookVerdict:
        return HookVerdict.PASS

    def on_request(self, msg_id: int) -> HookVerdict:
        return HookVerdict.PASS

    def on_send(self) -> float:
        return 0.0

    def on_flush(self) -> bool:
        return True

    def on_handled(self, msg_id: int) -> HookVerdict:
        return HookVerdict.PASS

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        return events

    def release(self) -> list[BrokerEvent]:
        return []


class Stall(Fault):
    """Black hole: sockets stay open and are read, nothing is answered or streamed. Requests
    received meanwhile are dropped (a frozen TWS does not replay them); replies queued before are
    held and delivered once the stall is removed."""

    def on_hello(self) -> HookVerdict:
        return HookVerdict.SILENCE

    def on_request(self, msg_id: int) -> HookVerdict:
        return HookVerdict.SILENCE

    def on_flush(self) -> bool:
        return False


class BrokenHandshake(Fault):
    """New sockets are closed at once (``close``) or never answered (``silent``)."""

    def __init__(self, mode: HandshakeFault | str) -> None:
        try:
            self.mode = HandshakeFault(mode)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in HandshakeFault)
            raise ConfigError(
                f"handshake_fault must be None or one of {allowed}, got {mode!r}"
            ) from None

    def on_accept(self) -> HookVerdict:
        return HookVerdict.CLOSE if self.mode is HandshakeFault.CLOSE else HookVerdict.SILENCE


class Latency(Fault):
    """Every reply is delayed by ``seconds``; order per client is kept."""

    def __init__(self, seconds: float) -> None:
        require_range("latency", seconds, low=0)
        self.seconds = float(seconds)

    def on_send(self) -> float:
        return self.seconds


class IgnoreRequests(Fault):
    """These client message ids are read (and paced) but never answered."""

    def __init__(self, msg_ids: Iterable[int]) -> None:
        self.msg_ids = frozenset(int(i) for i in msg_ids)

    def on_request(self, msg_id: int) -> HookVerdict:
        return HookVerdict.DROP if msg_id in self.msg_ids else HookVerdict.PASS


class HoldOrderStatus(Fault):
    """orderStatus messages are held back; when the fault is removed each comes late, twice (a
    late and a repeated status, both seen from real gateways); ``newest_first``: in reverse
    order, so an older status (Submitted) arrives after a newer one (Filled)."""

    def __init__(self, *, newest_first: bool = False) -> None:
        self._held: list[BrokerEvent] = []
        self._newest_first = newest_first

    def __repr__(self) -> str:
        order = ", newest_first=True" if self._newest_first else ""
        return f"HoldOrderStatus(held={len(self._held)}{order})"

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        self._held += [e for e in events if isinstance(e, OrderStatusEvent)]
        return [e for e in events if not isinstance(e, OrderStatusEvent)]

    def release(self) -> list[BrokerEvent]:
        held, self._held = self._held, []
        if self._newest_first:
            held.reverse()
        return [event for event in held for _ in range(2)]


class DropCommissionReports(Fault):
    """Live executions come without their commissionReport (reqExecutions still sends it)."""

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        return [e for e in events if not isinstance(e, CommissionReportEvent)]


class DropExecutions(Fault):
    """Live execDetails and their commissionReports are lost (reqExecutions still sends them):
    what a client misses while TWS is cut off from IB (1100)."""

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        fills = (ExecDetailsEvent, CommissionReportEvent)
        return [e for e in events if not isinstance(e, fills)]


class ExecBeforeOpenOrder(Fault):
    """In each batch of broker events, executions (and their reports) go first: execDetails
    arrives before the order's openOrder / orderStatus."""

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        fills = (ExecDetailsEvent, CommissionReportEvent)
        return [e for e in events if isinstance(e, fills)] + [
            e for e in events if not isinstance(e, fills)
        ]


class CloseAfterPlaceOrder(Fault):
    """The socket dies right after a placeOrder is read: the order exists at the broker, its
    client never hears of it."""

    def on_handled(self, msg_id: int) -> HookVerdict:
        return HookVerdict.CLOSE if msg_id == ClientMessage.PLACE_ORDER else HookVerdict.PASS


_F = TypeVar("_F", bound=Fault)


class Faults:
    """The faults switched on at one gateway (``gw.faults``), asked by every session at each
    hook point.

    ``on_change`` runs after every change (the gateway logs it and reschedules held output);
    ``on_release`` gets the events a fault held when it is switched off (the gateway delivers
    them).
    """

    def __init__(
        self,
        on_change: Callable[[], None] = lambda: None,
        on_release: Callable[[list[BrokerEvent]], None] = lambda events: None,
    ) -> None:
        self._active: dict[tuple[object, ...], Fault] = {}
        self._on_change = on_change
        self._on_release = on_release
        self._released = asyncio.Event()
        self._released.set()

    def switch_on(self, fault: Fault) -> None:
        """Switch ``fault`` on, in place of the active fault with its :attr:`~Fault.key` (by
        default: of its class). Switching on a fault equal to the active one (same class and
        parameters) changes nothing: a :class:`HoldOrderStatus` keeps what it holds.

        Raises ``TypeError`` unless ``fault`` is a :class:`Fault` instance (``Stall()``, not
        ``Stall``), ``ValueError`` for the bare base class ``Fault()``."""
        _require_fault(fault)
        replaced = self._active.get(fault.key)
        if replaced == fault:
            return
        self._active[fault.key] = fault
        self._changed([replaced] if replaced is not None else [])

    def switch_off(self, fault: type[Fault] | Fault) -> None:
        """Switch off every active fault of this class, or, given a fault, the active one with
        its key; what they held is delivered. A fault that is not on: nothing changes.

        Raises ``TypeError`` for anything but a :class:`Fault` subclass or instance,
        ``ValueError`` for the base class ``Fault`` itself."""
        if isinstance(fault, Fault):
            keys = [fault.key] if fault.key in self._active else []
        else:
            _require_fault_class(fault)
            keys = [key for key, active in self._active.items() if type(active) is fault]
        removed = [self._active.pop(key) for key in keys]
        if removed:
            self._changed(removed)

    @property
    def active(self) -> tuple[Fault, ...]:
        """The faults switched on, in the order they were first switched on."""
        return tuple(self._active.values())

    def get(self, kind: type[_F]) -> _F | None:
        """The active fault of class ``kind`` (the first one, for a fault keyed by target)."""
        # exactly this class, as switch_off(kind); isinstance() tells the type checker so
        found = (f for f in self._active.values() if isinstance(f, kind) and type(f) is kind)
        return next(found, None)

    def __repr__(self) -> str:
        return "[" + ", ".join(map(repr, self._active.values())) + "]"

    def rebind(self) -> None:
        """Fresh primitives for the running event loop (a gateway may be restarted in another)."""
        self._released = asyncio.Event()
        if not self.output_held():
            self._released.set()

    # ---- the hooks, as a session asks them

    def on_accept(self) -> HookVerdict:
        return self._worst(f.on_accept() for f in self._active.values())

    def on_hello(self) -> HookVerdict:
        return self._worst(f.on_hello() for f in self._active.values())

    def on_request(self, msg_id: int) -> HookVerdict:
        return self._worst(f.on_request(msg_id) for f in self._active.values())

    def send_delay(self) -> float:
        return sum(f.on_send() for f in self._active.values())

    def on_handled(self, msg_id: int) -> HookVerdict:
        return self._worst(f.on_handled(msg_id) for f in self._active.values())

    def on_events(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        for fault in self._active.values():
            events = fault.on_events(events)
        return events

    def output_held(self) -> bool:
        return not all(f.on_flush() for f in self._active.values())

    async def output_released(self) -> None:
        """Return once no fault holds output."""
        await self._released.wait()

    @staticmethod
    def _worst(verdicts: Iterable[HookVerdict]) -> HookVerdict:
        """The most severe verdict, whatever order the faults were switched on in."""
        return max(verdicts, key=_SEVERITY.__getitem__, default=HookVerdict.PASS)

    def _changed(self, removed: list[Fault]) -> None:
        if self.output_held():
            self._released.clear()
        else:
            self._released.set()
        self._on_change()
        for fault in removed:  # after the change: released events no longer meet the fault
            held = fault.release()
            if held:
                self._on_release(held)


def _require_fault(fault: object) -> None:
    if isinstance(fault, type) and issubclass(fault, Fault):
        raise TypeError(f"switch_on takes a fault, not a class: {fault.__name__}() switches it on")
    if not isinstance(fault, Fault):
        raise TypeError(f"switch_on takes a Fault (e.g. Stall()), got {fault!r}")
    if type(fault) is Fault:
        raise ValueError("Fault() is the base class and does nothing: switch on a subclass")


def _require_fault_class(kind: object) -> None:
    if not (isinstance(kind, type) and issubclass(kind, Fault)):
        raise TypeError(f"switch_off takes a Fault class or a fault (e.g. Stall), got {kind!r}")
    if kind is Fault:
        raise ValueError("switch_off(Fault) names no fault: name its class (e.g. Stall)")
