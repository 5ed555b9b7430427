"""Server messages: exact field layouts, as ibapi and ib_async decode them."""

from __future__ import annotations

import struct

from v6.protocol import codec
from v6.protocol.codec import (
    Bar,
    ContractSpec,
)


def fields_of(data: bytes) -> list[str]:
    """Decode exactly one framed message into its fields."""
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    assert data.endswith(b"\0")
    return data[4:-1].decode().split("\0")


# ---------------------------------------------------------------------------------- server messages


def test_error_message_field_count_depends_on_version() -> None:
    assert fields_of(codec.error_message(178, -1, 2104, "ok")) == ["4", "2", "-1", "2104", "ok", ""]
    assert fields_of(codec.error_message(166, -1, 2104, "ok")) == ["4", "2", "-1", "2104", "ok", ""]
    # ibapi 9.81 at version 157: error(reqId, code, text) -> exactly 5 fields
    assert fields_of(codec.error_message(157, 3, 322, "max")) == ["4", "2", "3", "322", "max"]


def test_startup_message_layouts() -> None:
    assert fields_of(codec.managed_accounts(["DU1", "DU2"])) == ["15", "1", "DU1,DU2"]
    assert fields_of(codec.next_valid_id(1)) == ["9", "1", "1"]
    assert fields_of(codec.current_time(1795518499)) == ["49", "1", "1795518499"]
    assert fields_of(codec.position_end()) == ["62", "1"]
    assert fields_of(codec.open_order_end()) == ["53", "1"]
    assert fields_of(codec.completed_orders_end()) == ["102"]
    assert fields_of(codec.account_value("NetLiquidation", "1.00", "USD", "DU1")) == [
        "6", "2", "NetLiquidation", "1.00", "USD", "DU1",
    ]  # fmt: skip
    assert fields_of(codec.account_update_time("11:08")) == ["8", "1", "11:08"]
    assert fields_of(codec.account_download_end("DU1")) == ["54", "1", "DU1"]
    assert len(fields_of(codec.account_update_multi(1, "DU1", "", "k", "v", "USD"))) == 8
    assert fields_of(codec.account_update_multi_end(1)) == ["74", "1", "1"]
    assert fields_of(codec.exec_details_end(2)) == ["55", "1", "2"]
    assert fields_of(codec.account_summary(1, "DU1", "T", "V", "USD")) == [
        "63", "1", "1", "DU1", "T", "V", "USD",
    ]  # fmt: skip
    assert fields_of(codec.account_summary_end(1)) == ["64", "1", "1"]


AAPL = ContractSpec(265598, "AAPL", "STK", exchange="NASDAQ", primary_exchange="NASDAQ",
                    currency="USD", local_symbol="AAPL", trading_class="NMS")  # fmt: skip


def test_position_has_exactly_16_fields() -> None:
    f = fields_of(codec.position_data("DU1", AAPL, 100.0, 150.5))
    assert len(f) == 16
    assert f[:6] == ["61", "3", "DU1", "265598", "AAPL", "STK"]
    assert f[10] == "NASDAQ"  # exchange, not primary exchange
    assert f[-2:] == ["100.0", "150.5"]


def test_portfolio_value_has_exactly_20_fields() -> None:
    f = fields_of(codec.portfolio_value("DU1", AAPL, 100.0, 151.0, 15100.0, 150.5, 50.0, 0.0))
    assert len(f) == 20
    assert f[:2] == ["7", "8"]
    assert f[9] == "NASDAQ"  # primary exchange
    assert f[-1] == "DU1"


def test_ticks_have_exact_field_counts() -> None:
    assert fields_of(codec.tick_price(5, 1, 101.25, 300)) == [
        "1",
        "6",
        "5",
        "1",
        "101.25",
        "300",
        "0",
    ]
    assert fields_of(codec.tick_size(5, 8, 1200)) == ["2", "6", "5", "8", "1200"]


def test_historical_data_layout() -> None:
    bars = [
        Bar("20261124 11:08:00 UTC", 1.0, 2.0, 0.5, 1.5, 100, 1.25, 7),
        Bar("20261124 11:08:05 UTC", 1.5, 2.5, 1.0, 2.0, 200, 1.75, 8),
    ]
    f = fields_of(codec.historical_data(3, "s", "e", bars))
    assert f[:5] == ["17", "3", "s", "e", "2"]
    assert len(f) == 5 + 8 * 2
    assert f[5:13] == ["20261124 11:08:00 UTC", "1.0", "2.0", "0.5", "1.5", "100", "1.25", "7"]
