"""Order identity: order ids that are never reused, and the orderRef v6 stamps on every order.

TWS numbers orders per (host, port, client id) and tells the client the next free one with
``nextValidId``. A restarted gateway can send a LOWER ``nextValidId`` than ids already used (Lean's
IB brokerage lost orders exactly so), and ib_async starts its sequence from whatever arrives. The
allocator therefore hands out ``max(nextValidId, highest id ever sent + 1)``, seeded from the
journal so a restarted process keeps the rule.

An orderRef survives everything an order id does not (gateway restarts, other sessions), so v6
stamps ``v6-<session>-<n>`` on orders that have none: ``session`` is 6 base-36 characters drawn
once per process from the injected ``random.Random`` (36**6 ~ 2.2e9 values), ``n`` counts from 1.
"""

from __future__ import annotations

import random
import string
from typing import Protocol

from v6.errors import NotConnected, OrderIdReused
from v6.validation import require_int

ORDER_REF_PREFIX = "v6-"
SESSION_LENGTH = 6
_ALPHABET = string.digits + string.ascii_lowercase


class OrderIdAllocator:
    """Next order id: never at or below one already sent (pure)."""

    def __init__(self, highest_sent: int | None = None) -> None:
        if highest_sent is not None:
            require_int("highest_sent", highest_sent, low=0)
        self._highest = highest_sent
        self._next_valid: int | None = None
        self.rollbacks = 0  # times nextValidId came back at or below an id already sent

    @property
    def highest_sent(self) -> int | None:
        return self._highest

    def observe_next_valid_id(self, next_valid_id: int) -> None:
        """Take the gateway's ``nextValidId`` (it may go backwards after a gateway restart)."""
        if self._highest is not None and next_valid_id <= self._highest:
            self.rollbacks += 1
        self._next_valid = next_valid_id

    def next_id(self) -> int:
        """The id :meth:`allocate` would return (for raising ib_async's own sequence)."""
        if self._next_valid is None:
            raise NotConnected("no nextValidId seen yet: order ids come from the gateway")
        floor = 0 if self._highest is None else self._highest + 1
        return max(self._next_valid, floor)

    def allocate(self) -> int:
        order_id = self.next_id()
        self._highest = order_id
        return order_id

    def note_sent(self, order_id: int) -> None:
        """A NEW order is about to go out with ``order_id`` chosen elsewhere (ib_async's own
        sequence, or the user's). Raises OrderIdReused at or below an id already sent."""
        if self._highest is not None and order_id <= self._highest:
            raise OrderIdReused(
                f"order id {order_id} is at or below {self._highest}, already sent; "
                "TWS would reject it or, after a gateway restart, confuse two orders"
            )
        self._highest = order_id


class HasOrderRef(Protocol):
    orderRef: str


class OrderRefs:
    """Stamps ``v6-<session>-<n>`` on orders whose orderRef is empty."""

    def __init__(self, rng: random.Random, *, session: str | None = None) -> None:
        self.session = session or "".join(rng.choice(_ALPHABET) for _ in range(SESSION_LENGTH))
        self._count = 0

    def next_ref(self) -> str:
        self._count += 1
        return f"{ORDER_REF_PREFIX}{self.session}-{self._count}"

    def stamp(self, order: HasOrderRef) -> str:
        """Give ``order`` a fresh orderRef unless it has one; return the order's ref."""
        if not order.orderRef:
            order.orderRef = self.next_ref()
        return order.orderRef

    def is_ours(self, order_ref: str) -> bool:
        """Stamped by this process (a ref from an earlier process is not)."""
        return order_ref.startswith(f"{ORDER_REF_PREFIX}{self.session}-")
