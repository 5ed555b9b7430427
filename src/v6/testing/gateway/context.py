"""What the sessions of one gateway share: settings, faults, the application, the table of open
sessions and live client ids, and the counters the gateway reports. Sessions see their gateway
only through it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

from loguru import logger

from v6.protocol.framing import NO_REQUEST_ID
from v6.testing.broker import Broker, BrokerEvent, ExecDetailsEvent
from v6.testing.gateway.app import TwsApp
from v6.testing.gateway.clients import ClientSocket, ClientState, Phase
from v6.testing.gateway.config import GatewaySettings
from v6.testing.gateway.faults import Fault, Faults, StreamOwner
from v6.testing.gateway.streams import LiveStream
from v6.testing.gateway.trading import encode_event, position_updates

#: Loop turns stop() gives the sockets accepted before it to reach their session (~3 each).
_SETTLE_TURNS = 100


class GatewayContext:
    """What sessions share with their gateway: settings, faults, the application, and the table
    of open sessions, live client ids and counters. The gateway owns it and reads its observation
    figures from it; a session uses nothing else of the gateway."""

    def __init__(self, settings: GatewaySettings, broker: Broker) -> None:
        self.settings = settings
        self.faults = Faults(on_change=self._faults_changed, on_release=self.deliver)
        self.faults.live = self
        self.broker = broker
        self.app = TwsApp(settings, broker, clients=self.client_states,
                          vet_stream=self.faults.on_new_stream)  # fmt: skip
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sessions: set[ClientSocket] = set()
        self.live_ids: dict[int, ClientSocket] = {}
        self.counts: Counter[int] = Counter()
        self.frames_dropped = 0
        self.accept_times: list[float] = []
        #: False from the start of stop(): a socket accepted meanwhile is closed at once.
        self.listening = False
        #: Sockets accepted whose session has not started yet (connection_made to come).
        self.accepting = 0

    def client_states(self) -> list[ClientState]:
        """The application's state of every API-ready client (one login: IB's pacing rules
        count over all of them)."""
        return [s.state for s in self.sessions if s.phase is Phase.READY]

    # ---- LiveStreams: what the data faults act on

    def live_streams(self) -> list[tuple[StreamOwner, LiveStream]]:
        """Every API-ready client's live requests."""
        return [(s, stream) for s in self.sessions if s.phase is Phase.READY
                for stream in list(s.state.streams.values())]  # fmt: skip

    def end_live_requests(self) -> None:
        """Every client's live requests end (TWS lost the data: 1101); none holds a line."""
        for session in self.sessions:
            session.state.streams.clear()

    def broadcast(self, code: int, text: str) -> int:
        """A system message (request id -1) to every API-ready client; how many got it."""
        sessions = [s for s in self.sessions if s.phase is Phase.READY]
        for session in sessions:
            session.send_error(NO_REQUEST_ID, code, text)
        logger.info("fake gateway: broadcast {} to {} client(s)", code, len(sessions))
        return len(sessions)

    def switch_off_later(self, fault: Fault, seconds: float) -> None:
        """Switch ``fault`` off in ``seconds`` if it is still the active one then (a fault
        switched on while the gateway has no event loop stays on until switched off)."""

        def expire() -> None:
            if any(active is fault for active in self.faults.active):
                self.faults.switch_off(fault)

        if self.loop is not None:
            self.loop.call_later(seconds, expire)

    def require_loop(self) -> asyncio.AbstractEventLoop:
        assert self.loop is not None, "gateway not started"
        return self.loop

    def admit(self, session: ClientSocket) -> bool:
        """Record an accepted socket; False when ``max_clients`` are already connected."""
        now = time.monotonic()
        self.accept_times.append(now)
        on_accept = self.settings.on_accept
        if on_accept is not None:
            try:
                on_accept(now)
            except Exception:
                logger.exception("fake gateway: on_accept callback failed")
        if not self.listening:
            logger.info("fake gateway: {} accepted while stopping: closed", session.peer)
            return False
        if len(self.sessions) >= self.settings.max_clients and not self._evict_a_handshake():
            logger.warning("fake gateway: {} refused: {} clients already connected",
                           session.peer, self.settings.max_clients)  # fmt: skip
            return False
        self.sessions.add(session)
        logger.info("fake gateway: client connected from {}", session.peer)
        return True

    async def stop_accepting(self, server: asyncio.Server) -> None:
        """No new socket from now on, and the ones accepted already reach their session,
        which closes them (the caller has set ``listening`` False). Before
        ``server.close()``: on Python 3.11 a socket accepted just before it is leaked (its
        transport cannot attach to a closed server)."""
        loop = self.require_loop()
        for sock in server.sockets:
            with contextlib.suppress(NotImplementedError):  # not a selector loop
                loop.remove_reader(sock.fileno())
        for _ in range(_SETTLE_TURNS):  # a few loop turns each: a bound, not a wait
            if not self.accepting:
                break
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # their close() completes on the next turn

    def _evict_a_handshake(self) -> bool:
        """Close the oldest socket still in its handshake, to make room; False if none is."""
        waiting = [s for s in self.sessions if s.in_handshake]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda s: s.accepted_at)
        logger.info("fake gateway: {} closed to make room (handshake unfinished)", oldest.peer)
        self.sessions.discard(oldest)
        oldest.abort()
        return True

    def claim_client_id(self, session: ClientSocket, client_id: int) -> bool:
        """Bind ``client_id`` to ``session``; False if a live session holds it."""
        if client_id in self.live_ids:
            return False
        self.live_ids[client_id] = session
        return True

    def release(self, session: ClientSocket) -> None:
        if session not in self.sessions:
            return
        self.sessions.discard(session)
        if session.client_id is not None and self.live_ids.get(session.client_id) is session:
            del self.live_ids[session.client_id]
        logger.info("fake gateway: client {} disconnected (client id {})",
                    session.peer, session.client_id)  # fmt: skip

    def _faults_changed(self) -> None:
        logger.info("fake gateway: faults now {}", self.faults)
        for session in list(self.sessions):  # output a fault held may go now
            session.schedule_flush()

    def deliver(self, events: list[BrokerEvent] | None = None) -> None:
        """Send the broker's queued events (or ``events``), through the order faults, each to
        the API-ready session of its client id; an absent client misses it, as with TWS. After
        a fill, position and account-update subscribers get the changed figures."""
        if events is None:
            events = self.broker.drain_events()
        if not events:
            return
        for event in self.faults.on_events(events):
            session = self.live_ids.get(event.client_id)
            if session is not None and session.phase is Phase.READY:
                session.send(encode_event(event, session.state.server_version))
        executions = [e.execution for e in events if isinstance(e, ExecDetailsEvent)]
        if not executions:
            return
        for session in list(self.sessions):
            if session.phase is Phase.READY:
                for execution in dict.fromkeys(executions):  # once per execution, not per copy
                    for reply in position_updates(self.broker, session.state, execution):
                        session.send(reply)
