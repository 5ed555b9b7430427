"""Helpers for the fake-gateway tests: a bare codec-based client, an ibapi (threaded) client, and
a bounded polling helper (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.wrapper import EWrapper

from v6.protocol import codec
from v6.protocol.codec import ClientCodec, Message, ServerHello
from v6.testing.scenario import wait_true

HOST = "127.0.0.1"
STEP = 0.01
"""Polling interval of :func:`wait_until` (seconds)."""


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 2.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` every :data:`STEP` until true; fail the test after ``timeout``."""
    try:
        await wait_true(predicate, timeout, step=STEP, what=what)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


class RawClient:
    """A bare TWS API client on asyncio streams, speaking through the pure codec."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.codec = ClientCodec()
        self.events: list[codec.ClientEvent] = []
        self.eof = False

    @classmethod
    async def open(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, *fields: object) -> None:
        self.writer.write(codec.encode_message(*fields))

    def hello(self, min_version: int = 157, max_version: int = 178) -> None:
        self.send_raw(codec.encode_hello(min_version, max_version))

    async def _read(self, timeout: float) -> bool:
        """Read once; False on timeout. Raises EOFError at end of stream."""
        if self.eof:
            raise EOFError
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except TimeoutError:
            return False
        if not data:
            self.eof = True
            raise EOFError
        self.events += self.codec.receive_data(data)
        return True

    async def next_event(self, timeout: float = 1.0) -> codec.ClientEvent:
        deadline = time.monotonic() + timeout
        while not self.events:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self._read(remaining):
                raise TimeoutError("no message")
        return self.events.pop(0)

    async def handshake(
        self, client_id: int = 1, min_version: int = 157, max_version: int = 178
    ) -> ServerHello:
        self.hello(min_version, max_version)
        answer = await self.next_event()
        assert isinstance(answer, ServerHello)
        self.send(71, 2, client_id, "")
        return answer

    async def messages(self, quiet: float = 0.1, timeout: float = 2.0) -> list[Message]:
        """Every message until none arrives for ``quiet`` seconds (or EOF)."""
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.events:
                try:
                    if not await self._read(quiet):
                        break
                except EOFError:
                    break
            while self.events:
                event = self.events.pop(0)
                assert isinstance(event, Message), event
                out.append(event)
        return out

    async def ready(self, client_id: int = 1) -> list[Message]:
        """Handshake, startApi, and the startup messages (15, 9, farm notices)."""
        await self.handshake(client_id)
        return await self.messages(quiet=0.05)

    async def closed_by_peer(self, timeout: float = 1.0) -> bool:
        """True if the server closes the socket (FIN) within ``timeout``; data before EOF is
        kept. A reset raises ConnectionResetError."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                await self._read(max(0.0, deadline - time.monotonic()))
        except EOFError:
            return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class IBApiClient(EWrapper, EClient):  # type: ignore[misc]
    """IB's official (threaded, blocking) client; every callback lands in :attr:`events`."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.events: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue()
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        self.thread: threading.Thread | None = None

    def _record(self, name: str, *args: Any) -> None:
        self.events.put((name, args))

    # callbacks
    def nextValidId(self, orderId: int) -> None:
        self._record("nextValidId", orderId)

    def managedAccounts(self, accountsList: str) -> None:
        self._record("managedAccounts", accountsList)

    def currentTime(self, time: int) -> None:
        self._record("currentTime", time)

    def error(
        self,
        reqId: int,
        errorTime: int,
        errorCode: int,
        errorString: str,
        advancedOrderRejectJson: str = "",
    ) -> None:  # ibapi-stable 10.x signature; errorTime is not recorded
        self._record("error", reqId, errorCode, errorString)

    def accountSummary(self, reqId: int, account: str, tag: str, value: str, currency: str) -> None:
        self._record("accountSummary", reqId, account, tag, value, currency)

    def accountSummaryEnd(self, reqId: int) -> None:
        self._record("accountSummaryEnd", reqId)

    def historicalData(self, reqId: int, bar: Any) -> None:
        self._record("historicalData", reqId, bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
        self._record("historicalDataEnd", reqId, start, end)

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
        self._record("tickPrice", reqId, tickType, price)

    def tickSize(self, reqId: int, tickType: int, size: int) -> None:
        self._record("tickSize", reqId, tickType, size)

    def connectionClosed(self) -> None:
        self._record("connectionClosed")

    # trading callbacks (ibapi-stable 10.x names)
    def openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:
        self._record("openOrder", orderId, contract, order, orderState)

    def openOrderEnd(self) -> None:
        self._record("openOrderEnd")

    def orderStatus(self, orderId: int, status: str, filled: Any, remaining: Any,
                    avgFillPrice: float, *rest: Any) -> None:  # fmt: skip
        self._record("orderStatus", orderId, status, float(filled), float(remaining),
                     avgFillPrice, *rest)  # fmt: skip

    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:
        self._record("execDetails", reqId, contract, execution)

    def execDetailsEnd(self, reqId: int) -> None:
        self._record("execDetailsEnd", reqId)

    def commissionAndFeesReport(self, commissionAndFeesReport: Any) -> None:
        self._record("commissionReport", commissionAndFeesReport)

    def position(self, account: str, contract: Any, position: Any, avgCost: float) -> None:
        self._record("position", account, contract, float(position), avgCost)

    def positionEnd(self) -> None:
        self._record("positionEnd")

    def completedOrder(self, contract: Any, order: Any, orderState: Any) -> None:
        self._record("completedOrder", contract, order, orderState)

    def completedOrdersEnd(self) -> None:
        self._record("completedOrdersEnd")

    # harness
    def start(self, port: int, client_id: int) -> None:
        """Connect and run the message loop in a worker thread."""

        def target() -> None:
            self.connect(HOST, port, client_id)
            self.run()

        self.thread = threading.Thread(target=target, name=f"ibapi-{client_id}", daemon=True)
        self.thread.start()

    async def wait_for(self, name: str, timeout: float = 2.0) -> tuple[Any, ...]:
        """The next ``name`` callback's args (earlier ones of other names go to :attr:`seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                if time.monotonic() > deadline:
                    pytest.fail(f"ibapi: no {name} within {timeout}s; saw {self.seen}")
                await asyncio.sleep(STEP)
                continue
            self.seen.append(event)
            if event[0] == name:
                return event[1]

    def drain(self) -> list[tuple[str, tuple[Any, ...]]]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        """Disconnect and make sure both ibapi threads end."""
        conn = self.conn
        sock = conn.socket if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread's blocking recv
        self.disconnect()
        if self.thread is not None:
            self.thread.join(timeout=3.0)
            assert not self.thread.is_alive(), "ibapi thread did not end"
        reader = getattr(self, "reader", None)
        if isinstance(reader, threading.Thread):
            reader.join(timeout=3.0)
            assert not reader.is_alive(), "ibapi reader thread did not end"
