"""Order throughput: orders per second the fake gateway accepts and fills from one unmodified
ib_async client, the gateway's CPU meanwhile, and the place -> Filled round trip.

The gateway runs in a child process (``benchmarks.common.gateway_process``) so its CPU time is
its own (psutil on that process). Pacing is off on both sides (gateway ``pacing_limit=None``,
``ib.client.MaxRequests = 0``); ``fill_size`` is large, so each market order fills in one
execution: per order the gateway parses one placeOrder and sends openOrder, orderStatus
(Submitted), execDetails, commissionReport, openOrder and orderStatus (Filled).

1. Burst: ``N`` market orders (1 share, alternately BUY and SELL) placed at once; the rate is
   ``N`` over the time from the first placeOrder to the last Filled seen by the client. The
   gateway's CPU share is its CPU seconds over that wall time. Two clients, bursts alternating:
   unmodified ib_async, and a raw client on ``v6.protocol.codec`` (pipelined placeOrders, counts
   Filled orderStatus messages) that shows what the gateway sustains when the client is cheap.
2. Round trip: one order at a time, placeOrder -> the client's ``Trade`` reports Filled.

Target (issue 12): >= 1,000 orders/s with the gateway under 50 % of one CPU.
Run ``python -m benchmarks.order_throughput [--quick] [--json]`` from the repository root.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import psutil
from ib_async import IB, Client, MarketOrder, Stock, Trade

from benchmarks import common
from benchmarks.common import HOST, Result, row
from v6.protocol import codec
from v6.testing.scenario import wait_true

NAME: Final = "order_throughput"
TARGET_RATE: Final = 1_000.0
TARGET_CPU: Final = 0.5
PACED_CHUNK: Final = 10  # the paced raw client writes this many orders at a time
GATEWAY_OPTIONS: Final[dict[str, Any]] = {
    "pacing_limit": None,
    "fill_size": 1e9,
    "market_interval": None,
    "max_output_buffer": 64 * 1024 * 1024,
}


def _gateway_process() -> psutil.Process:
    """The child process ``gateway_process`` started (the only one serving a gateway)."""
    for child in psutil.Process().children():
        if "--serve-gateway" in child.cmdline():
            return child
    raise RuntimeError("gateway child process not found")


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _contract() -> Stock:
    return Stock("AAPL", "SMART", "USD", conId=265598)


async def _burst(ib: IB, gateway: psutil.Process, orders: int) -> dict[str, float]:
    contract = _contract()
    filled = asyncio.get_running_loop().create_future()
    count = 0

    def on_status(trade: Trade) -> None:  # O(1) per message: polling N trades would cost more
        nonlocal count
        if trade.orderStatus.status == "Filled":
            count += 1
            if count == orders:
                filled.set_result(common.clock())

    ib.orderStatusEvent += on_status
    try:
        cpu0, own0, started = _cpu(gateway), common.cpu_seconds(), common.clock()
        for i in range(orders):
            ib.placeOrder(contract, MarketOrder("BUY" if i % 2 else "SELL", 1))
        elapsed = await asyncio.wait_for(filled, 60) - started
    finally:
        ib.orderStatusEvent -= on_status
    return _figures(orders, elapsed, _cpu(gateway) - cpu0, common.cpu_seconds() - own0)


async def _raw_burst(
    client: _RawClient, gateway: psutil.Process, orders: int, per_second: float | None = None
) -> dict[str, float]:
    cpu0, own0 = _cpu(gateway), common.cpu_seconds()
    elapsed = await asyncio.wait_for(client.burst(orders, per_second), 60)
    return _figures(orders, elapsed, _cpu(gateway) - cpu0, common.cpu_seconds() - own0)


def _figures(
    orders: int, elapsed: float, gateway_cpu: float, client_cpu: float
) -> dict[str, float]:
    return {"rate": orders / elapsed, "cpu_share": gateway_cpu / elapsed,
            "client_share": client_cpu / elapsed, "elapsed": elapsed}  # fmt: skip


class _CaptureClient(Client):  # type: ignore[misc]
    """ib_async's own placeOrder serialisation, captured instead of sent (the raw client's
    template: the bytes it writes are exactly what ib_async writes)."""

    def __init__(self, server_version: int) -> None:
        super().__init__(None)
        self._version = server_version
        self.sent: list[str] = []

    def isConnected(self) -> bool:
        return True

    def serverVersion(self) -> int:
        return self._version

    def sendMsg(self, msg: str) -> None:
        self.sent.append(msg)


class _RawClient:
    """A minimal TWS API client on ``v6.protocol.codec``: handshake, startApi, then pipelined
    placeOrders; it decodes every message and counts Filled orderStatus messages. It does what
    the gateway needs and nothing else, so the gateway, not the client, is the slower side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._codec = codec.ClientCodec()
        self.next_id = 0
        self.templates: dict[str, list[str]] = {}

    @classmethod
    async def connect(cls, port: int, client_id: int) -> _RawClient:
        client = cls(*await asyncio.open_connection(HOST, port))
        client._writer.write(codec.encode_hello())
        (hello,) = [e for e in await client._events() if isinstance(e, codec.ServerHello)]
        client._writer.write(codec.encode_message(codec.ClientMessage.START_API, 2, client_id, ""))
        while not client.next_id:
            for message in await client._messages():
                if message.msg_id == codec.ServerMessage.NEXT_VALID_ID:
                    client.next_id = int(message.fields[2])
        capture = _CaptureClient(hello.version)
        for action in ("BUY", "SELL"):
            capture.placeOrder(0, _contract(), MarketOrder(action, 1))
            client.templates[action] = capture.sent[-1][:-1].split("\0")
        return client

    async def burst(self, orders: int, per_second: float | None = None) -> float:
        """Place ``orders`` market orders, all at once or ``per_second``, reading meanwhile;
        the seconds from the first placeOrder until the last is Filled."""
        first = self.next_id
        self.next_id += orders
        started = common.clock()
        sender = asyncio.ensure_future(self._send(range(first, self.next_id), per_second))
        filled: set[int] = set()
        try:
            while len(filled) < orders:
                for m in await self._messages():
                    if m.msg_id == codec.ServerMessage.ORDER_STATUS and m.fields[2] == "Filled":
                        filled.add(int(m.fields[1]))
        finally:
            await sender
        return common.clock() - started

    async def _send(self, order_ids: range, per_second: float | None) -> None:
        started = common.clock()
        for n, order_id in enumerate(order_ids, start=1):
            fields = self.templates["BUY" if order_id % 2 else "SELL"]
            fields[1] = str(order_id)
            self._writer.write(codec.encode_message(*fields))
            if per_second is not None and n % PACED_CHUNK == 0:
                await asyncio.sleep(max(0.0, started + n / per_second - common.clock()))

    def close(self) -> None:
        self._writer.close()

    async def _messages(self) -> list[codec.Message]:
        return [e for e in await self._events() if isinstance(e, codec.Message)]

    async def _events(self) -> list[Any]:
        data = await self._reader.read(1 << 16)
        if not data:
            raise ConnectionError("the gateway closed the connection")
        return self._codec.receive_data(data)


async def _round_trips(ib: IB, trials: int) -> list[float]:
    contract = _contract()
    samples = []
    for i in range(trials):
        started = common.clock()
        trade = ib.placeOrder(contract, MarketOrder("BUY" if i % 2 else "SELL", 1))
        await wait_true(lambda t=trade: t.orderStatus.status == "Filled", timeout=10,
                        step=0.0001, what="a fill")  # fmt: skip
        samples.append(common.clock() - started)
    return samples


async def _measure(orders: int, bursts: int, trials: int) -> dict[str, Any]:
    async with common.gateway_process(**GATEWAY_OPTIONS) as port:
        gateway = _gateway_process()
        ib = IB()
        await ib.connectAsync(HOST, port, clientId=1, timeout=10)
        ib.client.MaxRequests = 0  # ib_async's own pacing off
        raw = await _RawClient.connect(port, client_id=2)
        try:
            await _burst(ib, gateway, min(orders, 200))  # warm-ups
            await _raw_burst(raw, gateway, min(orders, 200))
            runs: dict[str, list[dict[str, float]]] = {"ib": [], "raw": [], "paced": []}
            for _ in range(bursts):  # the clients alternate
                runs["ib"].append(await _burst(ib, gateway, orders))
                runs["raw"].append(await _raw_burst(raw, gateway, orders))
                runs["paced"].append(await _raw_burst(raw, gateway, orders, TARGET_RATE))
            trips = await _round_trips(ib, trials)
        finally:
            ib.disconnect()
            raw.close()
    return {**runs, "trips": trips}


def _client_rows(
    runs: list[dict[str, float]], client: str, *, rate_target: bool, cpu_target: bool
) -> list[dict[str, Any]]:
    rates = [r["rate"] for r in runs]
    shares = [r["cpu_share"] for r in runs]
    rate_ok = common.median(rates) >= TARGET_RATE
    cpu_ok = common.median(shares) < TARGET_CPU
    return [
        row(f"orders placed and filled per second ({client})", rates, unit="orders/s",
            scale=1.0, target=f">= {TARGET_RATE:,.0f}" if rate_target else "",
            met=rate_ok if rate_target else None),
        row(f"gateway CPU, share of one CPU ({client})", shares, unit="%", scale=100.0,
            target=f"< {TARGET_CPU:.0%}" if cpu_target else "",
            met=cpu_ok if cpu_target else None),
        row(f"gateway CPU per order ({client})",
            [s / r for s, r in zip(shares, rates, strict=True)], unit="us", scale=1e6),
        row(f"client CPU, share of one CPU ({client})", [r["client_share"] for r in runs],
            unit="%", scale=100.0),
    ]  # fmt: skip


def run(quick: bool) -> Result:
    """Orders/s one client gets filled (ib_async, and a raw codec client), the gateway's CPU
    share, and the round trip."""
    orders, bursts, trials = (1_000, 3, 50) if quick else (5_000, 5, 300)
    figures = common.run_async(lambda: _measure(orders, bursts, trials))
    return {
        "name": NAME,
        "title": "10. Order throughput",
        "command": f"python -m benchmarks.{NAME}",
        "params": {
            "orders_per_burst": orders,
            "bursts": bursts,
            "round_trips": trials,
            "pacing": "off (gateway and clients)",
        },
        "rows": [
            *_client_rows(figures["ib"], "one ib_async client, burst", rate_target=True,
                          cpu_target=True),
            *_client_rows(figures["raw"], "raw codec client, burst", rate_target=True,
                          cpu_target=False),
            *_client_rows(figures["paced"], f"raw codec client at {TARGET_RATE:,.0f}/s",
                          rate_target=False, cpu_target=True),
            row("place -> Filled round trip (ib_async, one order at a time)", figures["trips"]),
        ],
        "notes": [
            "The gateway runs in a child process; its CPU is read with psutil on that process, "
            "the client's (this process) with time.process_time().",
            "Each order: 1 placeOrder in; out: openOrder, orderStatus (Submitted), execDetails, "
            "commissionReport, openOrder, orderStatus (Filled), and the position and "
            "account-value updates of the subscriptions ib_async opens at connect.",
            "Client and gateway CPU shares side by side show which side limits a burst; on "
            "this shared 2-core machine they can also be limited by the other processes.",
            "With ib_async, most client time is ib_async's own decoding, event plumbing and the "
            "f-string log lines it formats for every orderStatus and execDetails even with "
            "logging off (profiled; ib_async is used unmodified).",
            "The raw client writes the bytes ib_async's placeOrder writes (captured once) and "
            "decodes every message with ClientCodec, counting Filled orderStatus messages: "
            "in a burst all orders at once (what the gateway sustains), paced at the target "
            f"rate in chunks of {PACED_CHUNK} (the gateway's CPU at that rate). The clients "
            "alternate bursts on one gateway.",
        ],
    }


if __name__ == "__main__":
    common.main(run)
