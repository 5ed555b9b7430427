"""A client that sends requests and never reads its replies costs the gateway a bounded amount
(issue 11 item 2): while its output buffer is over the limit the gateway stops reading its
requests, and it is disconnected if it stays over for ``slow_client_timeout``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.testing.helpers import HOST, RawClient, wait_until
from v6.errors import ConfigError
from v6.protocol.codec import ClientMessage
from v6.testing import FakeGateway

MakeGateway = Callable[..., Awaitable[FakeGateway]]
RawFactory = Callable[[int], Awaitable[RawClient]]
LIMIT = 64 * 1024
REQUESTS = 200
"""20 MB of replies: more than the kernel's socket buffers absorb (tcp_wmem max: 4 MB)."""
BIG_HISTORY = ("0", "EURUSD", "CASH", "", "0.0", "", "", "IDEALPRO", "", "USD", "", "",
               0, "", "1 secs", "1 Y", 0, "MIDPOINT", 1, 0, "")  # fmt: skip
"""reqHistoricalData fields after the id: 2000 one-second bars, about 100 KB of reply."""


@pytest.fixture
async def non_reader() -> AsyncIterator[Callable[[int], Awaitable[RawClient]]]:
    """Factory: a raw client with a small receive buffer that we never read after the start."""
    clients: list[RawClient] = []

    async def factory(port: int) -> RawClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        reader, writer = await asyncio.open_connection(sock=sock)
        clients.append(RawClient(reader, writer))
        return clients[-1]

    yield factory
    for client in clients:
        client.writer.transport.abort()


async def test_a_client_that_never_reads_is_throttled_then_dropped(
    make_gateway: MakeGateway, raw_client: RawFactory, non_reader: RawFactory
) -> None:
    gw = await make_gateway(pacing_limit=None, pacing_rules=None, max_output_buffer=LIMIT,
                            slow_client_timeout=1.0)  # fmt: skip
    hog = await non_reader(gw.port)
    await hog.ready()
    for req_id in range(REQUESTS):
        hog.send(ClientMessage.REQ_HISTORICAL_DATA, req_id, *BIG_HISTORY)
    await asyncio.sleep(0.5)
    read = gw.request_counts[ClientMessage.REQ_HISTORICAL_DATA]
    assert 0 < read < REQUESTS / 2  # it stopped reading once the kernel buffers were full
    honest = await raw_client(gw.port)
    await honest.ready(client_id=2)
    honest.send(ClientMessage.REQ_CURRENT_TIME, 1)
    assert [m.msg_id for m in await honest.messages()] == [49]
    await wait_until(lambda: gw.client_ids == {2}, timeout=3.0, what="the hog disconnected")


async def test_a_client_that_reads_late_is_resumed_not_dropped(
    make_gateway: MakeGateway, non_reader: RawFactory
) -> None:
    gw = await make_gateway(pacing_limit=None, pacing_rules=None, max_output_buffer=LIMIT,
                            slow_client_timeout=5.0)  # fmt: skip
    slow = await non_reader(gw.port)
    await slow.ready()
    for req_id in range(REQUESTS):
        slow.send(ClientMessage.REQ_HISTORICAL_DATA, req_id, *BIG_HISTORY)
    await asyncio.sleep(0.5)
    assert gw.request_counts[ClientMessage.REQ_HISTORICAL_DATA] < REQUESTS / 2
    replies = await slow.messages(quiet=0.5, timeout=20.0)  # now it reads everything
    assert [m.msg_id for m in replies].count(17) == REQUESTS
    assert gw.client_ids == {1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_output_buffer": 100}, "max_output_buffer must be in [1024, "),
        ({"max_output_buffer": True}, "max_output_buffer must be an integer"),
        ({"slow_client_timeout": 0}, "slow_client_timeout must be in (0, 3600]"),
        ({"slow_client_timeout": True}, "slow_client_timeout must be a number"),
    ],
)
def test_slow_client_settings_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        FakeGateway(**kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
