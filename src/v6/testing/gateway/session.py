"""One client socket of the fake gateway (an ``asyncio.Protocol``): I/O, pacing, phase, limits.

The session feeds bytes to the pure codec, asks the active faults at each hook point, hands
requests to the :class:`~v6.testing.gateway.app.TwsApp` and writes its replies: ordered, delayed
by any latency fault, batched per event-loop iteration, held while a fault holds output. Every
callback is guarded: a client's bad bytes or a handler bug closes that client only.

A session sees its gateway only through a :class:`GatewayContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Final

from loguru import logger

from v6.errors import MalformedOrder, MalformedRequest, NoCommonVersion, ProtocolError
from v6.protocol import codec
from v6.protocol.codec import MIN_SERVER_VERSION, BadFrame, Hello, Message, ServerCodec
from v6.protocol.codes import TEXT_CLIENT_ID_IN_USE, ErrorCode, max_rate_text, rejected_text
from v6.testing.gateway.app import ClientState
from v6.testing.gateway.config import PACING_WINDOW
from v6.testing.gateway.context import ClientInfo, GatewayContext, Phase
from v6.testing.gateway.faults import Verdict
from v6.testing.gateway.outbox import Outbox, Outgoing
from v6.testing.market_quotes import Quote

_MAX_UPDATES_PER_WAKEUP: Final = 256
_MIN_TICK_INTERVAL: Final = 0.001
_MAX_OUTBOX: Final = 1000
_WRITE_HIGH_WATER: Final = 256 * 1024
_LINGER_RST: Final = struct.pack("ii", 1, 0)



class Tally:
    """Counts events and says when to report them: at most once per ``interval``, with the count
    since the last report (pure; ``now`` is passed in)."""

    __slots__ = ("interval", "last_report", "pending")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.pending = 0
        self.last_report = -math.inf

    def add(self, now: float) -> int:
        """Count one event; the number to report now, or 0 to stay quiet."""
        self.pending += 1
        if now - self.last_report < self.interval:
            return 0
        self.last_report = now
        return self.take()

    def take(self) -> int:
        """The unreported count, reset to zero."""
        count, self.pending = self.pending, 0
        return count


class Session(asyncio.Protocol):
    """The server side of one socket."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.loop = ctx.require_loop()
        self.codec = ServerCodec()
        self.phase = Phase.HANDSHAKE
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.client_id: int | None = None
        self.state = ClientState()
        self.silenced = False
        self.accepted_at = self.loop.time()
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._slow_timer: asyncio.TimerHandle | None = None
        self._throttled = False
        self._inbox: deque[codec.ServerEvent] = deque()
        self.outbox = Outbox(self.loop, ctx.faults, on_flushed=self._catch_up)
        self._pacing: deque[float] = deque()
        self._last_pacing_error = -math.inf
        self._garbage = Tally(PACING_WINDOW)
        self._ticker: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.messages_received = 0
        self.closed = self.loop.create_future()

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = self.outbox.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.state.peer = self.peer
        # pause_writing() fires above the output limit too, so resume_writing() tells us when a
        # throttled client has caught up
        high = min(_WRITE_HIGH_WATER, self.ctx.settings.max_output_buffer)
        transport.set_write_buffer_limits(high=high)
        if not self.ctx.admit(self):
            self.phase = Phase.CLOSING
            transport.close()
            return
        verdict = self.ctx.faults.on_accept()
        if verdict is Verdict.CLOSE:
            logger.info("fake gateway: {} accepted and closed (handshake fault 'close')", self.peer)
            self.phase = Phase.CLOSING
            transport.close()
            return
        self.silenced = verdict is Verdict.SILENCE
        timeout = self.ctx.settings.handshake_timeout
        if timeout is not None:
            self._handshake_timer = self.loop.call_later(timeout, self._handshake_expired)

    def data_received(self, data: bytes) -> None:
        if self.phase in (Phase.CLOSING, Phase.CLOSED):
            return
        try:
            events = self.codec.receive_data(data)
        except ProtocolError as exc:
            logger.warning("fake gateway: {} protocol error, closing: {}", self.peer, exc)
            self.abort()
            return
        self._inbox.extend(events)
        self._process_inbox()

    def _process_inbox(self) -> None:
        """Handle received events in order; stop while the client is throttled (the rest wait
        here, and reading is paused, until it catches up)."""
        try:
            while self._inbox and not self._throttled:
                if self.phase in (Phase.CLOSING, Phase.CLOSED):
                    self._inbox.clear()
                    return
                self._on_event(self._inbox.popleft())
                self._check_output()
        except Exception:
            logger.exception("fake gateway: handler failed for {}; closing it", self.peer)
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSED
        for timer in (self._handshake_timer, self._slow_timer):
            if timer is not None:
                timer.cancel()
        self.outbox.close()
        self._writable.set()
        if self._ticker is not None:
            self._ticker.cancel()
        self._log_garbage(self._garbage.take(), "before closing")
        self.ctx.release(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()
        self._catch_up()

    @property
    def in_handshake(self) -> bool:
        """Accepted, not yet API-ready, and not held silent by a fault (a hung-gateway fault
        keeps its sockets: that is the fault)."""
        return self.phase in (Phase.HANDSHAKE, Phase.AWAIT_START_API) and not self.silenced

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        timeout = self.ctx.settings.handshake_timeout
        if self.ctx.faults.output_held() and timeout is not None:
            # a frozen gateway does nothing on its own either; look again later
            self._handshake_timer = self.loop.call_later(timeout, self._handshake_expired)
        elif self.in_handshake:
            logger.info("fake gateway: {} closed: no startApi within {}s", self.peer,
                        self.ctx.settings.handshake_timeout)  # fmt: skip
            self.abort()

    # ---- output limit: a client that does not read cannot make the gateway hold more

    def _unread(self) -> int:
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return buffered + self.outbox.bytes

    def _check_output(self) -> None:
        """Above ``max_output_buffer`` unread bytes, stop handling and reading this client's
        requests and give it ``slow_client_timeout`` to catch up."""
        limit = self.ctx.settings.max_output_buffer
        if self._throttled or self.transport is None or self._unread() <= limit:
            return
        self._throttled = True
        self.transport.pause_reading()
        logger.info("fake gateway: {} has over {} bytes unread; not reading its requests",
                    self.peer, limit)  # fmt: skip
        self._arm_slow_timer()

    def _arm_slow_timer(self) -> None:
        timeout = self.ctx.settings.slow_client_timeout
        if timeout is not None:
            self._slow_timer = self.loop.call_later(timeout, self._slow_timer_expired)

    def _slow_timer_expired(self) -> None:
        self._slow_timer = None
        transport = self.transport
        if transport is None or not self._throttled:
            return
        if transport.get_write_buffer_size() <= self.ctx.settings.max_output_buffer:
            self._arm_slow_timer()  # the backlog is ours (latency, a stall), not the client's
            return
        logger.warning("fake gateway: {} left its replies unread for {}s; disconnecting",
                       self.peer, self.ctx.settings.slow_client_timeout)  # fmt: skip
        self.abort()

    def _catch_up(self) -> None:
        """End the throttle once the unread bytes are back under the limit."""
        if not self._throttled or self._unread() > self.ctx.settings.max_output_buffer:
            return
        self._throttled = False
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        if self.transport is not None and self.phase not in (Phase.CLOSING, Phase.CLOSED):
            self.transport.resume_reading()
            self.loop.call_soon(self._process_inbox)

    # ---- output (see Outbox)

    def send(self, data: Outgoing) -> None:
        self.outbox.put(data)

    def send_error(self, req_id: int, code: int, text: str) -> None:
        self.send(self.state.error(req_id, code, text))

    def close_after_flush(self) -> None:
        self.send(None)
        self.phase = Phase.CLOSING

    def schedule_flush(self) -> None:
        self.outbox.schedule()

    def abort(self, reset: bool = False) -> None:
        """Close now, dropping unsent data; ``reset`` sends RST instead of FIN."""
        transport = self.transport
        if transport is None or self.phase is Phase.CLOSED:
            return
        self.phase = Phase.CLOSING
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        transport.abort()

    def close(self) -> None:
        """Close after the transport's buffer drains (FIN)."""
        if self.transport is not None:
            self.phase = Phase.CLOSING
            self.transport.close()

    # ---- input

    def _on_event(self, event: codec.ServerEvent) -> None:
        if isinstance(event, Hello):
            self._on_hello(event)
        elif isinstance(event, BadFrame):
            self._log_garbage(self._garbage.add(self.loop.time()), event.reason)
            self._within_pacing()  # a garbage frame costs the client its share, as a message does
        else:
            self._on_message(event)

    def _log_garbage(self, count: int, detail: str) -> None:
        if count:
            logger.warning("fake gateway: {} sent {} garbage frame(s) ({}); ignored",
                           self.peer, count, detail)  # fmt: skip

    def _on_hello(self, hello: Hello) -> None:
        if self.silenced or self.ctx.faults.on_hello() is Verdict.SILENCE:
            logger.info("fake gateway: {} hello ignored (fault)", self.peer)
            self.phase = Phase.SILENT
            return
        try:
            version = codec.negotiate_version(
                hello, server_max=self.ctx.settings.server_version, server_min=MIN_SERVER_VERSION
            )
        except NoCommonVersion as exc:
            logger.warning("fake gateway: {} {}; closing", self.peer, exc)
            self.abort()
            return
        self.state.server_version = version
        self.phase = Phase.AWAIT_START_API
        self.send(codec.encode_server_hello(version, self.ctx.settings.connection_time()))

    def _on_message(self, message: Message) -> None:
        self.ctx.counts[message.msg_id] += 1
        self.messages_received += 1
        verdict = self.ctx.faults.on_request(message.msg_id)
        if self.phase is Phase.SILENT or verdict is Verdict.SILENCE:
            return  # a frozen TWS: requests received now are dropped, not replayed
        if not self._within_pacing() or verdict is Verdict.DROP:
            return
        try:
            request = codec.parse_request(message, self.state.server_version)
        except MalformedRequest as exc:
            self._on_malformed(exc)
            return
        if self.phase is Phase.AWAIT_START_API:
            if isinstance(request, codec.StartApi):
                self._on_start_api(request)
            else:
                logger.warning("fake gateway: {} sent message {} before startApi; ignored",
                               self.peer, message.msg_id)  # fmt: skip
            return
        if request is None:
            logger.debug(
                "fake gateway: {} message {} not supported; ignored", self.peer, message.msg_id
            )
            return
        for reply in self.ctx.app.handle(self.state, request):
            self.send(reply)
        if self.ctx.faults.on_handled(message.msg_id) is Verdict.CLOSE:
            logger.info("fake gateway: {} closed after message {} (fault)", self.peer,
                        message.msg_id)  # fmt: skip
            self.abort()
        self.ctx.deliver()  # what the request did at the broker, to every client concerned
        if self.state.streams and (self._ticker is None or self._ticker.done()):
            self._ticker = self.loop.create_task(self._tick_loop())

    def _on_malformed(self, exc: MalformedRequest) -> None:
        """TWS rejects a malformed order by its id (201); anything else is logged and ignored."""
        order_id = exc.order_id if isinstance(exc, MalformedOrder) else None
        if order_id is None or self.phase is not Phase.READY:
            logger.warning("fake gateway: {} malformed request ignored: {}", self.peer, exc)
            return
        logger.info("fake gateway: {} malformed order {} rejected: {}", self.peer, order_id, exc)
        self.send_error(order_id, ErrorCode.ORDER_REJECTED, rejected_text(str(exc)))

    def _within_pacing(self) -> bool:
        limit = self.ctx.settings.pacing_limit
        if limit is None:
            return True
        now = self.loop.time()
        window = self._pacing
        while window and now - window[0] >= PACING_WINDOW:
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return True
        if now - self._last_pacing_error >= PACING_WINDOW:
            self._last_pacing_error = now
            logger.info("fake gateway: {} exceeded {} msg/s (error 100)", self.peer, limit)
            self.send_error(codec.NO_REQUEST_ID, ErrorCode.MAX_RATE_EXCEEDED,
                            max_rate_text(limit, len(window) + 1))  # fmt: skip
        return False

    def _on_start_api(self, request: codec.StartApi) -> None:
        if not self.ctx.claim_client_id(self, request.client_id):
            logger.info(
                "fake gateway: {} client id {} in use (326); closing", self.peer, request.client_id
            )
            self.send_error(codec.NO_REQUEST_ID, ErrorCode.CLIENT_ID_IN_USE, TEXT_CLIENT_ID_IN_USE)
            self.close_after_flush()
            return
        self.client_id = self.state.client_id = request.client_id
        self.phase = Phase.READY
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        logger.info("fake gateway: {} API ready: client id {}, server version {}",
                    self.peer, request.client_id, self.state.server_version)  # fmt: skip
        for reply in self.ctx.app.welcome(self.state):
            self.send(reply)

    # ---- tick streams

    async def _tick_loop(self) -> None:
        """Emit every stream's due updates; one write per wake-up; respects flow control."""
        try:
            loop = self.loop
            last = loop.time()
            while self.state.streams and self.phase is Phase.READY:
                if not await self._ready_for_ticks():
                    last = loop.time()  # no backlog for the time output was held
                    continue
                now = loop.time()
                rate = self.ctx.settings.tick_rate
                chunk = _render_due(self.state, now - last, rate, self.ctx.broker.quote)
                last = now
                if chunk:
                    self.send(chunk)
                await asyncio.sleep(0 if math.isinf(rate) else max(1.0 / rate, _MIN_TICK_INTERVAL))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("fake gateway: tick stream for {} failed; closing it", self.peer)
            self.abort()

    async def _ready_for_ticks(self) -> bool:
        """True if ticks may be rendered now; otherwise wait a little and return False."""
        faults = self.ctx.faults
        if faults.output_held():
            await faults.output_released()
            return False
        if not self._writable.is_set():
            await self._writable.wait()
            return False
        if len(self.outbox) > _MAX_OUTBOX:  # replies delayed by latency pile up here
            await asyncio.sleep(_MIN_TICK_INTERVAL)
            return False
        return True

    def info(self) -> ClientInfo:
        return ClientInfo(
            peer=self.peer,
            phase=self.phase,
            client_id=self.client_id,
            server_version=self.state.server_version,
            account_summaries=len(self.state.account_summaries),
            market_data=len(self.state.streams),
            messages_received=self.messages_received,
        )


def _render_due(
    state: ClientState, elapsed: float, rate: float, quote: Callable[[int], Quote]
) -> bytes:
    """Every stream's updates due after ``elapsed`` seconds at ``rate`` updates/s."""
    chunks = []
    for stream in list(state.streams.values()):
        due = math.inf if math.isinf(rate) else stream.carry + elapsed * rate
        n = int(min(due, _MAX_UPDATES_PER_WAKEUP))
        stream.carry = 0.0 if math.isinf(due) else min(due - n, 1.0)
        if n:
            chunks.append(stream.render(n, quote(stream.instrument)))
    return b"".join(chunks)
