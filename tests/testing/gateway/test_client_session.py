"""One socket of the gateway, over real sockets: a client cannot monopolise the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.testing.helpers import RawClient, wait_until
from v6.protocol.codec import ClientMessage, Message, encode_message
from v6.testing import FakeGateway
from v6.testing.gateway.intake import DROPPED_PER_WINDOW

MakeGateway = Callable[..., Awaitable[FakeGateway]]
RawFactory = Callable[[int], Awaitable[RawClient]]
BURST = 3000


def _received(gw: FakeGateway, client_id: int) -> int:
    return next(c.messages_received for c in gw.clients if c.client_id == client_id)


async def test_a_burst_from_one_client_does_not_hold_up_another(
    make_gateway: MakeGateway, raw_client: RawFactory
) -> None:
    """The gateway used to handle every frame of one read (up to 256 KiB) before it served any
    other client: now a few per event-loop turn, so a bystander is answered within the burst."""
    gw = await make_gateway(pacing_limit=None)
    busy = await raw_client(gw.port)
    await busy.ready(client_id=1)
    bystander = await raw_client(gw.port)
    await bystander.ready(client_id=2)
    busy.send_raw(encode_message(ClientMessage.REQ_CURRENT_TIME, 1) * BURST)
    for _ in range(10_000):  # one event-loop turn at a time: a polling sleep would let many pass
        if _received(gw, 1) > 1:
            break
        await asyncio.sleep(0)
    bystander.send(ClientMessage.REQ_CURRENT_TIME, 1)
    reply = await bystander.next_event(timeout=5.0)
    assert isinstance(reply, Message)
    assert reply.msg_id == 49
    assert _received(gw, 1) < BURST / 3  # answered long before the burst was through
    await wait_until(lambda: _received(gw, 1) == BURST + 1, timeout=10.0, what="burst handled")


async def test_a_flood_over_the_pacing_limit_is_not_read_until_the_window_has_room(
    make_gateway: MakeGateway, raw_client: RawFactory
) -> None:
    gw = await make_gateway(pacing_limit=10)
    flooder = await raw_client(gw.port)
    await flooder.ready()  # startApi is message 1 of this second
    flooder.send_raw(b"\0\0\0\0" * 20_000)
    await wait_until(lambda: gw.frames_dropped > 0, what="frames dropped")
    first = gw.frames_dropped
    assert first == DROPPED_PER_WINDOW  # its allowance; then its bytes are not even read
    await wait_until(lambda: gw.frames_dropped > first, timeout=3.0, what="the next window")
