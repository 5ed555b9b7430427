"""A client's live requests on the wire: every stream's due updates rendered and queued, one batch
per wake-up, waiting while output is held, the socket is not writable or replies delayed by
latency pile up.

Rate streams (market data, tick-by-tick) send ``tick_rate`` updates per second; timed streams
(real-time bars, historical replies and their updates, PnL) each at their own due time. The loop
sleeps until the next thing is due, and wakes at once when the client's live requests change
(:meth:`LiveLoop.poke`).
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

from loguru import logger

from v6.testing.gateway.clients import ClientSocket, Phase
from v6.testing.gateway.context import GatewayContext
from v6.testing.gateway.streams import (
    LiveStream,
    RateStream,
    StreamFeed,
    TimedStream,
    render_due,
)

MIN_TICK_INTERVAL: Final = 0.001
MAX_OUTBOX: Final = 1000
"""Queued replies above which no more ticks are rendered for a client."""
MAX_LIVE_SLEEP: Final = 0.25
"""Longest sleep of a live loop (a stream a fault held may flow again meanwhile)."""


class LiveLoop:
    """The task that streams one client's live requests while it has any and is API-ready."""

    def __init__(self, client: ClientSocket, ctx: GatewayContext) -> None:
        self._client = client
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """The client's live requests may have changed: start the loop, or wake it."""
        if not self._client.state.streams:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        else:
            self._wake.set()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        client, ctx = self._client, self._ctx
        try:
            loop = asyncio.get_running_loop()
            last = loop.time()
            while client.state.streams and client.phase is Phase.READY:
                if not await _ready_for_ticks(client, ctx):
                    last = loop.time()  # no backlog for the time output was held
                    continue
                now = loop.time()
                chunk = self._render(now, now - last)
                last = now
                if chunk:
                    client.send(chunk)
                await self._sleep(loop, self._next_wakeup(now) - loop.time())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("fake gateway: live streams of {} failed; closing it", client.peer)
            client.abort()

    def _render(self, now: float, elapsed: float) -> bytes:
        streams = self._client.state.streams
        feed: StreamFeed = self._ctx.app.market
        parts = [render_due(streams.values(), elapsed, self._ctx.settings.tick_rate, feed.quote)]
        for stream in list(streams.values()):
            if isinstance(stream, TimedStream) and stream.flowing and stream.next_due <= now:
                parts.append(self._step(stream, now, feed))
        return b"".join(parts)

    def _step(self, stream: TimedStream, now: float, feed: StreamFeed) -> bytes:
        data, next_in = stream.step(feed)
        stream.updates += 1
        if next_in is None:
            stream.finished = True
            streams = self._client.state.streams
            if streams.get(stream.key) is stream:
                del streams[stream.key]
        else:
            due = stream.next_due + next_in
            stream.next_due = due if due > now else now + next_in  # no burst after a hold
        return data

    def _next_wakeup(self, now: float) -> float:
        """When something is due next (at most :data:`MAX_LIVE_SLEEP` from now)."""
        rate = self._ctx.settings.tick_rate
        at = now + MAX_LIVE_SLEEP
        for stream in self._client.state.streams.values():
            at = min(at, _due(stream, now, rate))
        return at

    async def _sleep(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """Sleep ``seconds`` (at least a turn of the loop), or until :meth:`poke`."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        self._wake.clear()
        timer = loop.call_later(seconds, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()


def _due(stream: LiveStream, now: float, rate: float) -> float:
    if not stream.flowing:
        return math.inf
    if isinstance(stream, RateStream):
        return now if math.isinf(rate) else now + max(1.0 / rate, MIN_TICK_INTERVAL)
    if isinstance(stream, TimedStream):
        return max(stream.next_due, now + MIN_TICK_INTERVAL)
    return math.inf


async def _ready_for_ticks(client: ClientSocket, ctx: GatewayContext) -> bool:
    """True if ticks may be rendered now; otherwise wait a little and return False."""
    faults = ctx.faults
    if faults.output_held():
        await faults.output_released()
        return False
    if not client.writable.is_set():
        await client.writable.wait()
        return False
    if len(client.outbox) > MAX_OUTBOX:  # replies delayed by latency pile up here
        await asyncio.sleep(MIN_TICK_INTERVAL)
        return False
    return True
