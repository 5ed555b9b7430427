"""The application's Trades: the objects it holds, found again by permId, orderRef or order id.

ib_async forgets every Trade at each disconnect and builds new ones from the start-up sync; the
application keeps the old objects. The registry keeps them too (every Trade from
``placeOrder``, every Trade handed out with a fill, every working order of this client id the
gateway reports), so the tracker can put them back into ib_async's tables before the next
session's messages arrive. An order written to the socket is *pending* (UNKNOWN) until the gateway
acknowledges it (openOrder, orderStatus, an execution or a completed order) or a complete
reconciliation proves it never arrived.

The orderRef rule: an application may give several orders one orderRef (a strategy tag). A
Trade is found by its orderRef only when exactly one held Trade has that ref, and never against
a different permId; otherwise permId and (client id, order id) decide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from ib_async import OrderStatus, Trade


@dataclass
class Held:
    """One Trade the application holds, with what v6 knows of it."""

    trade: Trade
    session: int  # the API session in which its order id was assigned
    acknowledged: bool = True  # False: written to the socket, no answer yet (UNKNOWN)
    sync: int = 0  # the sync generation current when it was placed (see FillTracker)
    built: bool = False  # v6 built it from an execution of an order nobody named

    @property
    def working(self) -> bool:
        """Working (or may be) at the gateway: not done, or UNKNOWN; never a built Trade."""
        if self.built:
            return False
        return not self.acknowledged or self.trade.orderStatus.status not in OrderStatus.DoneStates


class TradeRegistry:
    """Trades by permId, and by orderRef while it is unique (see the module docstring)."""

    def __init__(self) -> None:
        self._held: dict[int, Held] = {}  # id(trade) -> Held
        self._by_ref: dict[str, Held] = {}
        self._ref_count: Counter[str] = Counter()
        self._counted: dict[int, str] = {}  # id(trade) -> the orderRef counted for it
        self._by_perm: dict[int, Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __iter__(self) -> Iterator[Held]:
        return iter(list(self._held.values()))

    def add(
        self, trade: Trade, session: int, *, acknowledged: bool = True, sync: int = 0,
        built: bool = False,
    ) -> Held:  # fmt: skip
        held = self._held.get(id(trade))
        if held is None:
            held = self._held[id(trade)] = Held(trade, session, acknowledged, sync, built)
        elif not trade.order.permId or trade.order.permId in self._by_perm:
            return held  # indexed already (a later permId is indexed by whoever learns it)
        self.index(held)
        return held

    def index(self, held: Held) -> None:
        """(Re)index after the order's permId or orderRef became known."""
        order = held.trade.order
        if order.orderRef and id(held.trade) not in self._counted:
            self._counted[id(held.trade)] = order.orderRef
            self._ref_count[order.orderRef] += 1
        if order.orderRef:
            self._by_ref.setdefault(order.orderRef, held)
        if order.permId:
            self._by_perm.setdefault(order.permId, held)

    def get(self, trade: Trade) -> Held | None:
        return self._held.get(id(trade))

    def find(self, perm_id: int, order_ref: str) -> Held | None:
        """The held Trade with this permId, else the one Trade with this orderRef (unique among
        held Trades, and with no other permId)."""
        held = self._by_perm.get(perm_id) if perm_id else None
        if held is None and order_ref and self._ref_count[order_ref] == 1:
            by_ref = self._by_ref.get(order_ref)
            if by_ref is not None and by_ref.trade.order.permId in (0, perm_id):
                held = by_ref
        return held

    def pending(self) -> list[Held]:
        return [h for h in self._held.values() if not h.acknowledged]

    def working(self) -> int:
        """Orders that are (or may be) working at the gateway: not done, or UNKNOWN."""
        return sum(1 for h in self._held.values() if h.working)

    def prune_done(self, before: datetime) -> int:
        """Forget the Trades of done orders (and built ones) last updated before ``before``
        (see :mod:`v6.orders.retention`); returns how many. Working and UNKNOWN ones stay."""
        gone = [h for h in self._held.values() if not h.working and _updated(h.trade) < before]
        for held in gone:
            self.forget(held)
        return len(gone)

    def forget(self, held: Held) -> None:
        del self._held[id(held.trade)]
        order = held.trade.order
        counted = self._counted.pop(id(held.trade), None)
        if counted is not None:
            self._ref_count[counted] -= 1
            if self._ref_count[counted] <= 0:
                del self._ref_count[counted]
        if self._by_ref.get(order.orderRef) is held:
            del self._by_ref[order.orderRef]
            again = next((h for h in self._held.values()
                          if h.trade.order.orderRef == order.orderRef), None)  # fmt: skip
            if again is not None:
                self._by_ref[order.orderRef] = again
        if self._by_perm.get(order.permId) is held:
            del self._by_perm[order.permId]


def _updated(trade: Trade) -> datetime:
    """When the Trade last changed: its last log entry (this host's clock) or its last fill's
    execution (the gateway's), whichever is later: a clock that lags never forgets early."""
    times = [entry.time for entry in trade.log[-1:]]
    times += [fill.execution.time for fill in trade.fills[-1:]]
    return max(times, default=datetime.min.replace(tzinfo=UTC))
