"""Simulated top-of-book quotes: one per contract, a seeded random walk in whole ticks.

Prices are held as integer numbers of ticks, so ``bid < ask`` holds by construction (the spread is
at least one tick) and every price is on the tick grid. Each contract's walk has its own
``random.Random`` seeded from ``(seed, con_id)``: the quotes of one contract do not depend on
which other contracts exist or in what order they were first asked for. :func:`instrument_id` says
which quote a contract trades against.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Final

from v6.errors import ConfigError
from v6.protocol.codec import ContractSpec

DEFAULT_TICK_SIZE: Final = 0.01
DEFAULT_SEED: Final = 0
DEFAULT_MAX_SPREAD_TICKS: Final = 3
_FIRST_MID_TICKS: Final = (5_000, 30_000)
"""Range of a contract's first mid price, in ticks (50.00 .. 300.00 at a 0.01 tick)."""


@dataclass(frozen=True, slots=True)
class Quote:
    bid: float
    ask: float

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


class QuoteBook:
    """Quotes by contract id. ``step()`` moves every known contract's walk by at most one tick."""

    def __init__(self, seed: int = DEFAULT_SEED, tick_size: float = DEFAULT_TICK_SIZE) -> None:
        if not tick_size > 0:
            raise ConfigError(f"tick_size: must be > 0, got {tick_size!r}")
        self.seed = seed
        self.tick_size = tick_size
        self._ticks: dict[int, tuple[int, int]] = {}
        self._rngs: dict[int, random.Random] = {}

    def to_ticks(self, price: float) -> int | None:
        """``price`` in whole ticks, or ``None`` if it is not on the tick grid."""
        ticks = round(price / self.tick_size)
        return ticks if abs(ticks * self.tick_size - price) < self.tick_size * 1e-6 else None

    def _price(self, ticks: int) -> float:
        return round(ticks * self.tick_size, 10)

    def _ensure(self, con_id: int) -> tuple[int, int]:
        if con_id not in self._ticks:
            rng = random.Random(f"{self.seed}:{con_id}")
            self._rngs[con_id] = rng
            mid = rng.randint(*_FIRST_MID_TICKS)
            self._ticks[con_id] = (mid, mid + rng.randint(1, DEFAULT_MAX_SPREAD_TICKS))
        return self._ticks[con_id]

    def quote(self, con_id: int) -> Quote:
        bid, ask = self._ensure(con_id)
        return Quote(self._price(bid), self._price(ask))

    def set_quote(self, con_id: int, bid: float, ask: float) -> Quote:
        """Pin a quote (it walks on from there). Raises :class:`ConfigError` unless
        ``0 < bid < ask`` and both are on the tick grid."""
        bid_ticks, ask_ticks = self.to_ticks(bid), self.to_ticks(ask)
        if bid_ticks is None or ask_ticks is None:
            raise ConfigError(f"quote: bid {bid} / ask {ask} not on the {self.tick_size} tick grid")
        if not 0 < bid_ticks < ask_ticks:
            raise ConfigError(f"quote: need 0 < bid < ask, got bid {bid} ask {ask}")
        self._ensure(con_id)
        self._ticks[con_id] = (bid_ticks, ask_ticks)
        return self.quote(con_id)

    def step(self) -> None:
        """Move every known quote: the bid by -1, 0 or +1 tick, a fresh 1..3 tick spread."""
        for con_id, (bid, _ask) in self._ticks.items():
            rng = self._rngs[con_id]
            bid = max(1, bid + rng.choice((-1, 0, 1)))
            self._ticks[con_id] = (bid, bid + rng.randint(1, DEFAULT_MAX_SPREAD_TICKS))

    @property
    def con_ids(self) -> frozenset[int]:
        return frozenset(self._ticks)


def instrument_id(contract: ContractSpec) -> int:
    """The contract id, or a stable stand-in for an unqualified contract (``con_id`` 0), so that
    ``Stock("AAPL", "SMART", "USD")`` trades against one quote."""
    if contract.con_id:
        return contract.con_id
    key = f"{contract.symbol}|{contract.sec_type}|{contract.currency}".upper()
    return -(zlib.crc32(key.encode()) or 1)
