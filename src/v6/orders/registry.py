"""The application's Trades: the objects it holds, found again by permId, orderRef or order id.

ib_async forgets every Trade at each disconnect and builds new ones from the start-up sync; the
application keeps the old objects. The registry keeps them too (every Trade from
``placeOrder`` and every Trade handed out with a fill), so the tracker can put them back into
ib_async's tables before the next session's messages arrive. An order written to the socket is
*pending* (UNKNOWN) until the gateway acknowledges it (openOrder, orderStatus, an execution or a
completed order) or a complete reconciliation proves it never arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ib_async import OrderStatus, Trade


@dataclass
class Held:
    """One Trade the application holds, with what v6 knows of it."""

    trade: Trade
    session: int  # the API session in which its order id was assigned
    acknowledged: bool = True  # False: written to the socket, no answer yet (UNKNOWN)


class TradeRegistry:
    """Trades by orderRef and permId (both survive a reconnect; order ids do not)."""

    def __init__(self) -> None:
        self._held: dict[int, Held] = {}  # id(trade) -> Held
        self._by_ref: dict[str, Held] = {}
        self._by_perm: dict[int, Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __iter__(self) -> Iterator[Held]:
        return iter(list(self._held.values()))

    def add(self, trade: Trade, session: int, *, acknowledged: bool = True) -> Held:
        held = self._held.get(id(trade))
        if held is None:
            held = self._held[id(trade)] = Held(trade, session, acknowledged)
        self.index(held)
        return held

    def index(self, held: Held) -> None:
        """(Re)index after the order's permId or orderRef became known."""
        order = held.trade.order
        if order.orderRef:
            self._by_ref.setdefault(order.orderRef, held)
        if order.permId:
            self._by_perm.setdefault(order.permId, held)

    def get(self, trade: Trade) -> Held | None:
        return self._held.get(id(trade))

    def find(self, perm_id: int, order_ref: str) -> Held | None:
        """The held Trade with this permId, else with this orderRef."""
        held = self._by_perm.get(perm_id) if perm_id else None
        if held is None and order_ref:
            held = self._by_ref.get(order_ref)
        return held

    def pending(self) -> list[Held]:
        return [h for h in self._held.values() if not h.acknowledged]

    def working(self) -> int:
        """Orders that are (or may be) working at the gateway: not done, or UNKNOWN."""
        return sum(
            1
            for h in self._held.values()
            if not h.acknowledged or h.trade.orderStatus.status not in OrderStatus.DoneStates
        )

    def prune_done(self, before: datetime) -> int:
        """Forget the Trades of done orders last updated before ``before`` (see
        :mod:`v6.orders.retention`); returns how many. Working and UNKNOWN ones stay."""
        gone = [
            h for h in self._held.values()
            if h.acknowledged and h.trade.orderStatus.status in OrderStatus.DoneStates
            and (not h.trade.log or h.trade.log[-1].time < before)
        ]  # fmt: skip
        for held in gone:
            del self._held[id(held.trade)]
            order = held.trade.order
            if self._by_ref.get(order.orderRef) is held:
                del self._by_ref[order.orderRef]
            if self._by_perm.get(order.permId) is held:
                del self._by_perm[order.permId]
        return len(gone)
