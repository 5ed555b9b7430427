"""The one exception tree of v6.

Every error v6 raises derives from :class:`V6Error`. Errors about the IB connection also derive
from the builtin a caller would naturally catch, so ``except ConnectionError`` (as in the original
plan) and ``except TimeoutError`` keep working::

    V6Error
    ├── ConfigError(V6Error, ValueError)             invalid configuration, raised at construction
    ├── JournalError(V6Error, ValueError)            the fill journal cannot be used; never reset
    │   ├── JournalTooNew                            written by a newer v6 (higher schema version)
    │   ├── JournalCorrupt                           not a v6 journal, or sqlite finds it damaged
    │   ├── JournalLocked                            another process owns the journal (its pid)
    │   └── JournalWriteFailed                       an order could not be recorded: not sent
    ├── OrderIdReused(V6Error, ValueError)           a new order id at or below one already sent
    ├── IllegalTransition(V6Error, RuntimeError)     a state change no table allows: a bug in v6
    ├── WrongEventLoop(V6Error, RuntimeError)        a manager used from a second event loop
    ├── ProtocolError(V6Error, ValueError)           bytes that break the TWS protocol (codec)
    │   ├── BadMagic, BadHello, NoCommonVersion      the handshake cannot proceed: close
    │   ├── FrameTooLarge                            framing cannot be recovered: close
    │   └── MalformedRequest                         one bad message: log and ignore it
    │       └── MalformedOrder                       a bad order message; ``order_id`` if readable
    └── IBConnectionError(V6Error, ConnectionError)  anything about reaching the gateway
        ├── ConnectFailed                            one attempt or the whole retry loop failed;
        │   │                                        ``__cause__`` holds the last underlying error
        │   ├── ConnectTimeout(…, TimeoutError)      no API-ready answer within connect_timeout
        │   ├── HandshakeFailed                      accepted, then closed or answered nonsense
        │   ├── ConnectAborted                       stop() / disconnect() ended the connect
        │   └── HostUnreachable                      no route to the host or network (or every
        │                                            address failed); retried like a refusal, since
        │                                            a rebooting machine or VPN comes back
        ├── ClientIdInUse                            TWS error 326: the id is held by a live session
        ├── FatalConnectError                        retrying cannot fix it (host does not resolve,
        │                                            invalid address); ``__cause__`` is the original
        ├── CircuitOpenError                         the breaker is OPEN; nothing was sent
        ├── HeartbeatTimeout(…, TimeoutError)        a probe got no answer within heartbeat_timeout
        ├── NotConnected                             an operation needs a live connection
        └── RequestTimeout(…, TimeoutError)          a paced request (manager.request) was not
                                                     answered within its timeout, across sessions

Each failed connection attempt is counted in ``ConnectionStats.attempts`` under one label
(:func:`v6.connection.retry.attempt_label`): ``refused``, ``unreachable``, ``timeout``,
``handshake_failed``, ``client_id_in_use``, ``fatal`` or ``error``.
"""

from __future__ import annotations


class V6Error(Exception):
    """Base of every error raised by v6."""


class ConfigError(V6Error, ValueError):
    """Invalid configuration. The message names the field and the allowed range."""


class IllegalTransition(V6Error, RuntimeError):
    """A state change that no transition table allows: a bug in v6, never a network condition."""


class IBConnectionError(V6Error, ConnectionError):
    """Base of every error about the connection to TWS / IB Gateway."""


class ConnectFailed(IBConnectionError):
    """A connection attempt (or the whole retry loop) failed. ``__cause__`` is the last error."""


class ConnectTimeout(ConnectFailed, TimeoutError):
    """The gateway did not make the API ready within ``connect_timeout``."""


class HandshakeFailed(ConnectFailed):
    """The socket was accepted but the API handshake or start-up sync did not complete."""


class HostUnreachable(ConnectFailed):
    """No route to the gateway's host or network, or every address of the name failed.

    Retried, not fatal: the host may be rebooting or a VPN may be reconnecting. A name that does
    not resolve at all is a :class:`FatalConnectError` instead."""


class FatalConnectError(IBConnectionError):
    """An attempt failed in a way retrying cannot fix. ``__cause__`` is the original error."""


class ClientIdInUse(IBConnectionError):
    """TWS error 326: another live session holds this client id."""

    def __init__(self, client_id: int) -> None:
        super().__init__(f"client id {client_id} is already in use (TWS error 326)")
        self.client_id = client_id


class CircuitOpenError(IBConnectionError):
    """The circuit breaker is OPEN: the attempt was refused without touching the network."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit breaker is OPEN; next trial allowed in {retry_after:.1f}s")
        self.retry_after = retry_after


class HeartbeatTimeout(IBConnectionError, TimeoutError):
    """A heartbeat probe got no answer within ``heartbeat_timeout``."""


class NotConnected(IBConnectionError):
    """The operation needs a live API connection and there is none."""


class RequestTimeout(IBConnectionError, TimeoutError):
    """A request run through the scheduler (``manager.request``) was not answered in time: it
    waited for its pacing slot, a live connection or its answer."""


class ProtocolError(V6Error, ValueError):
    """Bytes that cannot be part of a TWS API conversation; the connection cannot continue."""


class BadMagic(ProtocolError):
    """The connection did not start with ``API\\0``."""


class BadHello(ProtocolError):
    """The version hello is not ``v<min>..<max>[ <options>]``."""


class NoCommonVersion(ProtocolError):
    """The client's version range and the server's do not overlap."""


class FrameTooLarge(ProtocolError):
    """A length prefix above ``v6.protocol.codec.MAX_FRAME_SIZE`` (framing cannot be recovered)."""


class MalformedRequest(ProtocolError):
    """A well-framed message whose fields do not fit its message id (missing or non-numeric)."""


class MalformedOrder(MalformedRequest):
    """A malformed placeOrder / cancelOrder. ``order_id`` is set when field 1 could be read, so the
    gateway can answer TWS's error for that order id."""

    def __init__(self, message: str, order_id: int | None = None) -> None:
        super().__init__(message)
        self.order_id = order_id


class JournalError(V6Error, ValueError):
    """The fill journal cannot be used. Raised at construction; the file is never reset."""


class JournalTooNew(JournalError):
    """The journal's schema version is above the one this v6 understands."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"journal {path} has schema version {found}; this v6 reads versions up to {supported}"
        )
        self.found = found
        self.supported = supported


class JournalCorrupt(JournalError):
    """The file is not a v6 journal, or sqlite reports it damaged. ``__cause__`` says why."""


class OrderIdReused(V6Error, ValueError):
    """A new order would go out with an id at or below one already sent (never allowed)."""


class ConnectAborted(ConnectFailed):
    """``stop()`` or ``disconnect()`` ended this connect before it succeeded. Nothing stays open
    and nothing counts against the circuit breaker."""


class WrongEventLoop(V6Error, RuntimeError):
    """A manager belongs to the event loop it was first used in; it was used from another (its
    sockets, tasks and locks are tied to the first loop). Make one manager per loop."""


class JournalLocked(JournalError):
    """Another process (or another manager) holds the journal's lock: one journal, one owner.
    ``path`` is the journal, ``pid`` the holder's process id (None if it could not be read)."""

    def __init__(self, path: str, pid: int | None, waited: float) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"journal {path} is locked by {holder} (waited {waited:g}s): one journal, one "
            "owner; stop the other manager or give this one its own journal"
        )
        self.path = path
        self.pid = pid


class JournalWriteFailed(JournalError):
    """An order could not be recorded in the journal (disk full, read-only file), so it was not
    sent: an order the journal does not know could not be recovered after a crash.
    ``__cause__`` is sqlite's error."""
