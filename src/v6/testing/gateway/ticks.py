"""A client's market-data streams on the wire: the due updates of every stream rendered and
queued, one batch per wake-up, waiting while output is held, the socket is not writable or
replies delayed by latency pile up."""

from __future__ import annotations

import asyncio
import math
from typing import Final

from loguru import logger

from v6.testing.gateway.clients import ClientSocket, Phase
from v6.testing.gateway.context import GatewayContext
from v6.testing.gateway.market import render_due

MIN_TICK_INTERVAL: Final = 0.001
MAX_OUTBOX: Final = 1000
"""Queued replies above which no more ticks are rendered for a client."""


async def stream_ticks(client: ClientSocket, ctx: GatewayContext) -> None:
    """Emit every stream's due updates while the client has streams and is API-ready."""
    try:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while client.state.streams and client.phase is Phase.READY:
            if not await _ready_for_ticks(client, ctx):
                last = loop.time()  # no backlog for the time output was held
                continue
            now = loop.time()
            rate = ctx.settings.tick_rate
            streams = client.state.streams.values()
            chunk = render_due(streams, now - last, rate, ctx.broker.quote)
            last = now
            if chunk:
                client.send(chunk)
            await asyncio.sleep(0 if math.isinf(rate) else max(1.0 / rate, MIN_TICK_INTERVAL))
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("fake gateway: tick stream for {} failed; closing it", client.peer)
        client.abort()


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
