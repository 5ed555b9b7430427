"""A model of the trading-state promise: a hypothesis ``RuleBasedStateMachine`` whose rules are the
world's moves and whose invariants are the promise, checked against the fake gateway's own state
after every step once it has settled. Real sockets: a trading FakeGateway, the real ib_async
client, the real manager with a journal file; each example is a whole session.

Rules: place (a stamped or an application-chosen, repeated orderRef), modify, cancel, partial
fill, full fill, an execution correction, a FIN drop, a gateway stop-start (with or without a
nextValidId rollback), 1100 -> 1101 and 1100 -> 1102 with the executions of the cut-off lost, a
process restart on the same journal, and a crash inside ``on_fill`` (the handler's task never
completes; the process stops; a new one starts on the journal).

Invariants, once settled (connected, every gateway execution delivered, statuses caught up):
every execution at the gateway reached ``on_fill`` at least once, and more than once only if a
crash interrupted its handler; every Trade the current process holds shows its gateway order's
status, filled quantity and fills (the latest revision of each execution); no order id used
twice; health agrees (``open_orders`` = the gateway's working orders of this client id,
``fills_redelivered`` = the crash-interrupted fills delivered again).

``make test`` runs ``DEFAULT_EXAMPLES`` derandomized examples; ``V6_MODEL_EXAMPLES=N`` runs N
random ones (the long mode, README "Trading state across outages").
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from ib_async import Fill, LimitOrder, Stock, Trade

from tests.helpers import fast_settings
from tests.orders.trading import AAPL_ID, FAR_LIMIT
from v6.manager import IBConnectionManager
from v6.orders.ledger import split_exec_id
from v6.testing import FakeGateway
from v6.testing.scenario import wait_true

DEFAULT_EXAMPLES = 5
EXAMPLES = int(os.environ.get("V6_MODEL_EXAMPLES", DEFAULT_EXAMPLES))
LONG = "V6_MODEL_EXAMPLES" in os.environ
AAPL = Stock("AAPL", "SMART", "USD", conId=AAPL_ID)
CLIENT_ID = 1
SETTLE = 8.0  # seconds a step may take to settle before the model calls it a failure


class TradingModel(RuleBasedStateMachine):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # Rules call ib_async outside run_until_complete (placeOrder): its getLoop() must find
        # this loop, not make one of its own.
        asyncio.set_event_loop(self.loop)
        self.directory = tempfile.TemporaryDirectory()
        self.journal = Path(self.directory.name) / "j.sqlite"
        self.delivered: Counter[str] = Counter()  # exec id -> on_fill calls, all processes
        self.interrupted: set[str] = set()  # handed to a handler that a crash cut short
        self.redelivered_expected = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.manager: IBConnectionManager | None = None
        self.gw = self.run(self._start())

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _start(self) -> FakeGateway:
        self.gw = gw = FakeGateway(port=0, market_interval=None)  # (made inside the loop)
        await gw.start()
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        await self._new_process()
        return gw

    async def _new_process(self) -> None:
        manager = IBConnectionManager(port=self.gw.port, client_id=CLIENT_ID,
                                      journal=self.journal, **fast_settings())  # fmt: skip
        self.in_handler: set[str] = set()
        self.handled: Counter[str] = Counter()  # this process's on_fill calls

        async def on_fill(trade: Trade, fill: Fill) -> None:
            exec_id = fill.execution.execId
            self.delivered[exec_id] += 1
            self.handled[exec_id] += 1
            self.in_handler.add(exec_id)
            await self.gate.wait()
            self.in_handler.discard(exec_id)

        manager.on_fill(on_fill)
        self.manager = manager
        self.trades: list[Trade] = []  # placed by this process
        await manager.start()
        await manager.wait_connected(timeout=SETTLE)

    def teardown(self) -> None:
        try:
            self.gate.set()
            if self.manager is not None:
                self.run(self.manager.stop())
            self.run(self.gw.stop())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            self.loop.close()
            self.directory.cleanup()

    # ------------------------------------------------------------------ helpers

    @property
    def m(self) -> IBConnectionManager:
        assert self.manager is not None
        return self.manager

    def working(self) -> list[Trade]:
        ids = {r.order_id for r in self.gw.orders if not r.state.done and r.status != "Inactive"}
        return [t for t in self.trades if t.order.orderId in ids]

    def settle(self) -> None:
        """Connected, every gateway execution delivered, every held Trade caught up."""

        def settled() -> bool:
            return (
                self.m.is_connected
                and all(self.delivered[e.exec_id] for e in self.gw.executions)
                and not self.mismatches()
                and not self.in_handler - self.interrupted
            )

        try:
            self.run(wait_true(settled, SETTLE, step=0.005))
        except TimeoutError:
            raise AssertionError(
                f"not settled: connected={self.m.is_connected}, undelivered="
                f"{[e.exec_id for e in self.gw.executions if not self.delivered[e.exec_id]]}, "
                f"mismatches={self.mismatches()}"
            ) from None
        self.run(asyncio.sleep(0.02))  # and nothing more comes

    def held(self) -> dict[int, Trade]:
        """The current process's Trades by permId (what it holds and what ib_async built)."""
        found = {t.order.permId: t for t in self.m.ib.trades() if t.order.permId}
        found.update({t.order.permId: t for t in self.trades if t.order.permId})
        return found

    def mismatches(self) -> list[str]:
        out = []
        held = self.held()
        latest = latest_revisions(self.gw.executions)
        for record in self.gw.orders:
            if record.client_id != CLIENT_ID or record.perm_id not in held:
                continue
            trade = held[record.perm_id]
            fills = sorted(f.execution.execId for f in trade.fills)
            want = sorted(e for e, order in latest.items() if order == record.order_id)
            status = trade.orderStatus
            if (status.status, status.filled, fills) != (record.status, record.filled, want):
                out.append(f"order {record.order_id}: gateway {record.status} "
                           f"{record.filled} {want}; Trade {status.status} {status.filled} "
                           f"{fills}")  # fmt: skip
        return out

    # ------------------------------------------------------------------ rules

    @initialize(orders=st.lists(st.tuples(st.sampled_from([100, 200]), st.booleans()),
                                min_size=1, max_size=3))  # fmt: skip
    def some_working_orders(self, orders: list[tuple[int, bool]]) -> None:
        for quantity, shared_ref in orders:
            self.place(quantity, shared_ref)

    @rule(quantity=st.sampled_from([100, 200]), shared_ref=st.booleans())
    def place(self, quantity: int, shared_ref: bool) -> None:
        event("place")
        ref = "strategy-a" if shared_ref else ""
        trade = self.m.ib.placeOrder(AAPL, LimitOrder("BUY", quantity, FAR_LIMIT, orderRef=ref))
        self.trades.append(trade)
        self.settle()

    @precondition(lambda self: self.working())
    @rule(n=st.integers(0, 9))
    def modify(self, n: int) -> None:
        event("modify")
        trade = pick(self.working(), n)
        record = next(r for r in self.gw.orders if r.order_id == trade.order.orderId)
        trade.order.totalQuantity = record.filled + 100
        self.m.ib.placeOrder(trade.contract, trade.order)
        self.run(wait_true(lambda: gateway_quantity(self.gw, trade) == trade.order.totalQuantity,
                           SETTLE))  # fmt: skip
        self.settle()

    @precondition(lambda self: self.working())
    @rule(n=st.integers(0, 9))
    def cancel(self, n: int) -> None:
        event("cancel")
        self.m.ib.cancelOrder(pick(self.working(), n).order)
        self.settle()

    @precondition(lambda self: self.working())
    @rule(n=st.integers(0, 9), whole=st.booleans())
    def fill(self, n: int, whole: bool) -> None:
        event("fill")
        trade = pick(self.working(), n)
        record = next(r for r in self.gw.orders if r.order_id == trade.order.orderId)
        self.gw.fill_order(record.order_id, None if whole else min(50, record.remaining),
                           client_id=CLIENT_ID)  # fmt: skip
        self.settle()

    @precondition(lambda self: self.gw.executions)
    @rule(n=st.integers(0, 9))
    def correct(self, n: int) -> None:
        event("correct")
        latest = list(latest_revisions(self.gw.executions))
        exec_id = pick(latest, n)
        price = next(e.price for e in self.gw.executions if e.exec_id == exec_id)
        self.gw.correct_execution(exec_id, price=round(price - 0.01, 2))
        self.settle()

    @rule()
    def fin_drop(self) -> None:
        event("fin_drop")
        self.run(self.gw.drop_all())
        self.settle()

    @rule(rollback=st.sampled_from([0, 0, 50]), n=st.integers(0, 9))
    def gateway_stop_start(self, rollback: int, n: int) -> None:
        event("gateway_stop_start")
        async def outage() -> None:
            await self.gw.stop()
            if self.working():  # the order fills at IB meanwhile
                self.gw.fill_order(pick(self.working(), n).order.orderId, client_id=CLIENT_ID)
            await self.gw.restart(rollback_order_ids=rollback)  # (stopped: starts it again)

        self.run(outage())
        self.settle()

    @rule(code=st.sampled_from([1101, 1102]), n=st.integers(0, 9))
    def cut_off(self, code: int, n: int) -> None:
        event("cut_off")
        self.gw.broadcast_error(1100)
        self.gw.drop_executions(True)  # what TWS misses while cut off from IB
        if self.working():
            self.gw.fill_order(pick(self.working(), n).order.orderId, 50, client_id=CLIENT_ID)
        self.gw.drop_executions(False)
        self.gw.broadcast_error(code)
        self.settle()

    @rule()
    def process_restart(self) -> None:
        event("process_restart")
        self.run(self.m.stop())
        self.run(self._new_process())
        self.settle()

    @precondition(lambda self: self.working())
    @rule(n=st.integers(0, 9))
    def crash_inside_on_fill(self, n: int) -> None:
        event("crash_inside_on_fill")
        trade = pick(self.working(), n)
        self.gate.clear()  # the next handler never returns
        exec_id = self.gw.fill_order(trade.order.orderId, 50, client_id=CLIENT_ID)
        self.run(wait_true(lambda: exec_id in self.in_handler, SETTLE))
        self.interrupted.add(exec_id)
        self.redelivered_expected += 1

        async def crash() -> None:
            self.m._orders.fill_listeners._running.pop().cancel()  # the process dies in there
            await self.m.stop()
            self.gate.set()
            await self._new_process()

        self.run(crash())
        self.settle()

    # ------------------------------------------------------------------ the promise

    @invariant()
    def each_execution_delivered_once_or_again_only_after_a_crash(self) -> None:
        for execution in self.gw.executions:
            calls = self.delivered[execution.exec_id]
            limit = 2 if execution.exec_id in self.interrupted else 1
            assert 1 <= calls <= limit, (execution.exec_id, calls)

    @invariant()
    def held_trades_show_their_gateway_orders(self) -> None:
        assert self.mismatches() == []

    @invariant()
    def no_order_id_used_twice(self) -> None:
        ids = [r.order_id for r in self.gw.orders]
        assert len(ids) == len(set(ids)), ids

    @invariant()
    def health_agrees(self) -> None:
        health = self.run(self.m.connection_health())
        working = [r for r in self.gw.orders
                   if r.client_id == CLIENT_ID and not r.state.done and r.status != "Inactive"]
        assert health["open_orders"] == len(working), (health, working)
        assert health["fills_delivered"] == sum(self.handled.values())
        assert health["healthy"], health


def pick(items: list[Any], n: int) -> Any:
    return items[n % len(items)]


def gateway_quantity(gw: FakeGateway, trade: Trade) -> float:
    return next(r.spec.total_quantity for r in gw.orders if r.order_id == trade.order.orderId)


def latest_revisions(executions: Any) -> dict[str, int]:
    """exec id -> order id, for the latest revision of each execution."""
    latest: dict[str, tuple[int, str, int]] = {}
    for e in executions:
        stem, suffix = split_exec_id(e.exec_id)
        if stem not in latest or suffix > latest[stem][0]:
            latest[stem] = (suffix, e.exec_id, e.order_id)
    return {exec_id: order_id for _, exec_id, order_id in latest.values()}


TradingModel.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=10 if LONG else 6,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestTradingModel = TradingModel.TestCase
