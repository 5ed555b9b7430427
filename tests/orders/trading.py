"""What the order tests share: an application that counts what its hooks saw, and orders that
stay working at the fake gateway until the test fills them (``gw.fill_order``)."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ib_async import Fill, LimitOrder, Stock, Trade

from tests.helpers import TIME_UNIT, fast_settings, wait_until
from tests.orders.crashing_app import CRASHED
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway

T = TIME_UNIT
ROOT = Path(__file__).resolve().parents[2]
AAPL_ID = 265598
#: A limit far below the market: the order works until the test fills it.
FAR_LIMIT = 1.00


class App:
    """One manager and what the application saw through on_fill / on_commission."""

    def __init__(self, manager: IBConnectionManager) -> None:
        self.manager = manager
        self.fills: Counter[str] = Counter()
        self.fill_trades: list[Trade] = []
        self.commissions: Counter[str] = Counter()
        self.events: list[str] = []  # "fill <id>" / "connected", in order
        manager.on_fill(self._fill)
        manager.on_commission(lambda trade, fill, report: self.commissions.update([report.execId]))
        manager.on_connected(lambda again: self.events.append("connected"))

    def _fill(self, trade: Trade, fill: Fill) -> None:
        self.fills[fill.execution.execId] += 1
        self.fill_trades.append(trade)
        self.events.append(f"fill {fill.execution.execId}")

    def place(self, quantity: float = 100) -> Trade:
        """A BUY limit that works until filled by the test."""
        contract = Stock("AAPL", "SMART", "USD", conId=AAPL_ID)
        return self.manager.ib.placeOrder(contract, LimitOrder("BUY", quantity, FAR_LIMIT))

    async def working(self, quantity: float = 100) -> Trade:
        trade = self.place(quantity)
        await wait_until(lambda: trade.orderStatus.status == "Submitted", timeout=40 * T)
        return trade

    def calls(self) -> str:
        """on_fill calls per exec id, for the fault matrix's details column."""
        return ", ".join(f"{exec_id[-11:]}: {n}" for exec_id, n in sorted(self.fills.items()))


def held_state(trade: Trade) -> str:
    status = trade.orderStatus
    return (f"held Trade {status.status} {status.filled:g}/{status.filled + status.remaining:g}, "
            f"{len(trade.fills)} fill(s)")  # fmt: skip


async def reconnected(manager: IBConnectionManager, count: int) -> None:
    await wait_until(lambda: manager.stats.reconnects >= count and manager.is_connected, 60 * T)


@contextmanager
def disk_full(journal: Path) -> Iterator[None]:
    """The journal's disk is full: inside the block every write that would grow its WAL fails
    with an I/O error (this process's file-size limit, RLIMIT_FSIZE, is set to the WAL's size;
    Python ignores SIGXFSZ, so the write fails with EFBIG instead of killing the process)."""
    wal = Path(f"{journal}-wal")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (wal.stat().st_size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


async def started(gw: FakeGateway, **options: Any) -> App:
    """A supervised manager on ``gw`` (fast settings), connected, with its App."""
    app = App(IBConnectionManager(port=gw.port, **fast_settings(**options)))
    await app.manager.start()
    await app.manager.wait_connected(timeout=40 * T)
    return app


async def crash_inside_on_fill(gw: FakeGateway, journal: Path, client_id: int) -> str:
    """A process places an order, dies inside on_fill when it fills; returns the exec id."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.orders.crashing_app", str(gw.port), str(journal),
        str(client_id), cwd=ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 200 * T)
    exec_id = gw.fill_order(int(line.split()[1]), client_id=client_id)
    assert await asyncio.wait_for(child.wait(), 200 * T) == CRASHED
    return exec_id
