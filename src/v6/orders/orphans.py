"""Live fills that arrive before anything names their order, held briefly.

TWS sends an order's openOrder / orderStatus before its executions, but the stream may reorder
(the "execDetails before openOrder" fault) and an order placed elsewhere (in TWS, by another
client) may never be announced to this client at all. So a live fill whose Trade is unknown is
held for :data:`DEFAULT_ORPHAN_GRACE`: the order's openOrder or orderStatus adopts it meanwhile,
else it is released to be delivered with a Trade built from the execution, never held until the
next reconnect. Needs a running event loop for the timer (without one, a fill waits for
adoption, :meth:`Orphans.clear` or the next reconciliation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ib_async import Fill, Order

#: How long a live fill waits for its order to be named before it is delivered anyway.
DEFAULT_ORPHAN_GRACE = 1.0


class Orphans:
    """Held live fills by exec id, each with the timer that releases it."""

    def __init__(self, release: Callable[[Fill], None], grace: float = DEFAULT_ORPHAN_GRACE):
        self._release = release
        self._grace = grace
        self._held: dict[str, tuple[Fill, asyncio.TimerHandle | None]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, fill: Fill) -> None:
        exec_id = fill.execution.execId
        if exec_id in self._held:
            return  # a repeat: the first one's timer stands
        try:
            timer = asyncio.get_running_loop().call_later(self._grace, self._expire, exec_id)
        except RuntimeError:
            timer = None
        self._held[exec_id] = (fill, timer)

    def adopt(self, order: Order) -> list[Fill]:
        """The held fills of ``order`` (same permId, or same client and order id), no longer
        held."""
        if not self._held:
            return []
        mine = [
            exec_id
            for exec_id, (fill, _) in self._held.items()
            if (fill.execution.permId and fill.execution.permId == order.permId)
            or (
                fill.execution.orderId > 0
                and (fill.execution.clientId, fill.execution.orderId)
                == (order.clientId, order.orderId)
            )
        ]
        return [self._take(exec_id) for exec_id in mine]

    def clear(self) -> None:
        """Forget every held fill (a reconciliation delivers them from the sync)."""
        for exec_id in list(self._held):
            self._take(exec_id)

    def _take(self, exec_id: str) -> Fill:
        fill, timer = self._held.pop(exec_id)
        if timer is not None:
            timer.cancel()
        return fill

    def _expire(self, exec_id: str) -> None:
        if exec_id in self._held:
            self._release(self._take(exec_id))
