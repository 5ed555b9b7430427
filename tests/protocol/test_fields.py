"""The one field reader: the same rules for every request, order requests failing by order id."""

from __future__ import annotations

import math

import pytest

from v6.errors import MalformedOrder, MalformedRequest
from v6.protocol.codec import ClientMessage, ContractSpec
from v6.protocol.fields import UNSET_TEXTS, Fields


def reader(*texts: str, for_order: bool = False) -> Fields:
    return Fields(("8", *texts), ClientMessage.REQ_IDS, for_order=for_order)


@pytest.mark.parametrize("text", sorted(UNSET_TEXTS))
def test_empty_and_tws_sentinels_are_unset(text: str) -> None:
    assert reader(text).optional_integer() is None
    assert reader(text).optional_number() is None
    assert reader(text).integer() == 0
    assert reader(text).number() == 0.0
    assert reader(text).flag() is False
    with pytest.raises(MalformedRequest, match="field 1 is required"):
        reader(text).required_integer()


def test_infinity_is_a_number_but_not_a_required_one() -> None:
    assert reader("Infinite").optional_number() == math.inf
    with pytest.raises(MalformedRequest, match="field 1 is required and finite"):
        reader("Infinite").required_number()


def test_plain_numbers() -> None:
    f = reader("-7", "1234567890123456789", "150.25", "-.5", "1e-05", "3.")
    assert (f.integer(), f.integer()) == (-7, 1234567890123456789)
    assert [f.number() for _ in range(4)] == [150.25, -0.5, 1e-05, 3.0]
    f.end()


@pytest.mark.parametrize(
    "text", ["\u0661", " 5", "5 ", "+5", "1_0", "0x10", "1.5", "12345678901234567890"]
)
def test_ints_are_ascii_decimal_only(text: str) -> None:
    with pytest.raises(MalformedRequest, match="reqIds: field 1 not an int"):
        reader(text).integer()


@pytest.mark.parametrize("text", ["\u0661.5", "nan", "inf", "1_000", "0x10", " 5", "1e5000", "--1"])
def test_numbers_are_plain_decimals_only(text: str) -> None:
    with pytest.raises(MalformedRequest, match="reqIds: field 1 not a number"):
        reader(text).number()


def test_a_missing_field_and_a_field_too_many_are_malformed() -> None:
    f = reader("1")
    f.skip()
    with pytest.raises(MalformedRequest, match=r"reqIds: field 2 missing \(message has 2 fields\)"):
        f.text()
    f = reader("1", "extra")
    f.integer()
    with pytest.raises(MalformedRequest, match="reqIds: 3 fields, expected 2"):
        f.end()
    assert not reader().more()


def test_only_order_messages_fail_as_malformed_orders_carrying_the_order_id() -> None:
    with pytest.raises(MalformedRequest) as plain:
        reader("x").integer()
    assert not isinstance(plain.value, MalformedOrder)
    with pytest.raises(MalformedOrder) as before_the_id:
        reader("x", for_order=True).read_order_id()
    assert before_the_id.value.order_id is None
    f = reader("7", "x", for_order=True)
    assert f.read_order_id() == 7
    with pytest.raises(MalformedOrder) as after_the_id:
        f.number()
    assert after_the_id.value.order_id == 7


def test_contract_reads_twelve_fields_and_an_unset_strike_as_zero() -> None:
    f = reader("265598", "AAPL", "OPT", "20240119", "", "C", "100", "SMART", "", "USD", "", "")
    assert f.contract() == ContractSpec(
        con_id=265598, symbol="AAPL", sec_type="OPT", last_trade_date="20240119", right="C",
        multiplier="100", exchange="SMART", currency="USD",
    )  # fmt: skip
    f.end()
