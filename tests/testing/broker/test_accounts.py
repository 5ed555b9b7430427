"""The configured account state: its checks and the figures a position derives."""

from __future__ import annotations

import pytest

from v6.errors import ConfigError
from v6.testing.broker import AccountState, AccountValue, Position


def test_account_state_validates_positions_and_values() -> None:
    with pytest.raises(ConfigError, match="positions"):
        AccountState(accounts=("DU1",), positions=(Position("DU2", "AAPL", 1, 1.0),))
    with pytest.raises(ConfigError, match="values"):
        AccountState(accounts=("DU1",), values={"DU2": (AccountValue("NetLiquidation", "1"),)})


def test_position_derived_figures() -> None:
    option = Position("DU1", "SPY", 2, 150.0, market_price=2.0, multiplier="100", sec_type="OPT")
    assert option.market_value == 400.0
    assert option.unrealized_pnl == 100.0
    assert Position("DU1", "AAPL", 10, 50.0).price == 50.0
    assert Position("DU1", "AAPL", 10, 50.0).contract.local_symbol == "AAPL"
