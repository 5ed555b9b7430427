"""The facts of :mod:`v6.protocol.pacing` the gateway relies on, and the farm notice texts."""

from __future__ import annotations

import pytest

from v6.protocol import codec
from v6.protocol.codes import FARM_CODES, SYSTEM_MESSAGES, farm_notice
from v6.protocol.pacing import bar_seconds, historical_query


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5 secs", 5.0), ("1 secs", 1.0), ("30 secs", 30.0), ("1 min", 60.0), ("15 mins", 900.0),
     ("1 hour", 3600.0), ("1 day", 86_400.0), ("0 secs", None), ("x", None), ("5 parsecs", None),
     ("\u0665 secs", None)],  # an Arabic-Indic five: int() takes it, TWS does not
)  # fmt: skip
def test_bar_seconds(text: str, seconds: float | None) -> None:
    assert bar_seconds(text) == seconds


def test_historical_query_identifies_the_contract_by_con_id_else_by_its_fields() -> None:
    aapl = codec.ContractSpec(265598, "AAPL", "STK", exchange="SMART", currency="USD")
    request = codec.ReqHistoricalData(1, aapl, "", "5 secs", "30 S", True, "BID_ASK", 1, True)
    q = historical_query(request)
    assert (q.contract, q.exchange, q.what_to_show, q.weight) == ("265598", "SMART", "BID_ASK", 2)
    assert q.counts_as_identical()
    assert q.counts_toward_window()
    assert q.keep_up_to_date
    unqualified = codec.ContractSpec(0, "EUR", "CASH", exchange="IDEALPRO", currency="USD")
    request = codec.ReqHistoricalData(1, unqualified, "", "1 min", "1 D", False, "MIDPOINT", 1)
    q = historical_query(request)
    assert q.contract == "EUR/CASH//0.0//USD"
    assert not q.counts_as_identical()
    assert not q.counts_toward_window()


def test_farm_notices_say_what_tws_says() -> None:
    for code, (kind, ok) in FARM_CODES.items():
        farm = SYSTEM_MESSAGES[code].rsplit(":", 1)[1]
        assert farm_notice(kind, farm, ok) == (code, SYSTEM_MESSAGES[code])
    assert farm_notice("market_data", "eufarm", False) == (
        2103, "Market data farm connection is broken:eufarm",
    )  # fmt: skip
