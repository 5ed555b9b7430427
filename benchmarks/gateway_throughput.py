"""Fake-gateway throughput: can the gateway out-produce the client it is meant to test?

Runs the gateway in its own process (``v6-ib gateway --tick-rate inf``: each market-data stream
sends as fast as the socket drains) and measures, in one run:

1. a raw reader that only counts frames and discards the bytes: the most the gateway can produce
   to one socket, and the gateway's own CPU seconds per 100k messages (psutil on its process);
2. one unmodified ``ib_async`` client subscribed to the same streams: the messages per second it
   decodes (its own ``connectionStats().numMsgRecv``).

The gateway must serve at least twice what one ib_async client decodes; the ratio is reported.
Run ``python -m benchmarks.gateway_throughput [--quick]`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Final

import psutil

from v6.protocol import codec

STREAMS: Final = 4
"""Market-data subscriptions each client opens."""
WARMUP: Final = 0.3
REQUIRED_RATIO: Final = 2.0


def _start_gateway() -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode would slow the gateway down
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6.testing.cli", "gateway", "--port", "0", "--tick-rate", "inf",
         "--pacing-limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("fake gateway listening on"):
        proc.kill()
        raise RuntimeError(f"gateway did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def _stop_gateway(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _mkt_data_request(req_id: int) -> bytes:
    return codec.encode_message(
        1, 11, req_id, 265598 + req_id, f"SYM{req_id}", "STK", "", 0.0, "", "", "SMART", "",
        "USD", "", "", 0, "", 0, 0, "",
    )  # fmt: skip


def _raw_reader(port: int, seconds: float, gateway: psutil.Process) -> dict[str, float]:
    """Frames/s a discard-everything reader gets, and the gateway's CPU meanwhile."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.sendall(codec.encode_hello() + codec.encode_message(71, 2, 1, ""))
        sock.sendall(b"".join(_mkt_data_request(i) for i in range(STREAMS)))
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        pending = b""
        frames = 0
        counting = False
        start = time.perf_counter() + WARMUP
        end = start + seconds
        cpu0 = 0.0
        while True:
            now = time.perf_counter()
            if not counting and now >= start:
                counting, frames, cpu0, t0 = True, 0, _cpu(gateway), now
            if now >= end:
                break
            n = sock.recv_into(buf)
            if not n:
                raise RuntimeError("gateway closed the raw reader")
            data = pending + bytes(view[:n]) if pending else view[:n]
            offset, size = 0, len(data)
            while size - offset >= 4:
                nxt = offset + 4 + int.from_bytes(data[offset : offset + 4], "big")
                if nxt > size:
                    break
                offset = nxt
                frames += 1
            pending = bytes(data[offset:])
        elapsed = time.perf_counter() - t0
        cpu = _cpu(gateway) - cpu0
    return {"rate": frames / elapsed, "messages": frames, "cpu": cpu, "elapsed": elapsed}


async def _ib_async_client(port: int, seconds: float, gateway: psutil.Process) -> dict[str, float]:
    from ib_async import IB, Contract

    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=2, timeout=5)
    try:
        for i in range(STREAMS):
            ib.reqMktData(Contract(conId=265598 + i, symbol=f"SYM{i}", secType="STK",
                                   exchange="SMART", currency="USD"))  # fmt: skip
        await asyncio.sleep(WARMUP)
        me = psutil.Process()
        before = ib.client.connectionStats().numMsgRecv
        cpu0, own0, t0 = _cpu(gateway), _cpu(me), time.perf_counter()
        await asyncio.sleep(seconds)
        received = ib.client.connectionStats().numMsgRecv - before
        elapsed = time.perf_counter() - t0
        return {
            "rate": received / elapsed,
            "messages": received,
            "cpu": _cpu(gateway) - cpu0,
            "client_cpu": _cpu(me) - own0,
            "elapsed": elapsed,
        }
    finally:
        ib.disconnect()


def run(quick: bool) -> dict[str, float]:
    """Measure; return the figures (messages/s, CPU seconds per 100k messages, ratio)."""
    seconds = 1.0 if quick else 3.0
    proc, port = _start_gateway()
    try:
        gateway = psutil.Process(proc.pid)
        raw = _raw_reader(port, seconds, gateway)
        time.sleep(0.2)  # let the gateway notice the closed reader
        client = asyncio.run(_ib_async_client(port, seconds, gateway))
    finally:
        _stop_gateway(proc)
    return {
        "gateway_msgs_per_s_raw_reader": raw["rate"],
        "gateway_cpu_utilisation_raw_reader": raw["cpu"] / raw["elapsed"],
        "gateway_cpu_s_per_100k_msgs": raw["cpu"] / raw["messages"] * 100_000,
        "gateway_capacity_msgs_per_cpu_s": raw["messages"] / raw["cpu"] if raw["cpu"] else 0.0,
        "ib_async_msgs_per_s": client["rate"],
        "ib_async_client_cpu_utilisation": client["client_cpu"] / client["elapsed"],
        "gateway_cpu_s_per_100k_msgs_ib_async": client["cpu"] / client["messages"] * 100_000,
        "ratio_gateway_to_ib_async": raw["rate"] / client["rate"],
        "seconds_per_phase": seconds,
        "streams": STREAMS,
    }


def to_markdown(results: dict[str, float]) -> str:
    r = results
    ratio = r["ratio_gateway_to_ib_async"]
    verdict = "OK" if ratio >= REQUIRED_RATIO else "NOT MET"
    rows = [
        ("gateway -> raw discarding reader", f"{r['gateway_msgs_per_s_raw_reader']:,.0f} msg/s"),
        ("gateway CPU while feeding it", f"{r['gateway_cpu_utilisation_raw_reader']:.0%} of a CPU"),
        ("gateway CPU per 100k messages", f"{r['gateway_cpu_s_per_100k_msgs']:.3f} s"),
        ("gateway capacity per CPU second", f"{r['gateway_capacity_msgs_per_cpu_s']:,.0f} msg"),
        ("one ib_async client decodes", f"{r['ib_async_msgs_per_s']:,.0f} msg/s"),
        ("ib_async client CPU", f"{r['ib_async_client_cpu_utilisation']:.0%} of a CPU"),
        ("gateway CPU per 100k msgs (to ib_async)",
         f"{r['gateway_cpu_s_per_100k_msgs_ib_async']:.3f} s"),
        ("ratio gateway / ib_async", f"{ratio:.1f}x (need >= {REQUIRED_RATIO:.0f}x: {verdict})"),
    ]  # fmt: skip
    lines = [
        f"### Fake gateway throughput ({r['streams']:.0f} streams, "
        f"{r['seconds_per_phase']:.0f} s per phase)",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 s per phase instead of 3 s")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    print(to_markdown(results))
    return 0 if results["ratio_gateway_to_ib_async"] >= REQUIRED_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
