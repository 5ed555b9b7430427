"""``FakeGateway``'s trading controls: the simulated broker's quotes, forced fills, inspection,
order faults and restarts (a mixin, so that :mod:`.server` stays about sockets and lifecycle).

The broker lives at "IB": one per gateway, created with it, kept across :meth:`stop` /
:meth:`start` and :meth:`restart`; these methods work whether or not the gateway is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from loguru import logger

from v6.protocol.orders_messages import ExecutionSpec
from v6.testing.broker import OrderRecord, Position, Quote
from v6.testing.gateway.context import GatewayContext
from v6.testing.gateway.faults import Fault, Faults
from v6.testing.gateway.order_faults import (
    CloseAfterPlaceOrder,
    DropCommissionReports,
    DropExecutions,
    ExecBeforeOpenOrder,
    HoldOrderStatus,
)
from v6.testing.gateway.trading import positions


class TradingControls:
    """Quotes, fills, inspection and order faults of a :class:`FakeGateway`."""

    _ctx: GatewayContext
    _market: asyncio.Task[None] | None = None

    if TYPE_CHECKING:

        @property
        def faults(self) -> Faults: ...

        async def start(self) -> None: ...

        async def stop(self) -> None: ...

    # ---- market and fills

    def set_quote(self, con_id: int, bid: float, ask: float) -> Quote:
        """Pin the quote of ``con_id`` (it walks on from there at each market step); working
        orders on it match at once. Raises ``ConfigError`` unless ``0 < bid < ask`` on the
        tick grid (0.01)."""
        quote = self._ctx.broker.set_quote(con_id, bid, ask)
        self._ctx.deliver()
        return quote

    def quote(self, con_id: int) -> Quote:
        """The current quote of ``con_id`` (its seeded walk starts on first use)."""
        return self._ctx.broker.quote(con_id)

    def fill_order(
        self,
        order_id: int,
        quantity: float | None = None,
        price: float | None = None,
        *,
        client_id: int | None = None,
    ) -> str:
        """Fill ``quantity`` (default: all that remains) of a working order now, at ``price``
        (default: the touch), whether or not its client is connected, even while the gateway is
        stopped (the order fills at the exchange). Returns the execution id.

        Raises ``LookupError`` for an unknown order id, or one used by several clients without
        ``client_id``; ``ValueError`` for a finished or inactive order or a bad quantity."""
        exec_id = self._ctx.broker.fill_order(order_id, quantity, price, client_id=client_id)
        self._ctx.deliver()
        return exec_id

    def correct_execution(
        self, exec_id: str, *, shares: float | None = None, price: float | None = None
    ) -> str:
        """Send a correction of ``exec_id`` as TWS does: the same id with the revision after
        the last period incremented (``.01`` -> ``.02``), new shares / price; positions and cash
        move by the difference. Returns the new execution id."""
        new_id = self._ctx.broker.correct_execution(exec_id, shares=shares, price=price)
        self._ctx.deliver()
        return new_id

    def end_trading_day(self, *, restart: bool = False) -> list[int]:
        """Working DAY orders expire now (an orderStatus Cancelled to a connected owner);
        ``restart=True``: TWS's nightly restart follows, so done orders are no longer in
        reqCompletedOrders. Returns the expired order ids."""
        expired = self._ctx.broker.end_trading_day(restart=restart)
        self._ctx.deliver()
        return expired

    # ---- inspection

    @property
    def orders(self) -> tuple[OrderRecord, ...]:
        """Every order at the broker (``order_id``, ``client_id``, ``perm_id``, ``status``,
        ``filled``, ``remaining``, ``spec``...), in placement order."""
        return self._ctx.broker.orders

    @property
    def executions(self) -> tuple[ExecutionSpec, ...]:
        """Every execution and correction, in order (``exec_id``, ``order_id``, ``client_id``,
        ``shares``, ``price``, ``time``, ``side``...)."""
        return self._ctx.broker.executions

    @property
    def positions(self) -> tuple[Position, ...]:
        """The positions reqPositions reports: the configured ones, with the broker's fills."""
        return positions(self._ctx.settings.account_state, self._ctx.broker)

    @property
    def next_order_id(self) -> int:
        """The nextValidId the gateway reports now."""
        return self._ctx.broker.next_order_id

    # ---- order faults (each a shortcut to gw.faults, see v6.testing.gateway.faults)

    def hold_order_status(self, on: bool = True, *, newest_first: bool = False) -> None:
        """Hold every orderStatus; ``hold_order_status(False)`` sends each held one late, twice
        (``newest_first``: in reverse order, an older status after a newer one)."""
        self._switch(HoldOrderStatus(newest_first=newest_first), on)

    def drop_commission_reports(self, on: bool = True) -> None:
        """Live executions come without their commissionReport (reqExecutions still has it)."""
        self._switch(DropCommissionReports(), on)

    def drop_executions(self, on: bool = True) -> None:
        """Live executions (and their reports) are lost, as while TWS is cut off from IB
        (1100); reqExecutions still reports them."""
        self._switch(DropExecutions(), on)

    def exec_before_open_order(self, on: bool = True) -> None:
        """execDetails (and its report) arrives before the order's openOrder / orderStatus."""
        self._switch(ExecBeforeOpenOrder(), on)

    def close_after_place_order(self, on: bool = True) -> None:
        """Close a client's socket right after reading its placeOrder: the order exists at the
        broker (and may fill), its client never got an acknowledgement."""
        self._switch(CloseAfterPlaceOrder(), on)

    async def restart(self, rollback_order_ids: int = 0) -> None:
        """Stop and start again (every client is disconnected); orders, executions and positions
        survive. ``rollback_order_ids=N``: ``nextValidId`` comes back ``N`` lower than before
        (at least 1), as after a real gateway restart that lost its id counter."""
        await self.stop()
        if rollback_order_ids:
            next_id = self._ctx.broker.rollback(rollback_order_ids)
            logger.info("fake gateway: restart rolls nextValidId back to {}", next_id)
        await self.start()

    def _switch(self, fault: Fault, on: bool) -> None:
        """The ``on`` flag of the order-fault methods."""
        if on:
            self.faults.switch_on(fault)
        else:
            self.faults.switch_off(fault)

    # ---- the market clock

    def _start_market(self) -> None:
        interval = self._ctx.settings.market_interval
        if interval is not None and self._market is None:
            self._market = self._ctx.require_loop().create_task(self._market_loop(interval))

    async def _stop_market(self) -> None:
        task, self._market = self._market, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _market_loop(self, interval: float) -> None:
        """Step every quote and match working orders, every ``interval`` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                self._ctx.broker.step()
                self._ctx.deliver()
            except Exception:  # a broker bug must not stop the market silently forever
                logger.exception("fake gateway: market step failed")
