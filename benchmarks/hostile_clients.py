"""Scenario 9, hostile clients (issue 11): what 31 hostile clients of one kind cost the gateway,
and whether ONE honest ``ib_async`` client beside them is still served as fast.

Per kind, a fresh FakeGateway (default settings: 32 clients, pacing 50 msg/s, handshake timeout
5 s, 1 MiB output limit, slow clients dropped after 10 s) runs in a child process; the honest
client (this process) connects and times ``reqCurrentTime`` round trips, first alone (the quiet
figure), then while 31 hostile clients of that kind, run from a second child process, attack.
Reported: the honest p95 under attack against 2x the quiet p95 of the same gateway, the gateway's
peak RSS growth and its CPU use, and how many hostile sockets the gateway closed.

The kinds (:data:`KINDS`): clients that never read their replies (2 MB of history requested, 4
market-data streams); a flood of zero-length frames; a flood of garbage frames; sockets that
connect and never send the hello; requests within the pacing limit (45/s) with large replies
(about 100 KB each), never read. A hostile client whose socket is closed connects again.

The same attackers drive the fault matrix's "Hostile clients" rows
(``tests/faults/test_hostile_clients.py``).
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
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import psutil

from benchmarks import common
from benchmarks.common import HOST, ROOT, Result, clock, row
from v6.protocol.codec import ClientMessage, encode_hello, encode_message
from v6.testing.scenario import wait_until

NAME = "hostile_clients"
HOSTILE: Final = 31
"""Hostile clients per kind: with the honest one, TWS's 32."""
FIRST_HOSTILE_ID: Final = 100
HONEST_ID: Final = 1
LATENCY_FACTOR: Final = 2.0
REQUEST_INTERVAL: Final = 0.05
"""The honest client's reqCurrentTime pace (20/s: well inside the 50/s pacing limit)."""
UNANSWERED_AFTER: Final = 10.0
"""An honest request not answered within this many seconds counts as unanswered."""
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

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


# ------------------------------------------------------------------------------- the attackers


def _start_api(client_id: int) -> bytes:
    return encode_hello() + encode_message(ClientMessage.START_API, 2, client_id, "")


def _history(req_id: int) -> bytes:
    return encode_message(ClientMessage.REQ_HISTORICAL_DATA, req_id, *BIG_HISTORY)


def _mkt_data(req_id: int) -> bytes:
    return encode_message(
        ClientMessage.REQ_MKT_DATA, 11, req_id, 265598 + req_id, f"SYM{req_id}", "STK", "", 0.0,
        "", "", "SMART", "", "USD", "", "", 0, "", 0, 0, "",
    )  # fmt: skip


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop) until the gateway closes the socket."""
    while await reader.read(65536):
        pass


async def _never_reads(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int
) -> None:
    writer.transport.pause_reading()
    writer.write(_start_api(cid) + b"".join(_history(i) for i in range(20)))
    writer.write(b"".join(_mkt_data(100 + i) for i in range(4)))
    while True:  # a write to a socket the gateway closed fails: then connect again
        await asyncio.sleep(1.0)
        writer.write(encode_message(ClientMessage.REQ_CURRENT_TIME, 1))
        await writer.drain()


def _flood(frame: bytes) -> Behaviour:
    chunk = frame * FLOOD_CHUNK

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int) -> None:
        writer.transport.pause_reading()
        writer.write(_start_api(cid))
        while True:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # drain() does not yield while the buffer is low

    return flood


async def _never_hello(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int
) -> None:
    await _until_closed(reader)  # nothing is ever sent


async def _paced_big_replies(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int
) -> None:
    writer.transport.pause_reading()
    writer.write(_start_api(cid))
    req_id = 0
    while True:
        req_id += 1
        writer.write(_history(req_id))
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
        self.closed = 0  # sockets that ended while the attack ran (closed by the gateway)
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
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        counts = {"connects": attack.connects, "closed": attack.closed}
    print(json.dumps(counts), flush=True)


@contextlib.asynccontextmanager
async def attack_process(kind: str, port: int) -> AsyncIterator[dict[str, int]]:
    """The attack in a child process; the yielded dict gets its counts once it has stopped."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.hostile_clients", "--attack", kind, "--port", str(port),
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    counts: dict[str, int] = {}
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"the attack process did not start: {line!r}")
        yield counts
        proc.stdin.close()
        counts.update(json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)))
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# ------------------------------------------------------------------------------- the benchmark


async def _latencies(ib: Any, seconds: float) -> tuple[list[float], int]:
    """reqCurrentTime round trips, one every REQUEST_INTERVAL, for ``seconds``; and how many
    went unanswered for :data:`UNANSWERED_AFTER` (counted as that long in the samples)."""
    samples: list[float] = []
    unanswered = 0
    end = clock() + seconds
    while clock() < end and ib.isConnected():
        started = clock()
        try:
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), UNANSWERED_AFTER)
        except TimeoutError:
            unanswered += 1
        samples.append(clock() - started)
        await asyncio.sleep(max(0.0, REQUEST_INTERVAL - (clock() - started)))
    return samples, unanswered


class _Usage:
    """The gateway process's CPU seconds and peak RSS over a window (RSS sampled every 50 ms)."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._sampler: asyncio.Task[None] | None = None

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    async def __aenter__(self) -> _Usage:
        self.cpu0, self.t0 = self._cpu(), time.monotonic()
        self.rss0 = self.peak = int(self.process.memory_info().rss)
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, int(self.process.memory_info().rss))
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._sampler is not None
        self._sampler.cancel()
        await asyncio.gather(self._sampler, return_exceptions=True)
        self.cpu = self._cpu() - self.cpu0
        self.seconds = time.monotonic() - self.t0


async def _kind(kind: str, quiet: float, attack: float) -> dict[str, Any]:
    from ib_async import IB

    async with common.gateway_child(log_level="WARNING") as (port, pid):
        gateway = psutil.Process(pid)
        ib = IB()
        await ib.connectAsync(HOST, port, clientId=HONEST_ID, timeout=10)
        try:
            async with _Usage(gateway) as calm:
                quiet_samples, _ = await _latencies(ib, quiet)
            async with attack_process(kind, port) as counts, _Usage(gateway) as usage:
                attacked, unanswered = await _latencies(ib, attack)
                connected = ib.isConnected()
        finally:
            ib.disconnect()
    return {
        "kind": kind,
        "quiet": quiet_samples,
        "attacked": attacked,
        "connected": connected,
        "unanswered": unanswered,
        "rss_quiet_mib": calm.peak / 2**20,
        "rss_growth_mib": (usage.peak - calm.rss0) / 2**20,
        "cpu_quiet": calm.cpu / calm.seconds,
        "cpu_attacked": usage.cpu / usage.seconds,
        "hostile_connects": counts.get("connects", 0),
        "hostile_closed": counts.get("closed", 0),
    }


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    kind = result["kind"]
    quiet_p95 = common.p95(result["quiet"])
    attacked_p95 = common.p95(result["attacked"])
    factor = common.ratio(attacked_p95, quiet_p95)
    return [
        row(f"{kind}: honest reqCurrentTime, quiet (baseline)", result["quiet"]),
        row(
            f"{kind}: honest reqCurrentTime, under attack",
            result["attacked"],
            baseline="quiet, same gateway",
            ratio_value=common.ratio(
                common.median(result["attacked"]), common.median(result["quiet"])
            ),
            target=f"p95 <= {LATENCY_FACTOR:g} x quiet p95 ({factor:.2f}x)",
            met=factor <= LATENCY_FACTOR and result["connected"] and not result["unanswered"],
        ),
        row(
            f"{kind}: gateway RSS growth under attack (peak)",
            [result["rss_growth_mib"]],
            unit="MiB",
            scale=1.0,
        ),
        row(
            f"{kind}: gateway CPU under attack",
            [result["cpu_attacked"] * 100],
            unit="% of a CPU",
            scale=1.0,
        ),
    ]


async def measure(quiet: float, attack: float) -> Result:
    results = [await _kind(kind, quiet, attack) for kind in KINDS]
    rows = [r for result in results for r in _rows(result)]
    notes = [
        f"{r['kind']}: honest client {'stayed connected' if r['connected'] else 'DISCONNECTED'}"
        f", {r['unanswered']} of {len(r['attacked'])} requests unanswered after "
        f"{UNANSWERED_AFTER:g} s"
        f"; gateway RSS {r['rss_quiet_mib']:.0f} MiB quiet, +{r['rss_growth_mib']:.1f} MiB peak "
        f"under attack; CPU {r['cpu_quiet']:.0%} quiet, {r['cpu_attacked']:.0%} under attack; "
        f"hostile sockets opened {r['hostile_connects']}, closed by the gateway "
        f"{r['hostile_closed']}."
        for r in results
    ]
    notes += [
        "Three processes on one machine: the gateway, the attackers (nice 5: their own CPU is "
        "not the gateway's cost) and the honest client. The honest p95 is judged against the "
        "quiet p95 of the same gateway process, measured just before the attack.",
        "Garbage and zero-length frames count toward the 50 msg/s pacing limit, so a flooding "
        "client gets no more service than an honest one; what it still costs is the parsing.",
    ]
    return {
        "name": NAME,
        "title": "9. Hostile clients",
        "command": f"python -m benchmarks.{NAME}",
        "params": {
            "hostile clients per kind": HOSTILE,
            "honest requests": f"reqCurrentTime every {REQUEST_INTERVAL * 1000:.0f} ms",
            "quiet window": f"{quiet} s",
            "attack window": f"{attack} s",
        },
        "rows": rows,
        "notes": notes,
    }


def run(quick: bool) -> Result:
    """Hostile clients: gateway RSS / CPU and honest-client p95 latency under 31 attackers."""
    quiet, attack = (2.0, 3.0) if quick else (5.0, 12.0)
    result: Result = common.run_async(lambda: measure(quiet, attack))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--attack", choices=KINDS)
    parser.add_argument("--port", type=int)
    args, rest = parser.parse_known_args()
    if args.attack is not None:
        common.quiet_logs()
        asyncio.run(_serve_attack(args.attack, args.port))
    else:
        common.main(run, rest)
