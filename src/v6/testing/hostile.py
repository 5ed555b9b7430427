"""Hostile TWS API clients, to show what they cost a gateway (issue 11).

:class:`Attack` runs ``clients`` hostile clients of one kind (:data:`KINDS`) against a port; each
connects again when its socket is closed. :func:`attack_process` runs one in a child process
(``python -m v6.testing.hostile --attack KIND --port P``), so that the attackers' own work is not
the event loop's under test. The benchmark ``benchmarks/hostile_clients.py`` and the fault
matrix's "Hostile clients" rows both use them.

The kinds: clients that never read their replies (2 MB of history requested, 4 market-data
streams); a flood of zero-length frames; a flood of garbage frames; sockets that connect and never
send the hello; requests within the pacing limit (45/s) with large replies (about 100 KB each),
never read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from v6.protocol.codec import ClientMessage, encode_hello, encode_message
from v6.testing.scenario import wait_until

HOST: Final = "127.0.0.1"
HOSTILE: Final = 31
"""Hostile clients per kind: with one honest client, TWS's 32."""
FIRST_HOSTILE_ID: Final = 100
RECONNECT_PAUSE: Final = 0.05
SMALL_RCVBUF: Final = 4096
BIG_HISTORY: Final = ("0", "EURUSD", "CASH", "", "0.0", "", "", "IDEALPRO", "", "USD", "", "",
                      0, "", "1 secs", "1 Y", 0, "MIDPOINT", 1, 0, "")  # fmt: skip
"""reqHistoricalData fields after the id: 2000 one-second bars, about 100 KB of reply."""
PACED_RATE: Final = 45.0
"""Requests per second of the "paced big replies" kind: under the 50/s pacing limit."""
FLOOD_CHUNK: Final = 4096
"""Frames written per write by the flooding kinds."""
ZERO_FRAME: Final = b"\0\0\0\0"
GARBAGE_FRAME: Final = encode_message("x\xff", "not a message")  # a non-numeric message id
_READY: Final = "ready"

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


def start_api(client_id: int) -> bytes:
    """The hello and startApi of ``client_id``, as one write."""
    return encode_hello() + encode_message(ClientMessage.START_API, 2, client_id, "")


def history_request(req_id: int) -> bytes:
    return encode_message(ClientMessage.REQ_HISTORICAL_DATA, req_id, *BIG_HISTORY)


def _mkt_data(req_id: int) -> bytes:
    return encode_message(
        ClientMessage.REQ_MKT_DATA, 11, req_id, 265598 + req_id, f"SYM{req_id}", "STK", "", 0.0,
        "", "", "SMART", "", "USD", "", "", 0, "", 0, 0, "",
    )  # fmt: skip


def _stop_reading(writer: asyncio.StreamWriter) -> None:
    """Read nothing more: the replies pile up in the kernel, then at the gateway."""
    transport = writer.transport
    assert isinstance(transport, asyncio.ReadTransport)
    transport.pause_reading()


async def _never_reads(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int
) -> None:
    _stop_reading(writer)
    writer.write(start_api(cid) + b"".join(history_request(i) for i in range(20)))
    writer.write(b"".join(_mkt_data(100 + i) for i in range(4)))
    while True:  # a write to a socket the gateway closed fails: then connect again
        await asyncio.sleep(1.0)
        writer.write(encode_message(ClientMessage.REQ_CURRENT_TIME, 1))
        await writer.drain()


def _flood(frame: bytes) -> Behaviour:
    chunk = frame * FLOOD_CHUNK

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int) -> None:
        _stop_reading(writer)
        writer.write(start_api(cid))
        while True:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # drain() does not yield while the buffer is low

    return flood


async def _never_hello(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int
) -> None:
    while await reader.read(65536):  # nothing is ever sent; read until the gateway closes it
        pass


async def _paced_big_replies(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int
) -> None:
    _stop_reading(writer)
    writer.write(start_api(cid))
    req_id = 0
    while True:
        req_id += 1
        writer.write(history_request(req_id))
        await writer.drain()
        await asyncio.sleep(1.0 / PACED_RATE)


KINDS: Final[dict[str, Behaviour]] = {
    "never reads": _never_reads,
    "zero-length frame flood": _flood(ZERO_FRAME),
    "garbage frames": _flood(GARBAGE_FRAME),
    "connect, never hello": _never_hello,
    "paced requests, large replies, never read": _paced_big_replies,
}


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: the gateway drops what it has not read yet instead of parsing on."""
    sock = writer.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Attack:
    """``clients`` hostile clients of one kind against ``port``; each connects again when its
    socket is closed. ``async with Attack(...)`` returns once every one has connected."""

    def __init__(
        self, kind: str, port: int, clients: int = HOSTILE, first_id: int = FIRST_HOSTILE_ID
    ) -> None:
        self.behaviour = KINDS[kind]
        self.kind = kind
        self.port = port
        self.clients = clients
        self.first_id = first_id
        self.connects = 0
        self.closed = 0
        """Sockets that ended while the attack ran (closed by the gateway)."""
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Attack:
        self._running = True
        self._tasks = [
            asyncio.create_task(self._client(self.first_id + i), name=f"hostile-{i}")
            for i in range(self.clients)
        ]
        await wait_until(
            lambda: self.connects >= self.clients, 10.0, step=0.01, what="hostile clients up"
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (HOST, self.port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def _client(self, client_id: int) -> None:
        while self._running:
            try:
                reader, writer = await self._open()
            except OSError:
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            self.connects += 1
            try:
                await self.behaviour(reader, writer, client_id)
            except OSError:  # reset or broken pipe: the gateway closed it
                pass
            finally:
                _reset(writer)
            if self._running:
                self.closed += 1
                await asyncio.sleep(RECONNECT_PAUSE)


async def _serve_attack(kind: str, port: int) -> None:
    """Child process: attack until stdin closes, then print the counts as JSON."""
    with contextlib.suppress(OSError):
        os.nice(5)  # the attackers' own CPU is not the gateway's to pay: they yield it first
    async with Attack(kind, port) as attack:
        print(_READY, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        counts = {"connects": attack.connects, "closed": attack.closed}
    print(json.dumps(counts), flush=True)


@contextlib.asynccontextmanager
async def attack_process(kind: str, port: int) -> AsyncIterator[dict[str, int]]:
    """The attack in a child process; the yielded dict gets its counts once it has stopped."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, "--attack", kind, "--port", str(port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    counts: dict[str, int] = {}
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != _READY.encode():
            raise RuntimeError(f"the attack process did not start: {line!r}")
        yield counts
        proc.stdin.close()
        counts.update(json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)))
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def hostile_main(argv: list[str] | None = None) -> None:
    from loguru import logger

    parser = argparse.ArgumentParser(description="Hostile TWS API clients (issue 11).")
    parser.add_argument("--attack", choices=KINDS, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    asyncio.run(_serve_attack(args.attack, args.port))


if __name__ == "__main__":
    hostile_main()
