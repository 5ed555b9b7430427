"""Client requests: the registry and each parser, on the bytes ib_async and ibapi send."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

import pytest

import v6.protocol
from v6.errors import MalformedOrder
from v6.protocol import codec, requests
from v6.protocol.codec import (
    ClientMessage,
    ContractSpec,
    MalformedRequest,
    Message,
)
from v6.protocol.fields import CancelRequest, ClientRequest

# ----------------------------------------------------------------------------------------- requests


def request(*fields: object) -> Message:
    payload = codec.encode_fields(*fields)
    decoded = codec.decode_fields(payload)
    return Message(int(decoded[0]), decoded)


IB_ASYNC_CONTRACT = ("265598", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "")


def test_parse_start_api() -> None:
    assert codec.parse_request(request(71, 2, 12, "")) == codec.StartApi(12, "")
    assert codec.parse_request(request(71, 2, 3)) == codec.StartApi(3, "")


def test_parse_sync_requests_as_ib_async_sends_them() -> None:
    assert codec.parse_request(request(61, 1)) == codec.ReqPositions()
    assert codec.parse_request(request(5, 1)) == codec.ReqOpenOrders(all_clients=False)
    assert codec.parse_request(request(99, 0)) == codec.ReqCompletedOrders(api_only=False)
    assert codec.parse_request(request(6, 2, 1, "DU1")) == codec.ReqAccountUpdates(True, "DU1")
    assert codec.parse_request(request(76, 1, 4, "DU1", "", 0)) == codec.ReqAccountUpdatesMulti(
        4, "DU1", "", False
    )
    assert codec.parse_request(request(7, 3, 9, 0, "", "", "", "", "", "")) == codec.ReqExecutions(
        9, codec.ExecutionFilter()
    )


def test_parse_account_summary() -> None:
    msg = request(62, 1, 5, "All", "NetLiquidation,BuyingPower")
    assert codec.parse_request(msg) == codec.ReqAccountSummary(
        5, "All", ("NetLiquidation", "BuyingPower")
    )
    assert codec.parse_request(request(63, 1, 5)) == codec.CancelAccountSummary(5)


def test_parse_mkt_data_ib_async_layout() -> None:
    msg = request(1, 11, 7, *IB_ASYNC_CONTRACT, 0, "", 0, 0, "")
    parsed = codec.parse_request(msg)
    assert isinstance(parsed, codec.ReqMktData)
    assert parsed.req_id == 7
    assert parsed.contract.con_id == 265598
    assert parsed.contract.symbol == "AAPL"
    assert parsed.contract.exchange == "SMART"
    assert parsed.snapshot is False


def test_parse_mkt_data_skips_bag_legs_and_delta_neutral() -> None:
    contract = ("0", "SPY", "BAG", "", "0.0", "", "", "SMART", "", "USD", "", "")
    msg = request(1, 11, 3, *contract, 2, 1, 1, "BUY", "SMART", 2, 1, "SELL", "SMART",
                  1, 5, 0.5, 100.0, "233", 1, 0, "")  # fmt: skip
    parsed = codec.parse_request(msg)
    assert isinstance(parsed, codec.ReqMktData)
    assert (parsed.generic_ticks, parsed.snapshot) == ("233", True)


def test_parse_historical_data_ib_async_layout() -> None:
    contract = ("0", "EURUSD", "CASH", "", "0.0", "", "", "IDEALPRO", "", "USD", "", "")
    msg = request(20, 4, *contract, 0, "", "5 secs", "30 S", 0, "MIDPOINT", 1, 0, "")
    assert codec.parse_request(msg) == codec.ReqHistoricalData(
        4,
        ContractSpec(symbol="EURUSD", sec_type="CASH", exchange="IDEALPRO", currency="USD"),
        "",
        "5 secs",
        "30 S",
        False,
        "MIDPOINT",
        1,
        False,
    )


def test_parse_unknown_and_unsupported_ids_give_none() -> None:
    assert codec.parse_request(request(999, 1)) is None
    assert codec.parse_request(request(ClientMessage.REQ_MKT_DEPTH, 5, 1)) is None


def test_a_truncated_place_order_is_malformed_with_its_order_id() -> None:
    with pytest.raises(MalformedOrder) as caught:
        codec.parse_request(request(ClientMessage.PLACE_ORDER, 7))
    assert caught.value.order_id == 7


@pytest.mark.parametrize(
    "msg",
    [request(71, 2), request(71, 2, "x"), request(62, 1, 5), request(8, 1, "many")],
)
def test_parse_malformed_requests(msg: Message) -> None:
    with pytest.raises(MalformedRequest):
        codec.parse_request(msg)


def test_every_request_type_in_the_package_is_registered() -> None:
    """A request type left out of the Request union would never be parsed."""
    defined = set()
    for module_info in pkgutil.iter_modules(v6.protocol.__path__):
        module = importlib.import_module(f"v6.protocol.{module_info.name}")
        defined |= {
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, ClientRequest)
        }
    bases = {cls for cls in defined if not hasattr(cls, "msg_ids")}
    assert bases == {ClientRequest, CancelRequest}
    assert defined - bases == set(requests.REGISTERED)


def test_every_registered_request_parses_its_own_minimal_message() -> None:
    """Each registered id decodes to its registered type (zeros for every field)."""
    whole = {ClientMessage.PLACE_ORDER, ClientMessage.CANCEL_ORDER, ClientMessage.REQ_EXECUTIONS,
             ClientMessage.REQ_GLOBAL_CANCEL}  # fmt: skip  # exact field counts: test_orders_codec
    for msg_id, request_type in requests._PARSERS.items():
        if msg_id in whole:
            continue
        parsed = codec.parse_request(Message(msg_id, (str(msg_id), *("0" * 40))))
        assert type(parsed) is request_type


def test_registering_an_id_twice_is_refused() -> None:
    @dataclass(frozen=True)
    class Again(ClientRequest):
        msg_ids = (ClientMessage.REQ_IDS,)

    with pytest.raises(RuntimeError, match="registered twice: ReqIds, Again"):
        requests.index_by_message_id([codec.ReqIds, Again])


@pytest.mark.parametrize("value", ["\u0661", "\u00b2", " 5", "1_0", "5 ", "+5", "0x10"])
def test_integer_fields_are_ascii_decimal_only(value: str) -> None:
    with pytest.raises(MalformedRequest):
        codec.parse_request(request(ClientMessage.REQ_IDS, 1, value))


@pytest.mark.parametrize("value", ["\u0661.5", "\u00b2"])
def test_number_fields_are_ascii_only(value: str) -> None:
    contract = ("0", "X", "STK", "", value, "", "", "SMART", "", "USD", "", "")
    with pytest.raises(MalformedRequest):
        codec.parse_request(request(1, 11, 7, *contract, 0, "", 0, 0, ""))


def test_negative_integers_still_parse() -> None:
    assert codec.parse_request(request(ClientMessage.REQ_IDS, 1, -1)) == codec.ReqIds(-1)


def test_parse_realtime_bars_as_both_clients_send_them() -> None:
    ib_async = request(50, 3, 4, *IB_ASYNC_CONTRACT, 5, "TRADES", 0, "")
    ibapi = request(50, 3, 4, "265598", "AAPL", "STK", "", "", "", "", "SMART", "", "USD", "",
                    "", 5, "MIDPOINT", 1, "")  # fmt: skip
    parsed = codec.parse_request(ib_async)
    assert isinstance(parsed, codec.ReqRealTimeBars)
    assert (parsed.req_id, parsed.contract.con_id, parsed.bar_size, parsed.what_to_show) == (
        4, 265598, 5, "TRADES",
    )  # fmt: skip
    assert codec.parse_request(ibapi) == codec.ReqRealTimeBars(
        4, parsed.contract, 5, "MIDPOINT", True
    )
    assert codec.parse_request(request(51, 1, 4)) == codec.CancelRealTimeBars(4)


def test_parse_live_data_requests_as_both_clients_send_them() -> None:
    tick = codec.parse_request(request(97, 8, *IB_ASYNC_CONTRACT, "BidAsk", 0, 0))
    assert isinstance(tick, codec.ReqTickByTickData)
    assert (tick.req_id, tick.contract.con_id, tick.tick_type) == (8, 265598, "BidAsk")
    assert codec.parse_request(request(98, 8)) == codec.CancelTickByTickData(8)
    assert codec.parse_request(request(92, 3, "DU1", "")) == codec.ReqPnL(3, "DU1", "")
    assert codec.parse_request(request(93, 3)) == codec.CancelPnL(3)
    assert codec.parse_request(request(94, 4, "DU1", "", 265598)) == codec.ReqPnLSingle(
        4, "DU1", "", 265598
    )
    assert codec.parse_request(request(95, 4)) == codec.CancelPnLSingle(4)
    details = codec.parse_request(request(9, 8, 5, *IB_ASYNC_CONTRACT, 0, "", "", ""))
    assert isinstance(details, codec.ReqContractDetails)
    assert (details.req_id, details.contract.symbol) == (5, "AAPL")
