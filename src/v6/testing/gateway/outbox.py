"""The replies waiting for one socket: in order, each due after the latency in force when it was
queued, written as one batch per event-loop iteration, held while a fault holds output."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from v6.testing.gateway.faults import Faults

Outgoing = bytes | None
"""Bytes to write, or ``None``: close the socket after what precedes it."""


class Outbox:
    """Ordered, delayed, batched output to one transport.

    ``on_flushed`` runs after every write (the session uses it to end a throttle).
    """

    __slots__ = ("_entries", "_faults", "_handle", "_last_due", "_loop", "_on_flushed",
                 "bytes", "closed", "transport")  # fmt: skip

    def __init__(
        self, loop: asyncio.AbstractEventLoop, faults: Faults, on_flushed: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._faults = faults
        self._on_flushed = on_flushed
        self._entries: deque[tuple[float, Outgoing]] = deque()
        self._last_due = 0.0
        self._handle: asyncio.Handle | None = None
        self.transport: asyncio.Transport | None = None
        self.bytes = 0
        """Bytes queued here, not yet handed to the transport."""
        self.closed = False

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, data: Outgoing) -> None:
        if self.closed:
            return
        due = max(self._loop.time() + self._faults.send_delay(), self._last_due)
        self._last_due = due  # a shorter latency later must not reorder replies
        self._entries.append((due, data))
        self.bytes += len(data) if data is not None else 0
        self.schedule()

    def schedule(self) -> None:
        if self._handle is not None or not self._entries or self.closed:
            return
        due = self._entries[0][0]
        if due <= self._loop.time():
            self._handle = self._loop.call_soon(self._flush)
        else:
            self._handle = self._loop.call_at(due, self._flush)

    def close(self) -> None:
        """Drop everything queued; nothing is written any more."""
        self.closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._entries.clear()
        self.bytes = 0

    def _flush(self) -> None:
        self._handle = None
        transport = self.transport
        if transport is None or self.closed or self._faults.output_held():
            return  # held output is rescheduled when the fault is removed
        now = self._loop.time()
        chunks: list[bytes] = []
        close = False
        entries = self._entries
        while entries and entries[0][0] <= now:
            data = entries.popleft()[1]
            if data is None:
                close = True
                break
            chunks.append(data)
        payload = b"".join(chunks)
        self.bytes -= len(payload)
        if payload and not transport.is_closing():
            transport.write(payload)
        self._on_flushed()
        if close:
            self.close()
            transport.close()
        else:
            self.schedule()
