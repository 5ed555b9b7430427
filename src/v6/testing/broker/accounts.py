"""The fake gateway's account state: which accounts exist, their values and their positions.

One small, immutable description that every handler reads, instead of literals scattered through
the gateway. Replace it on a running gateway with ``gateway.account_state = AccountState(...)``;
later requests see the new state.

Example::

    state = AccountState(
        accounts=("DU111", "DU222"),
        positions=(Position("DU111", "AAPL", 100, 150.0, con_id=265598),),
        values={"DU222": (AccountValue("NetLiquidation", "2500.00"),)},
    )
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from v6.errors import ConfigError
from v6.protocol.codec import ContractSpec

DEFAULT_ACCOUNTS: Final[tuple[str, ...]] = ("DU1234567",)
"""Accounts a gateway reports when none are configured (a paper-trading style code)."""

DEFAULT_CURRENCY: Final = "USD"

_ACCOUNT_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,32}")


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One account value (``key`` is also the account-summary tag)."""

    key: str
    value: str
    currency: str = DEFAULT_CURRENCY


DEFAULT_ACCOUNT_VALUES: Final[tuple[AccountValue, ...]] = (
    AccountValue("AccountType", "INDIVIDUAL", ""),
    AccountValue("NetLiquidation", "100000.00"),
    AccountValue("TotalCashValue", "100000.00"),
    AccountValue("SettledCash", "100000.00"),
    AccountValue("BuyingPower", "400000.00"),
    AccountValue("EquityWithLoanValue", "100000.00"),
    AccountValue("GrossPositionValue", "0.00"),
    AccountValue("InitMarginReq", "0.00"),
    AccountValue("MaintMarginReq", "0.00"),
    AccountValue("AvailableFunds", "100000.00"),
    AccountValue("ExcessLiquidity", "100000.00"),
)
"""Values every account has unless ``AccountState.values`` overrides them for that account."""


@dataclass(frozen=True, slots=True)
class Position:
    """A position held in ``account``. ``avg_cost`` is per unit times multiplier, as IB reports."""

    account: str
    symbol: str
    quantity: float
    avg_cost: float
    market_price: float | None = None
    """Defaults to the per-unit average cost (no unrealized P&L)."""
    con_id: int = 0
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = DEFAULT_CURRENCY
    multiplier: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    realized_pnl: float = 0.0

    @property
    def contract(self) -> ContractSpec:
        return ContractSpec(
            con_id=self.con_id,
            symbol=self.symbol,
            sec_type=self.sec_type,
            last_trade_date=self.last_trade_date,
            strike=self.strike,
            right=self.right,
            multiplier=self.multiplier,
            exchange=self.exchange,
            primary_exchange=self.primary_exchange,
            currency=self.currency,
            local_symbol=self.local_symbol or self.symbol,
            trading_class=self.trading_class,
        )

    @property
    def price(self) -> float:
        """Market price per unit."""
        if self.market_price is not None:
            return self.market_price
        return self.avg_cost / self._factor

    @property
    def market_value(self) -> float:
        return self.quantity * self.price * self._factor

    @property
    def unrealized_pnl(self) -> float:
        return self.market_value - self.quantity * self.avg_cost

    @property
    def _factor(self) -> float:
        return float(self.multiplier) if self.multiplier else 1.0


@dataclass(frozen=True, slots=True)
class AccountState:
    """Accounts, their values and positions, as the fake gateway reports them.

    Raises :class:`~v6.errors.ConfigError` when an account code is empty, duplicated or not
    ``[A-Za-z0-9._-]{1,32}``, or a position or value set names an unknown account.
    """

    accounts: tuple[str, ...] = DEFAULT_ACCOUNTS
    positions: tuple[Position, ...] = ()
    values: Mapping[str, tuple[AccountValue, ...]] = field(default_factory=dict)
    """Per-account override of :data:`DEFAULT_ACCOUNT_VALUES`."""

    def __post_init__(self) -> None:
        accounts = tuple(self.accounts)
        object.__setattr__(self, "accounts", accounts)
        object.__setattr__(self, "positions", tuple(self.positions))
        if not accounts:
            raise ConfigError("accounts: at least one account is required")
        for account in accounts:
            if not isinstance(account, str) or not _ACCOUNT_RE.fullmatch(account):
                raise ConfigError(
                    f"accounts: {account!r} is not 1..32 characters of [A-Za-z0-9._-]"
                )
        if len(set(accounts)) != len(accounts):
            raise ConfigError(f"accounts: duplicates in {accounts!r}")
        for position in self.positions:
            if position.account not in accounts:
                raise ConfigError(
                    f"positions: account {position.account!r} is not one of {accounts!r}"
                )
        for account in self.values:
            if account not in accounts:
                raise ConfigError(f"values: account {account!r} is not one of {accounts!r}")

    @classmethod
    def with_accounts(cls, accounts: Iterable[str]) -> AccountState:
        """Default values, no positions, for ``accounts``."""
        return cls(accounts=tuple(accounts))

    def values_for(self, account: str) -> tuple[AccountValue, ...]:
        return self.values.get(account, DEFAULT_ACCOUNT_VALUES)

    def positions_for(self, account: str) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if p.account == account)
