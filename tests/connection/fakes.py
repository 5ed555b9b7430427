"""A fake of our own seam (v6.connection.link.Link): supervision logic without sockets."""

from __future__ import annotations

import asyncio

from v6.connection.lifecycle import Endpoint
from v6.connection.settings import ConnectionSettings


def _ignore(*args: object) -> None:
    pass


class FakeLink:
    """Scripted connects, probes that answer or hang, and levers for the gateway's side.

    ``outcomes``: what the next connects do, in order (an exception to raise, or None to
    succeed); once empty every connect succeeds."""

    def __init__(self, *outcomes: BaseException | None) -> None:
        self.on_lost = _ignore
        self.on_data = _ignore
        self.on_system_message = _ignore
        self.on_request = _ignore
        self.on_handshake = _ignore
        self.endpoint = Endpoint("127.0.0.1", 4002, 0)
        self.requests_sent = 0
        self.awaiting_reply_since: float | None = None
        self.outcomes: list[BaseException | None] = list(outcomes)
        self.connects: list[int] = []  # the client id of every attempt
        self.closes = 0
        self.probes = 0
        self.answering = True
        self.connected = False
        #: (code, text) system messages "TWS" sends during every successful handshake.
        self.handshake_messages: list[tuple[int, str]] = []

    @property
    def is_connected(self) -> bool:
        return self.connected

    async def connect(self, client_id: int, settings: ConnectionSettings) -> None:
        self.connects.append(client_id)
        await asyncio.sleep(0)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.awaiting_reply_since = None
        self.endpoint = Endpoint("127.0.0.1", 4002, client_id)
        self.on_handshake()
        for code, text in self.handshake_messages:
            self.system_message(code, text)
        self.connected = True

    def close(self) -> None:
        self.closes += 1
        self.connected = False

    async def probe(self) -> None:
        self.probes += 1
        if not self.answering:
            await asyncio.Event().wait()  # never answered; the manager's timeout ends it
        if not self.connected:
            raise ConnectionError("socket closed")
        self.receive()

    # ---------------------------------------------------------------- the gateway's side

    def receive(self) -> None:
        self.awaiting_reply_since = None  # any message ends the wait for a reply
        self.on_data()

    def drop(self, reason: str = "gateway closed the connection") -> None:
        self.connected = False
        self.on_lost(reason)

    def system_message(self, code: int, text: str = "") -> None:
        self.on_system_message(code, text)


#: Manager options for a FakeLink: nothing waits on a network, so the intervals can be tiny.
FAKE_SETTINGS: dict[str, float] = {
    "retry_delay": 0.01,
    "max_delay": 0.04,
    "heartbeat_interval": 0.02,
    "heartbeat_timeout": 0.02,
    "connect_timeout": 0.5,
    "jitter": 0.0,
    "readiness_interval": None,  # no sockets here: tests that probe inject their own probe
}
