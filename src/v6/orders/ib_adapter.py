"""The orders side's seam to ``ib_async``: the only module of :mod:`v6.orders` that touches its
internals (``docs/ib_async-trading-state.md`` records why each touch is needed).

Two directions, both typed:

* :class:`OrderMessages` is what the tracker is told while ib_async's decoder handles an order
  message: :class:`IbAsyncOrders` replaces six of the wrapper's methods (per ``IB`` instance) with
  ones that ask the tracker, call the original, and tell the tracker what it did;
* :class:`OrderPort` is what the tracker and the order gate may do to ib_async: look a Trade or
  Fill up in its tables, bind a held Trade there, put held Trades back at a handshake, read and
  raise the order-id sequence, announce a fill, commission or status through ib_async's events,
  place an order the way ib_async would, ask for a sync and forget abandoned sync requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any, Protocol

from ib_async import IB, CommissionReport, Contract, Execution, Fill, Order, OrderState, Trade
from ib_async.util import UNSET_DOUBLE

from v6.connection.lifecycle import Endpoint

PlaceOrder = Callable[[Contract, Order], Trade]
_REPORT_FIELDS = tuple(f.name for f in fields(CommissionReport))


class OrderMessages(Protocol):
    """The tracker's side of the wrapper patches, in the order ib_async's decoder runs them."""

    def is_held(self, trade: Trade) -> bool:
        """The application holds this Trade: its events must outlive the socket."""
        ...

    def order_named(
        self, perm_id: int, order_ref: str, client_id: int, order_id: int
    ) -> Trade | None:
        """A message names this order (before ib_async handles it): its Trade, a held one
        bound in ib_async's tables first."""
        ...

    def is_late(self, trade: Trade, status: str, filled: float) -> bool:
        """This orderStatus is older than what ``trade`` shows: dropped unseen."""
        ...

    def open_order(self, order: Order, status: str, trade: Trade | None) -> None: ...

    def order_status(self, trade: Trade) -> None: ...

    def completed_order(
        self, order: Order, status: str, filled: float | None, trade: Trade | None
    ) -> None:
        """``filled``: the order's filled quantity (None: TWS did not say)."""
        ...

    def execution(self, fill: Fill, trade: Trade | None, *, live: bool, new: bool) -> None:
        """``live``: not a reply to a sync request; ``new``: ib_async had not seen its exec id
        (so it appended the fill to ``trade.fills`` and announced it if live)."""
        ...

    def commission(self, report: CommissionReport) -> None:
        """A commission report, already merged into its Fill's report when the Fill is known."""
        ...


class OrderPort(Protocol):
    """What v6.orders may do to ib_async (implemented by :class:`IbAsyncOrders`)."""

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def last_time(self) -> datetime: ...

    def trade(self, client_id: int, order_id: int, perm_id: int) -> Trade | None: ...

    def bind(self, trade: Trade, perm_id: int, client_id: int, order_id: int) -> None: ...

    def is_bound(self, trade: Trade, perm_id: int) -> bool: ...

    def add_trade(self, trade: Trade) -> None: ...

    def restore(self, trades: Iterable[Trade], fills: Iterable[Fill]) -> None: ...

    def fill(self, exec_id: str) -> Fill | None: ...

    def fills(self) -> Iterable[Fill]: ...

    def is_known_order(self, order: Order) -> bool: ...

    def next_valid_id(self) -> int: ...

    def raise_next_order_id(self, floor: int) -> None: ...

    def take_order_id(self) -> int: ...

    def announce_fill(self, trade: Trade, fill: Fill) -> None: ...

    def announce_commission(self, trade: Trade, fill: Fill) -> None: ...

    def announce_status(self, trade: Trade) -> None: ...

    def place_order(self, contract: Contract, order: Order) -> Trade: ...

    async def sync_orders(self) -> None: ...

    def drop_abandoned_requests(self) -> None: ...


class IbAsyncOrders:
    """:class:`OrderPort` on an ``ib_async.IB``, and the wrapper patches that tell
    :class:`OrderMessages` (see the module docstring). :meth:`install` patches; ``placeOrder``
    goes through :meth:`route_place_order`."""

    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self._wrapper: Any = ib.wrapper
        self._client: Any = ib.client
        self._original: dict[str, Callable[..., Any]] = {}
        self._place_order: PlaceOrder = ib.placeOrder
        self._messages: OrderMessages | None = None

    def install(self, messages: OrderMessages) -> None:
        """Route the wrapper's order messages through ``messages`` from now on."""
        self._messages = messages
        for name in (
            "setEventsDone", "openOrder", "orderStatus", "execDetails", "completedOrder",
            "commissionReport",
        ):  # fmt: skip
            self._original[name] = getattr(self._wrapper, name)
            setattr(self._wrapper, name, getattr(self, "_" + name))

    def route_place_order(self, place_order: PlaceOrder) -> None:
        """``ib.placeOrder`` becomes ``place_order`` (which calls :meth:`place_order`)."""
        self.ib.placeOrder = place_order  # type: ignore[method-assign,assignment]

    # ---------------------------------------------------------------------- the port

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self._client.host, self._client.port, self._client.clientId)

    @property
    def last_time(self) -> datetime:
        last: datetime = self._wrapper.lastTime
        return last

    def trade(self, client_id: int, order_id: int, perm_id: int) -> Trade | None:
        """ib_async's Trade of this order: by permId, else by its order key."""
        wrapper = self._wrapper
        found: Trade | None = wrapper.permId2Trade.get(perm_id) if perm_id else None
        return found or wrapper.trades.get(wrapper.orderKey(client_id, order_id, perm_id))

    def bind(self, trade: Trade, perm_id: int, client_id: int, order_id: int) -> None:
        """``trade`` is the order's Trade for ib_async from now on."""
        wrapper = self._wrapper
        if perm_id:
            wrapper.permId2Trade[perm_id] = trade
        if order_id > 0 and client_id == trade.order.clientId:
            wrapper.trades[wrapper.orderKey(client_id, order_id, perm_id)] = trade

    def is_bound(self, trade: Trade, perm_id: int) -> bool:
        """ib_async finds ``trade`` by this permId already."""
        return bool(perm_id) and self._wrapper.permId2Trade.get(perm_id) is trade

    def add_trade(self, trade: Trade) -> None:
        """A Trade v6 built (for an execution nobody named) joins ib_async's tables."""
        o = trade.order
        if o.permId:
            self._wrapper.permId2Trade[o.permId] = trade
        self._wrapper.trades[self._wrapper.orderKey(o.clientId, o.orderId, o.permId)] = trade

    def restore(self, trades: Iterable[Trade], fills: Iterable[Fill]) -> None:
        """At a handshake: held Trades and their fills (and replaced fills) go back into the
        tables ib_async emptied, so the new session updates the same objects and its sync does
        not append a fill twice."""
        wrapper = self._wrapper
        for trade in trades:
            order = trade.order
            if order.permId:
                wrapper.permId2Trade[order.permId] = trade
            if order.orderId > 0 and order.clientId == wrapper.clientId:
                wrapper.trades[(order.clientId, order.orderId)] = trade
            elif order.orderId <= 0 and order.permId:
                wrapper.trades[order.permId] = trade
            for fill in trade.fills:
                wrapper.fills[fill.execution.execId] = fill
        for fill in fills:
            wrapper.fills[fill.execution.execId] = fill

    def fill(self, exec_id: str) -> Fill | None:
        found: Fill | None = self._wrapper.fills.get(exec_id)
        return found

    def fills(self) -> Iterable[Fill]:
        found: Iterable[Fill] = self._wrapper.fills.values()
        return found

    def is_known_order(self, order: Order) -> bool:
        """ib_async has a Trade for this order id of this session (placing it is a modify)."""
        wrapper = self._wrapper
        return wrapper.orderKey(wrapper.clientId, order.orderId, order.permId) in wrapper.trades

    def next_valid_id(self) -> int:
        """The next id ib_async would hand out (the snooped ``nextValidId`` at a handshake)."""
        return int(self._client._reqIdSeq)

    def raise_next_order_id(self, floor: int) -> None:
        self._client.updateReqId(floor)

    def take_order_id(self) -> int:
        return int(self._client.getReqId())

    def announce_fill(self, trade: Trade, fill: Fill) -> None:
        """The events ib_async fires for a live fill it knows the Trade of."""
        self.ib.execDetailsEvent.emit(trade, fill)
        trade.fillEvent.emit(trade, fill)

    def announce_commission(self, trade: Trade, fill: Fill) -> None:
        self.ib.commissionReportEvent.emit(trade, fill, fill.commissionReport)
        trade.commissionReportEvent.emit(trade, fill, fill.commissionReport)

    def announce_status(self, trade: Trade) -> None:
        self.ib.orderStatusEvent.emit(trade)

    def place_order(self, contract: Contract, order: Order) -> Trade:
        """ib_async's own ``placeOrder``."""
        return self._place_order(contract, order)

    async def sync_orders(self) -> None:
        """Ask again for open orders, completed orders, then executions (as connectAsync's
        sync does: executions after all orders are in)."""
        ib = self.ib
        await asyncio.gather(ib.reqOpenOrdersAsync(), ib.reqCompletedOrdersAsync(False))
        await ib.reqExecutionsAsync()

    def drop_abandoned_requests(self) -> None:
        """Forget requests whose future was cancelled, so later messages count as live again."""
        wrapper = self._wrapper
        for key, future in list(wrapper._futures.items()):
            if future.done():
                wrapper._futures.pop(key, None)
                wrapper._results.pop(key, None)

    # ------------------------------------------------------------ the wrapper patches

    @property
    def _tell(self) -> OrderMessages:
        assert self._messages is not None, "patched only by install()"
        return self._messages

    def _setEventsDone(self) -> None:
        """ib_async ends every Trade's events on a lost socket; held ones must live on."""
        wrapper = self._wrapper
        trades = wrapper.trades
        wrapper.trades = {k: t for k, t in trades.items() if not self._tell.is_held(t)}
        try:
            self._original["setEventsDone"]()
        finally:
            wrapper.trades = trades

    def _openOrder(
        self, order_id: int, contract: Contract, order: Order, state: OrderState
    ) -> None:
        if order.whatIf:
            self._original["openOrder"](order_id, contract, order, state)
            return
        self._tell.order_named(order.permId, order.orderRef, order.clientId, order.orderId)
        self._original["openOrder"](order_id, contract, order, state)
        trade = self._wrapper.trades.get(
            self._wrapper.orderKey(order.clientId, order.orderId, order.permId)
        )
        self._tell.open_order(order, state.status, trade)

    def _orderStatus(self, order_id: int, status: str, filled: float, *rest: Any) -> None:
        perm_id, client_id = int(rest[2]), int(rest[5])
        trade = self._tell.order_named(perm_id, "", client_id, order_id)
        if trade is not None and self._tell.is_late(trade, status, filled):
            return
        self._original["orderStatus"](order_id, status, filled, *rest)
        if trade is not None:
            self._tell.order_status(trade)

    def _completedOrder(self, contract: Contract, order: Order, state: OrderState) -> None:
        trade = self._tell.order_named(order.permId, order.orderRef, order.clientId, order.orderId)
        self._original["completedOrder"](contract, order, state)
        filled = float(order.filledQuantity)
        self._tell.completed_order(
            order, state.status, None if filled == UNSET_DOUBLE else filled, trade
        )

    def _execDetails(self, req_id: int, contract: Contract, execution: Execution) -> None:
        wrapper = self._wrapper
        live = req_id not in wrapper._futures
        exec_id = execution.execId
        new = exec_id not in wrapper.fills
        trade = self._tell.order_named(
            execution.permId, execution.orderRef, execution.clientId, execution.orderId
        )
        self._original["execDetails"](req_id, contract, execution)
        fill = wrapper.fills.get(exec_id)
        if fill is not None:
            self._tell.execution(fill, trade, live=live, new=new)

    def _commissionReport(self, report: CommissionReport) -> None:
        if report.yield_ == UNSET_DOUBLE:
            report.yield_ = 0.0
        if report.realizedPNL == UNSET_DOUBLE:
            report.realizedPNL = 0.0
        fill = self._wrapper.fills.get(report.execId)
        if fill is not None:
            merged = fill.commissionReport
            for name in _REPORT_FIELDS:  # dataclassUpdate, without its per-call fields() walk
                setattr(merged, name, getattr(report, name))
            report = merged  # held as is: nothing to copy when passed on
        self._tell.commission(report)
