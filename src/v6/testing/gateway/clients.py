"""What the gateway's rooms share about one client: its phase, the application's state for it,
the snapshot the gateway reports, and :class:`ClientSocket`, the view of one socket that the
shared context (:mod:`.context`) and the tick streams (:mod:`.ticks`) work with.

:class:`ClientSocket` is a Protocol so that those modules need not import the session that
implements it (:class:`~.client_session.ClientSession`), which imports them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from v6.protocol import codec
from v6.testing.gateway.outbox import Outbox, Outgoing
from v6.testing.gateway.streams import LINE_KINDS, LiveStream, StreamKind


class Phase(Enum):
    """Where one client connection is."""

    HANDSHAKE = "handshake"
    AWAIT_START_API = "await_start_api"
    READY = "ready"
    SILENT = "silent"
    """Never answered again (silent handshake fault, or hello received while stalled)."""
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A snapshot of one connected client (``FakeGateway.clients``)."""

    peer: str
    phase: Phase
    client_id: int | None
    server_version: int
    account_summaries: int
    market_data: int
    messages_received: int


@dataclass(frozen=True, slots=True)
class LiveRequest:
    """A snapshot of one live request at the gateway (``FakeGateway.live_requests``)."""

    client_id: int | None
    kind: StreamKind
    req_id: int
    instrument: int
    """The contract: its conId (a stand-in for an unqualified one; the conId of reqPnLSingle,
    0 for reqPnL)."""
    farm: str | None
    flowing: bool
    """Sending: neither stopped for good nor held by a fault."""
    stopped: bool
    """Stopped for good by a fault (farm break, 10182, 10197): only a new request flows."""
    updates: int

    @classmethod
    def of(cls, client_id: int | None, stream: LiveStream) -> LiveRequest:
        return cls(client_id, stream.kind, stream.req_id, stream.instrument, stream.farm,
                   stream.flowing, stream.stopped, stream.updates)  # fmt: skip


@dataclass(slots=True)
class ClientState:
    """What the application keeps per API client."""

    peer: str = "?"
    server_version: int = 0
    client_id: int = 0
    positions_subscribed: bool = False
    account_updates: str | None = None
    """The account whose updates (values, portfolio) this client subscribed to."""
    account_summaries: set[int] = field(default_factory=set)
    streams: dict[tuple[StreamKind, int], LiveStream] = field(default_factory=dict)
    """Its live requests, by (kind, request id)."""

    def error(self, req_id: int, code: int, text: str) -> bytes:
        return codec.error_message(self.server_version, req_id, code, text)

    def count(self, kind: StreamKind) -> int:
        """Its live requests of ``kind``."""
        return sum(1 for stream in self.streams.values() if stream.kind is kind)

    @property
    def lines(self) -> int:
        """Market-data lines it holds."""
        return sum(1 for stream in self.streams.values() if stream.kind in LINE_KINDS)


class ClientSocket(Protocol):
    """One client socket, as the gateway's shared context, its server and the tick streams use
    it."""

    peer: str
    phase: Phase
    client_id: int | None
    state: ClientState
    accepted_at: float
    """``loop.time()`` of the accept."""
    outbox: Outbox
    writable: asyncio.Event
    """Set while the transport takes writes without pausing."""
    closed: asyncio.Future[None]
    """Done once the socket is closed."""

    @property
    def in_handshake(self) -> bool: ...

    def send(self, data: Outgoing) -> None: ...

    def send_error(self, req_id: int, code: int, text: str) -> None: ...

    def schedule_flush(self) -> None: ...

    def close(self) -> None: ...

    def abort(self, reset: bool = False) -> None: ...

    def info(self) -> ClientInfo: ...
