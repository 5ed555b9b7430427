"""A fake TWS / IB Gateway: an asyncio TCP server speaking the TWS API socket protocol.

Unmodified ``ib_async`` and ``ibapi`` clients connect to it over real sockets. All protocol
knowledge lives in the pure codec (:mod:`v6.protocol.codec`); this module is the I/O edge: accept
sockets, feed bytes to the codec, act on requests, write replies, and inject faults on demand.

Behaviour, as a real TWS (``/work/shared/reference/tws-protocol.md``):

* handshake: answers ``min(server_version, client_max)``; closes at once on bad magic, a bad hello
  or no common version; sends nothing but the version answer until ``startApi``;
* after ``startApi``: managedAccounts, nextValidId, farm notices 2104/2106/2158;
* startup sync of ``ib_async.IB.connectAsync``; reqCurrentTime, reqIds, reqManagedAccts;
* account summary subscriptions, at most :data:`MAX_ACCOUNT_SUMMARIES` per client (then 322);
* market data streams (tickPrice + tickSize) and historical bars;
* a duplicate live client id gets 326 and the socket is closed;
* pacing: above ``pacing_limit`` messages per second a client's messages are dropped and it gets
  error 100 (once per second while it keeps exceeding);
* a garbage frame (well framed, not a message) or an unknown message id is logged and ignored; a
  framing error (oversized length) closes that client. Nothing a client sends affects others.

Faults are switched at runtime: :meth:`FakeGateway.stall`, :meth:`~FakeGateway.drop_all`,
:meth:`~FakeGateway.stop` / :meth:`~FakeGateway.start`, :meth:`~FakeGateway.handshake_fault`,
:meth:`~FakeGateway.broadcast_error`, :meth:`~FakeGateway.set_latency`,
:meth:`~FakeGateway.send_garbage`, :meth:`~FakeGateway.ignore_requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from typing import Final

from loguru import logger

from v6.errors import ConfigError, MalformedRequest, NoCommonVersion, ProtocolError
from v6.protocol import codec
from v6.protocol.codec import (
    MAX_SERVER_VERSION,
    MIN_SERVER_VERSION,
    BadFrame,
    ClientMessage,
    Hello,
    Message,
    ServerCodec,
    TickType,
)
from v6.testing.account import AccountState

# --------------------------------------------------------------------------------------------------
# Defaults (defined once; the CLI and docs quote these)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 0
"""Library default: a free port, read back from :attr:`FakeGateway.port`."""
DEFAULT_MAX_CLIENTS: Final = 32
"""TWS accepts at most 32 simultaneous API clients."""
DEFAULT_PACING_LIMIT: Final = 50
"""Messages per :data:`PACING_WINDOW` a client may send before error 100 (TWS: 50/s)."""
PACING_WINDOW: Final = 1.0
DEFAULT_TICK_RATE: Final = 4.0
"""Price updates per second per market-data subscription; each is a tickPrice + a tickSize."""
DEFAULT_NEXT_ORDER_ID: Final = 1
MAX_ACCOUNT_SUMMARIES: Final = 2
"""Active account-summary subscriptions a client may hold; the next one gets error 322."""
MAX_HISTORICAL_BARS: Final = 2000
STARTUP_SYNC_REQUESTS: Final = frozenset(
    {
        ClientMessage.REQ_POSITIONS,
        ClientMessage.REQ_OPEN_ORDERS,
        ClientMessage.REQ_COMPLETED_ORDERS,
        ClientMessage.REQ_ACCOUNT_UPDATES,
        ClientMessage.REQ_ACCOUNT_UPDATES_MULTI,
        ClientMessage.REQ_EXECUTIONS,
    }
)
"""The requests ``ib_async.IB.connectAsync`` sends after the API is ready; pass to
:meth:`FakeGateway.ignore_requests` for a "sync never completes" fault."""

_MAX_UPDATES_PER_WAKEUP: Final = 256
_MIN_TICK_INTERVAL: Final = 0.001
_MAX_OUTBOX: Final = 1000
_CLOSE_GRACE: Final = 1.0
_WRITE_HIGH_WATER: Final = 256 * 1024
_LINGER_RST: Final = struct.pack("ii", 1, 0)


class ErrorCode(IntEnum):
    """TWS error / system message codes the fake gateway sends."""

    MAX_RATE_EXCEEDED = 100
    ACCOUNT_SUMMARY_LIMIT = 322
    CLIENT_ID_IN_USE = 326
    CONNECTIVITY_LOST = 1100
    RESTORED_DATA_LOST = 1101
    RESTORED_DATA_MAINTAINED = 1102
    MARKET_DATA_FARM_BROKEN = 2103
    MARKET_DATA_FARM_OK = 2104
    HMDS_FARM_BROKEN = 2105
    HMDS_FARM_OK = 2106
    TWS_SERVER_BROKEN = 2110
    SEC_DEF_FARM_BROKEN = 2157
    SEC_DEF_FARM_OK = 2158


SYSTEM_MESSAGES: Final[dict[int, str]] = {
    ErrorCode.CONNECTIVITY_LOST: "Connectivity between IB and Trader Workstation has been lost.",
    ErrorCode.RESTORED_DATA_LOST: (
        "Connectivity between IB and Trader Workstation has been restored - data lost."
    ),
    ErrorCode.RESTORED_DATA_MAINTAINED: (
        "Connectivity between IB and Trader Workstation has been restored - data maintained."
    ),
    ErrorCode.MARKET_DATA_FARM_BROKEN: "Market data farm connection is broken:usfarm",
    ErrorCode.MARKET_DATA_FARM_OK: "Market data farm connection is OK:usfarm",
    ErrorCode.HMDS_FARM_BROKEN: "HMDS data farm connection is broken:ushmds",
    ErrorCode.HMDS_FARM_OK: "HMDS data farm connection is OK:ushmds",
    ErrorCode.TWS_SERVER_BROKEN: (
        "Connectivity between Trader Workstation and server is broken. "
        "It will be restored automatically."
    ),
    ErrorCode.SEC_DEF_FARM_BROKEN: "Sec-def data farm connection is broken:secdefnj",
    ErrorCode.SEC_DEF_FARM_OK: "Sec-def data farm connection is OK:secdefnj",
}
"""TWS's own text for the system messages :meth:`FakeGateway.broadcast_error` knows."""

FARM_NOTICES: Final = (
    ErrorCode.MARKET_DATA_FARM_OK,
    ErrorCode.HMDS_FARM_OK,
    ErrorCode.SEC_DEF_FARM_OK,
)
_TEXT_CLIENT_ID_IN_USE: Final = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
_TEXT_ACCOUNT_SUMMARY_LIMIT: Final = (
    "Error processing request:-'bd' : cause - Maximum number of account summary requests exceeded"
)


class HandshakeFault(StrEnum):
    """What new connections get instead of a handshake (``None``: a normal handshake)."""

    CLOSE = "close"
    """Accept, then close at once (socat in front of a dead gateway)."""
    SILENT = "silent"
    """Accept, read the hello, never answer."""


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
    """A snapshot of one connected client (:attr:`FakeGateway.clients`)."""

    peer: str
    phase: Phase
    client_id: int | None
    server_version: int
    account_summaries: int
    market_data: int
    messages_received: int


# --------------------------------------------------------------------------------------------------
# Pure helpers: historical bars and tick content


_SPAN_RE: Final = re.compile(r"\s*(\d+)\s*([A-Za-z]+)\s*")
_DURATION_UNITS: Final = {"S": 1, "D": 86_400, "W": 604_800, "M": 2_592_000, "Y": 31_536_000}
_BAR_UNITS: Final = {"sec": 1, "min": 60, "hour": 3_600, "day": 86_400, "week": 604_800,
                     "month": 2_592_000}  # fmt: skip
_DEFAULT_DURATION: Final = 30
_DEFAULT_BAR: Final = 5


def duration_seconds(duration: str) -> int:
    """Seconds in an IB duration string (``30 S``, ``1 D``, ``2 W``, ``1 M``, ``1 Y``)."""
    match = _SPAN_RE.fullmatch(duration)
    if match is None or match.group(2).upper() not in _DURATION_UNITS:
        return _DEFAULT_DURATION
    return int(match.group(1)) * _DURATION_UNITS[match.group(2).upper()]


def bar_seconds(bar_size: str) -> int:
    """Seconds in an IB bar size (``5 secs``, ``1 min``, ``1 hour``, ``1 day``, ...)."""
    match = _SPAN_RE.fullmatch(bar_size)
    if match is None:
        return _DEFAULT_BAR
    unit = match.group(2).lower().rstrip("s")
    if unit not in _BAR_UNITS or int(match.group(1)) <= 0:
        return _DEFAULT_BAR
    return int(match.group(1)) * _BAR_UNITS[unit]


def _format_bar_time(epoch: int, step: int, format_date: int) -> str:
    if step >= 86_400:
        return time.strftime("%Y%m%d", time.gmtime(epoch))
    if format_date == 2:
        return str(epoch)
    return time.strftime("%Y%m%d  %H:%M:%S", time.gmtime(epoch))


def base_price(con_id: int, symbol: str) -> float:
    """A stable per-contract price level (100..199)."""
    seed = con_id or sum(symbol.encode())
    return 100.0 + seed % 100


def make_bars(
    request: codec.ReqHistoricalData, now: float, max_bars: int = MAX_HISTORICAL_BARS
) -> tuple[str, str, list[codec.Bar]]:
    """Deterministic bars covering ``request.duration`` up to ``now``: (start, end, bars)."""
    step = bar_seconds(request.bar_size)
    count = max(1, min(max_bars, duration_seconds(request.duration) // step))
    end = int(now) // step * step
    start = end - count * step
    level = base_price(request.contract.con_id, request.contract.symbol)
    bars = []
    for i in range(count):
        t = start + i * step
        wobble = ((t // step) % 20 - 10) * 0.05
        open_ = round(level + wobble, 2)
        close = round(open_ + 0.03, 2)
        bars.append(
            codec.Bar(
                date=_format_bar_time(t, step, request.format_date),
                open=open_,
                high=round(close + 0.05, 2),
                low=round(open_ - 0.05, 2),
                close=close,
                volume=100 + (t // step) % 7 * 10,
                wap=round((open_ + close) / 2, 3),
                bar_count=1 + (t // step) % 5,
            )
        )
    fmt = "%Y%m%d  %H:%M:%S"
    return time.strftime(fmt, time.gmtime(start)), time.strftime(fmt, time.gmtime(end)), bars


class _TickStream:
    """One market-data subscription: renders price updates (tickPrice + tickSize) cheaply."""

    __slots__ = ("carry", "level", "req_id", "seq", "volume")

    _PRICE_TYPES = (TickType.BID, TickType.ASK, TickType.LAST)

    def __init__(self, req_id: int, level: float) -> None:
        self.req_id = req_id
        self.level = level
        self.seq = 0
        self.volume = 0
        self.carry = 0.0

    def render(self, updates: int) -> bytes:
        parts: list[bytes] = []
        req_id, level = self.req_id, self.level
        tick_price, tick_size = codec.tick_price, codec.tick_size
        volume_type = TickType.VOLUME.value
        seq, volume = self.seq, self.volume
        for _ in range(updates):
            seq += 1
            size = 100 * (1 + seq % 5)
            volume += size
            price = round(level + (seq * 7 % 41 - 20) * 0.01, 2)
            parts.append(tick_price(req_id, self._PRICE_TYPES[seq % 3].value, price, size))
            parts.append(tick_size(req_id, volume_type, volume))
        self.seq, self.volume = seq, volume
        return b"".join(parts)


# --------------------------------------------------------------------------------------------------
# One client connection


_Outgoing = bytes | None  # None: close the socket after what precedes it


class _Client(asyncio.Protocol):
    """The server side of one socket. Every callback is guarded: a client's bad bytes or a handler
    bug closes that client only."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gw = gateway
        self.loop = gateway._require_loop()
        self.codec = ServerCodec()
        self.phase = Phase.HANDSHAKE
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.server_version = 0
        self.client_id: int | None = None
        self.fault: HandshakeFault | None = gateway._handshake_fault
        self.outbox: deque[tuple[float, _Outgoing]] = deque()
        self._last_due = 0.0
        self._flush_handle: asyncio.Handle | None = None
        self._pacing: deque[float] = deque()
        self._last_pacing_error = -math.inf
        self.account_summaries: set[int] = set()
        self.streams: dict[int, _TickStream] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.messages_received = 0
        self.closed = self.loop.create_future()

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        if not self.gw._admit(self):
            self.phase = Phase.CLOSING
            transport.close()
            return
        if self.fault is HandshakeFault.CLOSE:
            logger.info("fake gateway: {} accepted and closed (handshake fault 'close')", self.peer)
            self.phase = Phase.CLOSING
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.phase in (Phase.CLOSING, Phase.CLOSED):
            return
        try:
            events = self.codec.receive_data(data)
        except ProtocolError as exc:
            logger.warning("fake gateway: {} protocol error, closing: {}", self.peer, exc)
            self.abort()
            return
        try:
            for event in events:
                if self.phase in (Phase.CLOSING, Phase.CLOSED):
                    break
                self._on_event(event)
        except Exception:
            logger.exception("fake gateway: handler failed for {}; closing it", self.peer)
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSED
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.outbox.clear()
        self._writable.set()
        if self._ticker is not None:
            self._ticker.cancel()
        self.gw._release(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # ---- output: ordered, delayed by the gateway latency, batched per event-loop iteration

    def send(self, data: _Outgoing) -> None:
        if self.phase is Phase.CLOSED:
            return
        due = max(self.loop.time() + self.gw._latency, self._last_due)
        self._last_due = due
        self.outbox.append((due, data))
        self.schedule_flush()

    def close_after_flush(self) -> None:
        self.send(None)
        self.phase = Phase.CLOSING

    def schedule_flush(self) -> None:
        if self._flush_handle is not None or not self.outbox or self.phase is Phase.CLOSED:
            return
        due = self.outbox[0][0]
        if due <= self.loop.time():
            self._flush_handle = self.loop.call_soon(self._flush)
        else:
            self._flush_handle = self.loop.call_at(due, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        transport = self.transport
        if transport is None or self.phase is Phase.CLOSED or self.gw._stalled:
            return  # held while stalled; unstall() reschedules
        now = self.loop.time()
        chunks: list[bytes] = []
        close = False
        outbox = self.outbox
        while outbox and outbox[0][0] <= now:
            data = outbox.popleft()[1]
            if data is None:
                close = True
                break
            chunks.append(data)
        if chunks and not transport.is_closing():
            transport.write(b"".join(chunks))
        if close:
            outbox.clear()
            transport.close()
        else:
            self.schedule_flush()

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

    def send_error(self, req_id: int, code: int, text: str) -> None:
        self.send(codec.error_message(self.server_version, req_id, code, text))

    # ---- input

    def _on_event(self, event: codec.ServerEvent) -> None:
        if isinstance(event, Hello):
            self._on_hello(event)
        elif isinstance(event, BadFrame):
            logger.warning(
                "fake gateway: {} sent a garbage frame ({}); ignored", self.peer, event.reason
            )
        else:
            self._on_message(event)

    def _on_hello(self, hello: Hello) -> None:
        if self.fault is HandshakeFault.SILENT or self.gw._stalled:
            reason = "handshake fault 'silent'" if self.fault else "gateway stalled"
            logger.info("fake gateway: {} hello ignored ({})", self.peer, reason)
            self.phase = Phase.SILENT
            return
        try:
            version = codec.negotiate_version(
                hello, server_max=self.gw.server_version, server_min=MIN_SERVER_VERSION
            )
        except NoCommonVersion as exc:
            logger.warning("fake gateway: {} {}; closing", self.peer, exc)
            self.abort()
            return
        self.server_version = version
        self.phase = Phase.AWAIT_START_API
        self.send(codec.encode_server_hello(version, self.gw._connection_time()))

    def _on_message(self, message: Message) -> None:
        gw = self.gw
        gw._counts[message.msg_id] += 1
        self.messages_received += 1
        if self.phase is Phase.SILENT or gw._stalled:
            return  # a frozen TWS: requests received now are dropped, not replayed
        if not self._within_pacing():
            return
        if message.msg_id in gw._ignored:
            return
        try:
            request = codec.parse_request(message)
        except MalformedRequest as exc:
            logger.warning("fake gateway: {} malformed request ignored: {}", self.peer, exc)
            return
        if self.phase is Phase.AWAIT_START_API:
            if isinstance(request, codec.StartApi):
                self._on_start_api(request)
            else:
                logger.warning(
                    "fake gateway: {} sent message {} before startApi; ignored",
                    self.peer,
                    message.msg_id,
                )
            return
        if request is None:
            logger.debug(
                "fake gateway: {} message {} not supported; ignored", self.peer, message.msg_id
            )
            return
        self._dispatch(request)

    def _within_pacing(self) -> bool:
        limit = self.gw.pacing_limit
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
            self.send_error(
                codec.NO_REQUEST_ID,
                ErrorCode.MAX_RATE_EXCEEDED,
                f"Max rate of messages per second has been exceeded:max={limit} "
                f"rec={len(window) + 1} (1)",
            )
        return False

    def _on_start_api(self, request: codec.StartApi) -> None:
        gw = self.gw
        if request.client_id in gw._live_ids:
            logger.info(
                "fake gateway: {} client id {} in use (326); closing", self.peer, request.client_id
            )
            self.send_error(codec.NO_REQUEST_ID, ErrorCode.CLIENT_ID_IN_USE, _TEXT_CLIENT_ID_IN_USE)
            self.close_after_flush()
            return
        self.client_id = request.client_id
        gw._live_ids[request.client_id] = self
        self.phase = Phase.READY
        logger.info(
            "fake gateway: {} API ready: client id {}, server version {}",
            self.peer,
            request.client_id,
            self.server_version,
        )
        self.send(codec.managed_accounts(gw.account_state.accounts))
        self.send(codec.next_valid_id(gw._next_order_id))
        if gw.farm_notices:
            for code in FARM_NOTICES:
                self.send_error(codec.NO_REQUEST_ID, code, SYSTEM_MESSAGES[code])

    def _dispatch(self, request: codec.Request) -> None:
        gw = self.gw
        state = gw.account_state
        send = self.send
        match request:
            case codec.ReqCurrentTime():
                send(codec.current_time(int(gw._wall_clock())))
            case codec.ReqIds():
                send(codec.next_valid_id(gw._next_order_id))
            case codec.ReqManagedAccounts():
                send(codec.managed_accounts(state.accounts))
            case codec.ReqPositions():
                for p in state.positions:
                    send(codec.position_data(p.account, p.contract, p.quantity, p.avg_cost))
                send(codec.position_end())
            case codec.ReqOpenOrders():
                send(codec.open_order_end())
            case codec.ReqCompletedOrders():
                send(codec.completed_orders_end())
            case codec.ReqAccountUpdates(subscribe=True, account=account):
                self._account_updates(account or state.accounts[0])
            case codec.ReqAccountUpdatesMulti(req_id=req_id, account=account, model_code=model):
                accounts = state.accounts if account in ("", "All") else (account,)
                for acct in accounts:
                    for v in state.values_for(acct):
                        send(codec.account_update_multi(req_id, acct, model, v.key, v.value,
                                                        v.currency))  # fmt: skip
                send(codec.account_update_multi_end(req_id))
            case codec.ReqExecutions(req_id=req_id):
                send(codec.exec_details_end(req_id))
            case codec.ReqAccountSummary():
                self._account_summary(request)
            case codec.CancelAccountSummary(req_id=req_id):
                self.account_summaries.discard(req_id)
            case codec.ReqMktData():
                self._market_data(request)
            case codec.CancelMktData(req_id=req_id):
                self.streams.pop(req_id, None)
            case codec.ReqHistoricalData():
                start, end, bars = make_bars(request, gw._wall_clock())
                send(codec.historical_data(request.req_id, start, end, bars))
            case _:
                pass  # no reply: reqAutoOpenOrders, cancels, unsubscribes

    def _account_updates(self, account: str) -> None:
        state = self.gw.account_state
        if account not in state.accounts:
            logger.warning("fake gateway: {} account updates for unknown {}", self.peer, account)
            return
        for v in state.values_for(account):
            self.send(codec.account_value(v.key, v.value, v.currency, account))
        for p in state.positions_for(account):
            self.send(codec.portfolio_value(account, p.contract, p.quantity, p.price,
                                            p.market_value, p.avg_cost, p.unrealized_pnl,
                                            p.realized_pnl))  # fmt: skip
        now = time.gmtime(self.gw._wall_clock())
        self.send(codec.account_update_time(time.strftime("%H:%M", now)))
        self.send(codec.account_download_end(account))

    def _account_summary(self, request: codec.ReqAccountSummary) -> None:
        if len(self.account_summaries) >= self.gw.max_account_summaries:
            logger.info("fake gateway: {} account summary limit reached (322)", self.peer)
            self.send_error(
                request.req_id, ErrorCode.ACCOUNT_SUMMARY_LIMIT, _TEXT_ACCOUNT_SUMMARY_LIMIT
            )
            return
        self.account_summaries.add(request.req_id)
        state = self.gw.account_state
        tags = set(request.tags)
        for account in state.accounts:
            for v in state.values_for(account):
                if v.key in tags:
                    self.send(
                        codec.account_summary(request.req_id, account, v.key, v.value, v.currency)
                    )
        self.send(codec.account_summary_end(request.req_id))

    def _market_data(self, request: codec.ReqMktData) -> None:
        stream = _TickStream(
            request.req_id, base_price(request.contract.con_id, request.contract.symbol)
        )
        self.send(stream.render(1))
        if request.snapshot:
            self.send(codec.tick_snapshot_end(request.req_id))
            return
        self.streams[request.req_id] = stream
        if self._ticker is None or self._ticker.done():
            self._ticker = self.loop.create_task(self._tick_loop())

    async def _tick_loop(self) -> None:
        """Emit every stream's due updates; one write per wake-up; respects flow control."""
        try:
            loop = self.loop
            last = loop.time()
            while self.streams and self.phase is Phase.READY:
                gw = self.gw
                if gw._stalled:
                    await gw._unstalled.wait()
                    last = loop.time()
                    continue
                if not self._writable.is_set():
                    await self._writable.wait()
                    continue
                if len(self.outbox) > _MAX_OUTBOX:  # replies delayed by latency pile up here
                    await asyncio.sleep(_MIN_TICK_INTERVAL)
                    continue
                now = loop.time()
                rate = gw._tick_rate
                elapsed = now - last
                last = now
                chunks = []
                for stream in list(self.streams.values()):
                    due = math.inf if math.isinf(rate) else stream.carry + elapsed * rate
                    n = int(min(due, _MAX_UPDATES_PER_WAKEUP))
                    stream.carry = 0.0 if math.isinf(due) else min(due - n, 1.0)
                    if n:
                        chunks.append(stream.render(n))
                if chunks:
                    self.send(b"".join(chunks))
                await asyncio.sleep(0 if math.isinf(rate) else max(1.0 / rate, _MIN_TICK_INTERVAL))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("fake gateway: tick stream for {} failed; closing it", self.peer)
            self.abort()

    def info(self) -> ClientInfo:
        return ClientInfo(
            peer=self.peer,
            phase=self.phase,
            client_id=self.client_id,
            server_version=self.server_version,
            account_summaries=len(self.account_summaries),
            market_data=len(self.streams),
            messages_received=self.messages_received,
        )


# --------------------------------------------------------------------------------------------------
# The gateway


class FakeGateway:
    """A fake TWS / IB Gateway serving the TWS API socket protocol on ``host:port``.

    Use as ``async with FakeGateway(port=0) as gw:`` (or ``await gw.start()`` / ``await
    gw.stop()``); :attr:`port` is the bound port. ``stop()`` then ``start()`` rebinds the same port.

    Args:
        host: interface to bind (:data:`DEFAULT_HOST`).
        port: 0..65535; 0 picks a free port once, kept across stop/start.
        accounts: shortcut for ``AccountState.with_accounts(accounts)``.
        account_state: accounts, values and positions (default :class:`AccountState`()).
        max_clients: simultaneous sockets accepted (1..1024, :data:`DEFAULT_MAX_CLIENTS`); one
            more is accepted and closed at once.
        pacing_limit: messages per second per client before error 100 (1..100000, or ``None``
            to disable; :data:`DEFAULT_PACING_LIMIT`).
        tick_rate: price updates per second per market-data subscription (> 0; ``math.inf``:
            as fast as the socket drains); each update is one tickPrice plus one tickSize.
        latency: seconds added before every reply (>= 0), see :meth:`set_latency`.
        server_version: highest version offered (124..178).
        next_order_id: the nextValidId reported (>= 0).
        farm_notices: send 2104/2106/2158 after startApi.
        max_account_summaries: active account-summary subscriptions per client before 322 (>= 0).
        on_accept: called with ``time.monotonic()`` of each accepted socket (exceptions are
            logged, never raised into the server).
        wall_clock: epoch seconds for reqCurrentTime, bars and account times (``time.time``).

    Raises:
        ConfigError: an argument is outside its range (the message names it and the range).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        accounts: Iterable[str] | None = None,
        account_state: AccountState | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        pacing_limit: int | None = DEFAULT_PACING_LIMIT,
        tick_rate: float = DEFAULT_TICK_RATE,
        latency: float = 0.0,
        server_version: int = MAX_SERVER_VERSION,
        next_order_id: int = DEFAULT_NEXT_ORDER_ID,
        farm_notices: bool = True,
        max_account_summaries: int = MAX_ACCOUNT_SUMMARIES,
        on_accept: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        _check_int("port", port, 0, 65535)
        _check_int("max_clients", max_clients, 1, 1024)
        if pacing_limit is not None:
            _check_int("pacing_limit", pacing_limit, 1, 100_000)
        _check_int("server_version", server_version, MIN_SERVER_VERSION, MAX_SERVER_VERSION)
        _check_int("next_order_id", next_order_id, 0, 2**31 - 1)
        _check_int("max_account_summaries", max_account_summaries, 0, 1000)
        if account_state is not None and accounts is not None:
            raise ConfigError("accounts: give either accounts or account_state, not both")
        self.host = host
        self._port = port
        self.account_state = (
            account_state
            if account_state is not None
            else (AccountState.with_accounts(accounts) if accounts is not None else AccountState())
        )
        self.max_clients = max_clients
        self.pacing_limit = pacing_limit
        self.server_version = server_version
        self.farm_notices = farm_notices
        self.max_account_summaries = max_account_summaries
        self._next_order_id = next_order_id
        self._on_accept = on_accept
        self._wall_clock = wall_clock
        self._tick_rate = DEFAULT_TICK_RATE
        self.set_tick_rate(tick_rate)
        self._latency = 0.0
        self.set_latency(latency)

        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[_Client] = set()
        self._live_ids: dict[int, _Client] = {}
        self._counts: Counter[int] = Counter()
        self._accepted = 0
        self._accept_times: list[float] = []
        self._stalled = False
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        self._handshake_fault: HandshakeFault | None = None
        self._ignored: frozenset[int] = frozenset()

    # ---- lifecycle

    async def start(self) -> None:
        """Listen (again). After :meth:`stop`, rebinds the port bound the first time."""
        if self._server is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._unstalled = asyncio.Event()  # bound to this loop (start() may follow a new loop)
        if not self._stalled:
            self._unstalled.set()
        self._server = await self._loop.create_server(
            lambda: _Client(self), self.host, self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("fake gateway: listening on {}:{}", self.host, self._port)

    async def stop(self) -> None:
        """Stop listening (connections are refused) and close every client socket."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._close_clients(reset=False)
        if server is not None:
            await server.wait_closed()
            logger.info("fake gateway: stopped listening on {}:{}", self.host, self._port)

    async def __aenter__(self) -> FakeGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- faults

    def stall(self) -> None:
        """Black hole: sockets stay open and are read, nothing is answered or streamed.

        Requests received while stalled are dropped (a frozen TWS does not replay them), though
        counted in :attr:`request_counts`; a hello received while stalled is never answered.
        Replies queued before the stall are held and delivered after :meth:`unstall`.
        """
        self._stalled = True
        self._unstalled.clear()
        logger.info("fake gateway: stalled")

    def unstall(self) -> None:
        """End :meth:`stall`: answer new requests again and resume tick streams."""
        self._stalled = False
        self._unstalled.set()
        for client in list(self._clients):
            client.schedule_flush()
        logger.info("fake gateway: unstalled")

    @property
    def stalled(self) -> bool:
        return self._stalled

    async def drop_all(self, reset: bool = False) -> None:
        """Close every client socket: FIN, or RST (``SO_LINGER`` 0 + abort) when ``reset``.

        Keeps listening; returns once every socket is closed.
        """
        await self._close_clients(reset=reset, graceful=not reset)

    def handshake_fault(self, mode: HandshakeFault | str | None) -> None:
        """How NEW connections are treated: ``None`` normal, ``"close"``, ``"silent"``."""
        if mode is None:
            self._handshake_fault = None
        else:
            try:
                self._handshake_fault = HandshakeFault(mode)
            except ValueError:
                allowed = ", ".join(repr(m.value) for m in HandshakeFault)
                raise ConfigError(
                    f"handshake_fault: {mode!r} is not None or one of {allowed}"
                ) from None
        logger.info("fake gateway: handshake fault = {}", self._handshake_fault)

    def broadcast_error(self, code: int, text: str | None = None) -> int:
        """Send a system message (request id -1) to every API-ready client; returns how many.

        Without ``text``, TWS's own wording for the codes in :data:`SYSTEM_MESSAGES` is used.
        """
        if text is None:
            if code not in SYSTEM_MESSAGES:
                known = ", ".join(str(c) for c in SYSTEM_MESSAGES)
                raise ConfigError(f"text: required for code {code} (known codes: {known})")
            text = SYSTEM_MESSAGES[code]
        clients = [c for c in self._clients if c.phase is Phase.READY]
        for client in clients:
            client.send_error(codec.NO_REQUEST_ID, code, text)
        logger.info("fake gateway: broadcast {} to {} client(s)", code, len(clients))
        return len(clients)

    def set_latency(self, seconds: float) -> None:
        """Delay every reply by ``seconds`` (>= 0, finite); order per client is kept."""
        if not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
            raise ConfigError(f"latency: {seconds!r} is not a finite number >= 0")
        self._latency = float(seconds)

    @property
    def latency(self) -> float:
        return self._latency

    def set_tick_rate(self, updates_per_second: float) -> None:
        """Price updates per second per subscription (> 0; ``math.inf`` = as fast as possible)."""
        if not isinstance(updates_per_second, int | float) or not updates_per_second > 0:
            raise ConfigError(f"tick_rate: {updates_per_second!r} is not a number > 0")
        self._tick_rate = float(updates_per_second)

    @property
    def tick_rate(self) -> float:
        return self._tick_rate

    async def send_garbage(self, data: bytes) -> int:
        """Write raw ``data`` to every connected client, after its queued replies; returns how
        many clients it was queued for."""
        clients = [c for c in self._clients if c.phase not in (Phase.CLOSING, Phase.CLOSED)]
        for client in clients:
            client.send(bytes(data))
        await asyncio.sleep(0)
        return len(clients)

    def ignore_requests(self, msg_ids: Iterable[int] = ()) -> None:
        """Receive but never answer these client message ids (replaces the previous set).

        ``gw.ignore_requests(STARTUP_SYNC_REQUESTS)``: handshake and nextValidId work, the startup
        sync of ``IB.connectAsync`` never completes. ``gw.ignore_requests()`` clears it.
        """
        self._ignored = frozenset(int(i) for i in msg_ids)

    # ---- observation

    @property
    def port(self) -> int:
        """The bound port (the configured one before the first :meth:`start`)."""
        return self._port

    @property
    def is_serving(self) -> bool:
        return self._server is not None

    @property
    def client_ids(self) -> frozenset[int]:
        """Client ids of the live API sessions."""
        return frozenset(self._live_ids)

    @property
    def request_counts(self) -> Counter[int]:
        """Copy of: message id -> messages received, over all clients since start or
        :meth:`reset_counts` (including dropped, ignored and unsupported ones)."""
        return Counter(self._counts)

    @property
    def connection_count(self) -> int:
        """Sockets accepted since start or :meth:`reset_counts`."""
        return self._accepted

    @property
    def accept_times(self) -> tuple[float, ...]:
        """``time.monotonic()`` of each accepted socket since start or :meth:`reset_counts`."""
        return tuple(self._accept_times)

    def reset_counts(self) -> None:
        """Zero :attr:`request_counts`, :attr:`connection_count` and :attr:`accept_times`."""
        self._counts.clear()
        self._accepted = 0
        self._accept_times.clear()

    @property
    def active_account_summaries(self) -> int:
        """Open account-summary subscriptions, summed over live clients."""
        return sum(len(c.account_summaries) for c in self._clients)

    @property
    def market_data_subscriptions(self) -> int:
        """Open streaming market-data subscriptions, summed over live clients."""
        return sum(len(c.streams) for c in self._clients)

    @property
    def clients(self) -> tuple[ClientInfo, ...]:
        """A snapshot of every open socket."""
        return tuple(c.info() for c in self._clients if c.phase is not Phase.CLOSED)

    # ---- internals used by _Client

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "gateway not started"
        return self._loop

    def _admit(self, client: _Client) -> bool:
        now = time.monotonic()
        self._accepted += 1
        self._accept_times.append(now)
        if self._on_accept is not None:
            try:
                self._on_accept(now)
            except Exception:
                logger.exception("fake gateway: on_accept callback failed")
        if len(self._clients) >= self.max_clients:
            logger.warning(
                "fake gateway: {} refused: {} clients already connected",
                client.peer,
                self.max_clients,
            )
            return False
        self._clients.add(client)
        logger.info("fake gateway: client connected from {}", client.peer)
        return True

    def _release(self, client: _Client) -> None:
        if client not in self._clients:
            return
        self._clients.discard(client)
        if client.client_id is not None and self._live_ids.get(client.client_id) is client:
            del self._live_ids[client.client_id]
        logger.info(
            "fake gateway: client {} disconnected (client id {})", client.peer, client.client_id
        )

    def _connection_time(self) -> str:
        return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(self._wall_clock()))

    async def _close_clients(self, reset: bool, graceful: bool = True) -> None:
        clients = list(self._clients)
        for client in clients:
            if graceful and client.transport is not None and not reset:
                client.phase = Phase.CLOSING
                client.transport.close()
            else:
                client.abort(reset=reset)
        waiters = [c.closed for c in clients if not c.closed.done()]
        if waiters:
            _, pending = await asyncio.wait(waiters, timeout=_CLOSE_GRACE)
            if pending:  # a peer that does not read keeps close() from finishing: abort it
                for client in clients:
                    client.abort()
                await asyncio.wait(pending, timeout=_CLOSE_GRACE)


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: {value!r} is outside {low}..{high}")
