"""Positions and cash of the simulated broker: what the fills do to an account. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from v6.protocol.orders_messages import ExecutionSpec
from v6.testing.broker.accounts import AccountValue, Position
from v6.testing.broker.quotes import instrument_id


@dataclass(frozen=True, slots=True)
class _Holding:
    position: Position
    instrument: int


class Ledger:
    """Cash and one position per (account, instrument), moved by signed executions.

    Average cost follows IB: adding to a position averages, reducing keeps it, flipping through
    zero starts again at the fill price; the closed part realizes ``(price - avg_cost) * qty``.
    """

    def __init__(self, starting_cash: float) -> None:
        self.cash = starting_cash
        self._holdings: dict[tuple[str, int], _Holding] = {}

    def book(self, execution: ExecutionSpec) -> float:
        """Apply one execution (``shares`` may be negative to undo one); returns realized P&L."""
        signed = execution.shares if execution.side == "BOT" else -execution.shares
        instrument = instrument_id(execution.contract)
        key = (execution.account, instrument)
        held = self._holdings.get(key)
        old = held.position if held else _flat_position(execution)
        quantity = old.quantity + signed
        realized = 0.0
        if old.quantity and (old.quantity > 0) != (signed > 0):  # reducing or flipping
            closed = min(abs(signed), abs(old.quantity)) * (1 if old.quantity > 0 else -1)
            realized = closed * (execution.price - old.avg_cost)
        self.cash -= signed * execution.price
        position = replace(
            old,
            quantity=quantity,
            avg_cost=_avg_cost(old, quantity, signed, execution.price),
            realized_pnl=old.realized_pnl + realized,
        )
        self._holdings[key] = _Holding(position, instrument)
        return realized

    def charge(self, amount: float) -> None:
        self.cash -= amount

    def positions(self, mark: Callable[[int], float]) -> tuple[Position, ...]:
        """Non-flat positions, marked at ``mark(instrument id)``."""
        return tuple(
            replace(h.position, market_price=mark(h.instrument))
            for h in self._holdings.values()
            if h.position.quantity
        )

    def position(self, account: str, instrument: int, mark: float) -> Position | None:
        """The position in ``instrument`` (flat ones too, once traded), marked at ``mark``."""
        held = self._holdings.get((account, instrument))
        return replace(held.position, market_price=mark) if held else None

    def account_values(self, mark: Callable[[int], float]) -> tuple[AccountValue, ...]:
        """Cash, NetLiquidation and GrossPositionValue, for the gateway to merge."""
        positions = self.positions(mark)
        gross = sum(abs(p.market_value) for p in positions)
        net = self.cash + sum(p.market_value for p in positions)
        return (
            AccountValue("TotalCashValue", f"{self.cash:.2f}"),
            AccountValue("NetLiquidation", f"{net:.2f}"),
            AccountValue("GrossPositionValue", f"{gross:.2f}"),
        )


def _avg_cost(old: Position, quantity: float, signed: float, price: float) -> float:
    same_side = bool(old.quantity) and (old.quantity > 0) == (quantity > 0)
    if not quantity:
        return 0.0
    if not same_side:
        return price  # opened, or flipped through zero
    if abs(quantity) > abs(old.quantity):
        return (old.avg_cost * old.quantity + price * signed) / quantity
    return old.avg_cost


def _flat_position(execution: ExecutionSpec) -> Position:
    c = execution.contract
    return Position(
        execution.account, c.symbol, 0.0, 0.0, con_id=c.con_id, sec_type=c.sec_type or "STK",
        exchange=c.exchange, primary_exchange=c.primary_exchange, currency=c.currency or "USD",
        multiplier=c.multiplier, local_symbol=c.local_symbol,
    )  # fmt: skip
