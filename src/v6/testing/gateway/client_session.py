"""One client socket of the fake gateway (an ``asyncio.BufferedProtocol``): I/O, pacing, limits.

The session feeds bytes to the pure codec, asks the active faults at each hook point, hands
requests to the :class:`~v6.testing.gateway.app.TwsApp` and writes its replies: ordered, delayed
by any latency fault, batched per event-loop iteration, held while a fault holds output. Every
callback is guarded: a client's bad bytes or a handler bug closes that client only.

One client cannot monopolise the gateway (:mod:`~v6.testing.gateway.intake`): it is read
:data:`READ_CHUNK` bytes at a time; per event-loop turn at most :data:`HANDLED_PER_TURN` of its
frames are handled, fewer once they made :data:`OUTPUT_PER_TURN` bytes of replies (its reading is
paused while frames wait); each frame is paced before it is decoded, frames over the limit are
dropped unread, and after :data:`DROPPED_PER_WINDOW` of them it is not read until its window has
room; while its unread output is over ``max_output_buffer`` nothing more of its input is handled,
so no reply is built for it.

A session sees its gateway only through a :class:`GatewayContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Final

from loguru import logger

from v6.errors import MalformedOrder, MalformedRequest, NoCommonVersion, ProtocolError
from v6.protocol import codec
from v6.protocol.codec import MIN_SERVER_VERSION, BadFrame, Hello, Message, ServerCodec
from v6.protocol.codes import TEXT_CLIENT_ID_IN_USE, ErrorCode, max_rate_text, rejected_text
from v6.testing.gateway.clients import ClientInfo, ClientState, Phase
from v6.testing.gateway.config import PACING_WINDOW
from v6.testing.gateway.context import GatewayContext
from v6.testing.gateway.faults import HookVerdict
from v6.testing.gateway.intake import (
    HANDLED_PER_TURN,
    OUTPUT_PER_TURN,
    READ_CHUNK,
    Pacer,
    Tally,
)
from v6.testing.gateway.outbox import Outbox, Outgoing
from v6.testing.gateway.streams import StreamKind
from v6.testing.gateway.ticks import LiveLoop

_WRITE_HIGH_WATER: Final = 256 * 1024
_LINGER_RST: Final = struct.pack("ii", 1, 0)
# SO_SNDBUF (Linux doubles it): else the kernel takes megabytes from a client that does not read
# before max_output_buffer is ever reached, and each of those bytes is built and copied first
_KERNEL_SEND_BUFFER: Final = 128 * 1024


class ClientSession(asyncio.BufferedProtocol):
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
        self._pacing_timer: asyncio.TimerHandle | None = None
        self._pump_handle: asyncio.Handle | None = None
        self._throttled = False
        self._reading = True
        self._read_view = memoryview(bytearray(READ_CHUNK))
        self.outbox = Outbox(self.loop, ctx.faults, on_flushed=self._catch_up)
        self._pacer = Pacer()
        self._garbage = Tally(PACING_WINDOW)
        self._dropped = Tally(PACING_WINDOW)
        self._live = LiveLoop(self, ctx)
        self.writable = asyncio.Event()
        """Set while the transport takes writes without pausing (ticks wait for it)."""
        self.writable.set()
        self.messages_received = 0
        self.closed = self.loop.create_future()
        ctx.accepting += 1  # made by the listener for an accepted socket: connection_made next

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.ctx.accepting -= 1
        self.transport = self.outbox.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.state.peer = self.peer
        # pause_writing() fires above the output limit too, so resume_writing() tells us when a
        # throttled client has caught up
        high = min(_WRITE_HIGH_WATER, self.ctx.settings.max_output_buffer)
        transport.set_write_buffer_limits(high=high)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _KERNEL_SEND_BUFFER)
        if not self.ctx.admit(self):
            self.phase = Phase.CLOSING
            transport.close()
            return
        verdict = self.ctx.faults.on_accept()
        if verdict is HookVerdict.CLOSE:
            logger.info("fake gateway: {} accepted and closed (handshake fault 'close')", self.peer)
            self.phase = Phase.CLOSING
            transport.close()
            return
        self.silenced = verdict is HookVerdict.SILENCE
        timeout = self.ctx.settings.handshake_timeout
        if timeout is not None:
            self._handshake_timer = self.loop.call_later(timeout, self._handshake_expired)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view  # a bounded read: see READ_CHUNK

    def buffer_updated(self, nbytes: int) -> None:
        if self.phase in (Phase.CLOSING, Phase.CLOSED):
            return
        try:
            self.codec.feed(self._read_view[:nbytes])
        except ProtocolError as exc:
            logger.warning("fake gateway: {} protocol error, closing: {}", self.peer, exc)
            self.abort()
            return
        self._pump()

    def _pump(self) -> None:
        """Take this turn's share of the buffered frames; come back next turn for the rest."""
        self._pump_handle = None
        try:
            more = self._take_frames()
        except ProtocolError as exc:
            logger.warning("fake gateway: {} protocol error, closing: {}", self.peer, exc)
            self.abort()
            return
        except Exception:
            logger.exception("fake gateway: handler failed for {}; closing it", self.peer)
            self.abort()
            return
        if more:
            self._pump_handle = self.loop.call_soon(self._pump)
        self._update_reading()

    def _accepting(self) -> bool:
        return not self._throttled and self.phase not in (Phase.CLOSING, Phase.CLOSED)

    def _take_frames(self) -> bool:
        """Handle (or, over the pacing limit, drop unread) buffered frames within one turn's
        budget; True if complete frames are left for the next turn."""
        handled = 0
        now = self.loop.time()
        codec_ = self.codec
        output_before = self.outbox.bytes
        while self._accepting() and codec_.frame_ready():
            if handled >= HANDLED_PER_TURN or self.outbox.bytes - output_before > OUTPUT_PER_TURN:
                return True
            if codec_.in_handshake or self._admit(now):
                event = codec_.next_event()
                assert event is not None
                self._on_event(event)
                self._check_output()
                handled += 1
                continue
            allowance = self._pacer.drop_allowance()
            dropped = codec_.skip_frames(allowance)
            self._count_dropped(now, dropped)
            if dropped == allowance:
                return False  # the rest wait, unread, until the window has room
        return False

    def _admit(self, now: float) -> bool:
        """Pace one frame before it is decoded; report going over once per window (100)."""
        limit = self.ctx.settings.pacing_limit
        if self._pacer.admit(now, limit):
            return True
        assert limit is not None
        if self._pacer.report_due(now):
            logger.info("fake gateway: {} exceeded {} msg/s (error 100)", self.peer, limit)
            self.send_error(codec.NO_REQUEST_ID, ErrorCode.MAX_RATE_EXCEEDED,
                            max_rate_text(limit, self._pacer.in_window + 1))  # fmt: skip
        return False

    def _count_dropped(self, now: float, frames: int) -> None:
        self._pacer.dropped += frames
        self.ctx.frames_dropped += frames
        self._log_dropped(self._dropped.add(now, frames))

    def _log_dropped(self, count: int) -> None:
        if count:
            logger.info("fake gateway: {} over the pacing limit: {} frame(s) dropped unread",
                        self.peer, count)  # fmt: skip

    def _update_reading(self) -> None:
        """Read this client only while it is under its output limit, has no frames waiting for
        a later turn and has not spent its drop allowance in a full pacing window (then wake up
        when the window has room)."""
        transport = self.transport
        if transport is None or self.phase in (Phase.CLOSING, Phase.CLOSED):
            return
        reopens = self._pacer.reopens_at(self.loop.time(), self.ctx.settings.pacing_limit)
        if reopens is not None and self._pacing_timer is None:
            self._pacing_timer = self.loop.call_at(reopens, self._pacing_reopened)
        want = not self._throttled and self._pump_handle is None and reopens is None
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def _pacing_reopened(self) -> None:
        self._pacing_timer = None
        if self._pump_handle is None and self.phase not in (Phase.CLOSING, Phase.CLOSED):
            self._pump_handle = self.loop.call_soon(self._pump)  # the frames that waited
        self._update_reading()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSED
        for timer in (self._handshake_timer, self._slow_timer, self._pacing_timer,
                      self._pump_handle):  # fmt: skip
            if timer is not None:
                timer.cancel()
        self.outbox.close()
        self.writable.set()
        self._live.stop()
        self._log_garbage(self._garbage.take(), "before closing")
        self._log_dropped(self._dropped.take())
        self.ctx.release(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()
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
        self._update_reading()
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
        if self._pump_handle is None and self.phase not in (Phase.CLOSING, Phase.CLOSED):
            self._pump_handle = self.loop.call_soon(self._pump)  # the frames that waited
        self._update_reading()

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
        elif isinstance(event, BadFrame):  # paced like a message before it was decoded
            self._log_garbage(self._garbage.add(self.loop.time()), event.reason)
        else:
            self._on_message(event)

    def _log_garbage(self, count: int, detail: str) -> None:
        if count:
            logger.warning("fake gateway: {} sent {} garbage frame(s) ({}); ignored",
                           self.peer, count, detail)  # fmt: skip

    def _on_hello(self, hello: Hello) -> None:
        if self.silenced or self.ctx.faults.on_hello() is HookVerdict.SILENCE:
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
        if self.phase is Phase.SILENT or verdict is not HookVerdict.PASS:
            return  # a frozen TWS drops requests received now (never replayed), or ignored ones
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
        if self.ctx.faults.on_handled(message.msg_id) is HookVerdict.CLOSE:
            logger.info("fake gateway: {} closed after message {} (fault)", self.peer,
                        message.msg_id)  # fmt: skip
            self.abort()
        self.ctx.deliver()  # what the request did at the broker, to every client concerned
        self._live.poke()

    def _on_malformed(self, exc: MalformedRequest) -> None:
        """TWS rejects a malformed order by its id (201); anything else is logged and ignored."""
        order_id = exc.order_id if isinstance(exc, MalformedOrder) else None
        if order_id is None or self.phase is not Phase.READY:
            logger.warning("fake gateway: {} malformed request ignored: {}", self.peer, exc)
            return
        logger.info("fake gateway: {} malformed order {} rejected: {}", self.peer, order_id, exc)
        self.send_error(order_id, ErrorCode.ORDER_REJECTED, rejected_text(str(exc)))

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

    def info(self) -> ClientInfo:
        return ClientInfo(
            peer=self.peer,
            phase=self.phase,
            client_id=self.client_id,
            server_version=self.state.server_version,
            account_summaries=len(self.state.account_summaries),
            market_data=self.state.count(StreamKind.MARKET_DATA),
            messages_received=self.messages_received,
        )

