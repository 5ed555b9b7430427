"""Order codec, both directions, checked against the two real clients (no sockets).

Requests: the exact bytes ``ibapi`` (ibapi-stable) and ``ib_async`` write for an order are
captured from their own ``placeOrder`` / ``cancelOrder`` / ``reqExecutions`` and parsed.
Messages: every encoded message is decoded by ``ibapi``'s ``Decoder`` (which must consume every
field, no more, no less) and by ``ib_async``'s ``Decoder``; the decoded objects must carry what
was encoded and neither client may log an error."""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import ib_async
import pytest
from ib_async.client import Client as IbAsyncClient
from ib_async.decoder import Decoder as IbAsyncDecoder
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.decoder import Decoder as IbapiDecoder
from ibapi.execution import ExecutionFilter as IbapiExecutionFilter
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel
from ibapi.wrapper import EWrapper

from v6.errors import MalformedOrder, MalformedRequest
from v6.protocol.codec import ContractSpec, Message, Request, parse_request
from v6.protocol.orders_messages import (
    CommissionSpec,
    ExecutionSpec,
    OrderSpec,
    OrderStatusSpec,
    commission_report,
    completed_order,
    exec_details,
    open_order,
    order_bound,
    order_status,
    time_text,
)
from v6.protocol.orders_requests import (
    CancelOrder,
    ExecutionFilter,
    PlaceOrder,
    ReqExecutions,
    ReqGlobalCancel,
)

UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
AAPL = ContractSpec(con_id=265598, symbol="AAPL", sec_type="STK", exchange="SMART", currency="USD")


# --------------------------------------------------------------------------------------------------
# Capturing what each client writes


class _Conn:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def isConnected(self) -> bool:
        return True

    def sendMsg(self, msg: bytes) -> None:
        self.sent.append(msg)


def ibapi_client(server_version: int = 178) -> tuple[EClient, _Conn]:
    client = EClient(EWrapper())
    conn = _Conn()
    client.conn, client.serverVersion_, client.connState = conn, server_version, EClient.CONNECTED
    return client, conn


def frame_fields(frame: bytes) -> tuple[str, ...]:
    (size,) = struct.unpack(">I", frame[:4])
    assert size == len(frame) - 4
    payload = frame[4:]
    assert payload.endswith(b"\0")
    return tuple(payload[:-1].decode().split("\0"))


class _IbAsyncCapture(IbAsyncClient):  # type: ignore[misc]
    def __init__(self, server_version: int) -> None:
        super().__init__(None)
        self.version = server_version
        self.sent: list[str] = []

    def isConnected(self) -> bool:
        return True

    def serverVersion(self) -> int:
        return self.version

    def sendMsg(self, msg: str) -> None:
        self.sent.append(msg)


def ib_async_fields(msg: str) -> tuple[str, ...]:
    assert msg.endswith("\0")
    return tuple(msg[:-1].split("\0"))


ORDERS = [  # (order type, action, tif, limit, stop)
    ("MKT", "BUY", "DAY", None, None),
    ("LMT", "SELL", "GTC", 150.25, None),
    ("STP", "SELL", "DAY", None, 140.5),
    ("LMT", "BUY", "DAY", 99.99, None),
    ("STP", "BUY", "GTC", None, 201.0),
]


def ibapi_order(
    order_type: str, action: str, tif: str, lmt: float | None, aux: float | None
) -> Order:
    order = Order()
    order.action, order.totalQuantity, order.orderType, order.tif = action, 100, order_type, tif
    order.lmtPrice = UNSET_DOUBLE if lmt is None else lmt
    order.auxPrice = UNSET_DOUBLE if aux is None else aux
    order.orderRef, order.account, order.transmit = "ref-7", "DU111", False
    return order


def ibapi_contract() -> Contract:
    c = Contract()
    c.conId, c.symbol, c.secType, c.exchange, c.currency = 265598, "AAPL", "STK", "SMART", "USD"
    return c


def ib_async_order(
    order_type: str, action: str, tif: str, lmt: float | None, aux: float | None
) -> ib_async.Order:
    return ib_async.Order(
        action=action, totalQuantity=100, orderType=order_type, tif=tif,
        lmtPrice=UNSET_DOUBLE if lmt is None else lmt,
        auxPrice=UNSET_DOUBLE if aux is None else aux,
        orderRef="ref-7", account="DU111", transmit=False,
    )  # fmt: skip


def ib_async_contract() -> ib_async.Contract:
    return ib_async.Stock("AAPL", "SMART", "USD", conId=265598)


def capture_place_orders(server_version: int) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
    """(fields written, order parameters) for every order in ORDERS, by both clients."""
    captured = []
    client, conn = ibapi_client(server_version)
    ia = _IbAsyncCapture(server_version)
    for order_id, params in enumerate(ORDERS, start=11):
        client.placeOrder(order_id, ibapi_contract(), ibapi_order(*params))
        ia.placeOrder(order_id, ib_async_contract(), ib_async_order(*params))
        captured.append((frame_fields(conn.sent[-1]), params))
        captured.append((ib_async_fields(ia.sent[-1]), params))
    return captured


# --------------------------------------------------------------------------------------------------
# Requests


def parse(fields: tuple[str, ...], server_version: int = 178) -> Request | None:
    """The request in ``fields``, read as the gateway reads every request."""
    return parse_request(Message(int(fields[0]), fields), server_version)


def parse_place_order(fields: tuple[str, ...], server_version: int = 178) -> PlaceOrder:
    parsed = parse(fields, server_version)
    assert isinstance(parsed, PlaceOrder)
    return parsed


@pytest.mark.parametrize("server_version", [178, 170, 157])
def test_place_order_written_by_both_clients_parses_field_by_field(server_version: int) -> None:
    captured = capture_place_orders(server_version)
    assert len(captured) == 2 * len(ORDERS)
    for order_id, (fields, (order_type, action, tif, lmt, aux)) in enumerate(captured, start=22):
        parsed = parse_place_order(fields, server_version)
        assert parsed.order_id == order_id // 2
        assert parsed.contract.con_id == 265598
        assert (parsed.contract.symbol, parsed.contract.sec_type) == ("AAPL", "STK")
        assert (parsed.contract.exchange, parsed.contract.currency) == ("SMART", "USD")
        assert (parsed.action, parsed.total_quantity, parsed.order_type) == (
            action,
            100,
            order_type,
        )
        assert (parsed.lmt_price, parsed.aux_price, parsed.tif) == (lmt, aux, tif)
        assert (parsed.order_ref, parsed.account, parsed.transmit) == ("ref-7", "DU111", False)
        assert (parsed.parent_id, parsed.outside_rth, parsed.what_if) == (0, False, False)


def test_place_order_parser_is_registered_and_needs_the_right_version() -> None:
    fields, _ = capture_place_orders(157)[0]
    with pytest.raises(MalformedOrder) as caught:
        parse(fields)  # a version-157 order read as 178: fields missing
    assert caught.value.order_id == 11
    with pytest.raises(ValueError, match="server_version"):
        parse(fields, 144)


# What ibapi-stable writes for one order at server version 178 (issue 12: a fixed byte string).
# fmt: off
IBAPI_LMT_ORDER = (
    "3,7,265598,AAPL,STK,,,,,SMART,,USD,,,,,BUY,100,LMT,150.25,,GTC,,DU111,,0,ref-1,0,0,0,0,0"
    ",0,0,0,,0,,,,,,,0,,-1,0,,,0,,,0,0,,0,,,,,,0,,,,,0,,,,,,,,,,,0,,,0,0,,,0,,0,0,0,0,,1.7976"
    "931348623157e+308,1.7976931348623157e+308,1.7976931348623157e+308,1.7976931348623157e+30"
    "8,1.7976931348623157e+308,0,,,,1.7976931348623157e+308,,,,,0,0,0,,2147483647,2147483647,"
    "0,,"
).replace(",", "\0").encode() + b"\0"
# fmt: on


def test_ibapi_place_order_bytes_are_fixed() -> None:
    client, conn = ibapi_client()
    contract = ibapi_contract()
    order = ibapi_order("LMT", "BUY", "GTC", 150.25, None)
    order.orderRef = "ref-1"
    client.placeOrder(7, contract, order)
    (sent,) = conn.sent
    assert sent == struct.pack(">I", len(IBAPI_LMT_ORDER)) + IBAPI_LMT_ORDER
    fields = frame_fields(sent)
    assert len(fields) == 114
    parsed = parse_place_order(fields)
    assert parsed == PlaceOrder(
        order_id=7, contract=AAPL, action="BUY", total_quantity=100.0, order_type="LMT",
        lmt_price=150.25, tif="GTC", account="DU111", order_ref="ref-1", transmit=False,
        display_size=0,
    )  # fmt: skip


def test_cancel_global_cancel_and_executions_from_both_clients() -> None:
    client, conn = ibapi_client()
    ia = _IbAsyncCapture(178)
    client.cancelOrder(7, OrderCancel())
    ia.cancelOrder(7)
    f = IbapiExecutionFilter()
    f.clientId, f.acctCode, f.time, f.symbol = 3, "DU111", "20240102 09:30:00", "AAPL"
    f.secType, f.exchange, f.side = "STK", "SMART", "BUY"
    client.reqExecutions(5, f)
    ia.reqExecutions(
        5,
        ib_async.ExecutionFilter(3, "DU111", "20240102 09:30:00", "AAPL", "STK", "SMART", "BUY"),
    )
    client.reqGlobalCancel(OrderCancel())
    ia.reqGlobalCancel()
    written = [frame_fields(m) for m in conn.sent] + [ib_async_fields(m) for m in ia.sent]
    parsed = [parse(fields) for fields in written]
    expected_filter = ExecutionFilter(
        3, "DU111", "20240102 09:30:00", "AAPL", "STK", "SMART", "BUY"
    )
    expected = [CancelOrder(7), ReqExecutions(5, expected_filter), ReqGlobalCancel()]
    assert parsed == expected * 2


@pytest.mark.parametrize(
    ("fields", "order_id"),
    [
        (("3", "7", "265598", "AAPL"), 7),  # far too short
        (("3",), None),  # no order id at all
        (("3", "x7"), None),  # order id not a number
    ],
)
def test_malformed_place_order_names_the_order_id_when_readable(
    fields: tuple[str, ...], order_id: int | None
) -> None:
    with pytest.raises(MalformedOrder) as caught:
        parse_place_order(fields)
    assert caught.value.order_id == order_id
    assert isinstance(caught.value, MalformedRequest)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("quantity", ["abc", "1_000", "nan", "", "1.7976931348623157E308", "0x10"])
def test_non_numeric_or_missing_quantity_is_malformed_with_order_id(quantity: str) -> None:
    fields = list(capture_place_orders(178)[0][0])
    assert fields[17] == "100"  # totalQuantity
    fields[17] = quantity
    with pytest.raises(MalformedOrder, match="field 17") as caught:
        parse_place_order(tuple(fields))
    assert caught.value.order_id == 11


def test_extra_field_and_bad_number_in_a_skipped_group_are_malformed() -> None:
    fields = capture_place_orders(178)[1][0]
    with pytest.raises(MalformedOrder, match="115 fields, expected 114"):
        parse_place_order((*fields, ""))
    bad = list(fields)
    bad[45] = "minus one"  # exemptCode: skipped, but still checked
    with pytest.raises(MalformedOrder, match="not an int"):
        parse_place_order(tuple(bad))


def test_unset_sentinels_and_infinity_map_to_none_and_inf() -> None:
    fields = list(capture_place_orders(178)[1][0])
    fields[19] = "1.7976931348623157E308"  # lmtPrice written as TWS's unset text
    fields[20] = "Infinite"
    parsed = parse_place_order(tuple(fields))
    assert parsed.lmt_price is None
    assert parsed.aux_price == math.inf


@pytest.mark.parametrize(
    "fields",
    [
        ("4", "1"),
        ("4", "1", "7", "", "extra"),
        ("7", "3", "5"),
        ("58",),
        ("7", "3", "x", *[""] * 7),
    ],
)
def test_malformed_small_requests(fields: tuple[str, ...]) -> None:
    with pytest.raises(MalformedRequest):
        parse(fields)


# --------------------------------------------------------------------------------------------------
# Messages, decoded by both clients


class IbapiRecorder(EWrapper):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def openOrder(self, *args: Any) -> None:
        self.calls.append(("openOrder", args))

    def orderStatus(self, *args: Any) -> None:
        self.calls.append(("orderStatus", args))

    def execDetails(self, *args: Any) -> None:
        self.calls.append(("execDetails", args))

    def commissionAndFeesReport(self, *args: Any) -> None:
        self.calls.append(("commissionReport", args))

    def completedOrder(self, *args: Any) -> None:
        self.calls.append(("completedOrder", args))

    def orderBound(self, *args: Any) -> None:
        self.calls.append(("orderBound", args))

    def error(self, *args: Any) -> None:
        self.calls.append(("error", args))


def ibapi_decode(message: bytes) -> tuple[str, tuple[Any, ...]]:
    """Decode with ibapi at 178; every field must be consumed, exactly."""
    fields = tuple(f.encode() for f in frame_fields(message))
    recorder = IbapiRecorder()
    decoder = IbapiDecoder(recorder, 178)
    remaining: Iterator[bytes] = iter(fields[1:])
    decoder.msgId2handleInfo[int(fields[0])].processMeth(decoder, remaining)
    assert list(remaining) == [], "ibapi left fields unread"
    (call,) = recorder.calls
    return call


class IbAsyncRecorder:
    """The attributes ib_async's Decoder touches on its wrapper."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ib = type("IB", (), {"TimezoneTWS": None})()
        self.defaultTimezone = UTC

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def ib_async_decode(
    message: bytes, caplog: pytest.LogCaptureFixture
) -> tuple[str, tuple[Any, ...]]:
    recorder = IbAsyncRecorder()
    with caplog.at_level(logging.DEBUG, logger="ib_async"):
        IbAsyncDecoder(recorder, 178).interpret(list(frame_fields(message)))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    (call,) = recorder.calls
    return call


LMT = OrderSpec(
    order_id=7, client_id=3, perm_id=123456789, contract=AAPL, action="BUY", total_quantity=100,
    order_type="LMT", lmt_price=150.25, tif="GTC", account="DU111", order_ref="ref-7",
    outside_rth=True, parent_id=5,
)  # fmt: skip
STP = OrderSpec(
    order_id=8, client_id=0, perm_id=42, contract=AAPL, action="SELL", total_quantity=2.5,
    order_type="STP", aux_price=140.5,
)  # fmt: skip


def check_order(order: Any, contract: Any, spec: OrderSpec) -> None:
    assert (contract.conId, contract.symbol, contract.secType) == (265598, "AAPL", "STK")
    assert (contract.exchange, contract.currency) == ("SMART", "USD")
    assert (order.action, float(order.totalQuantity), order.orderType) == (
        spec.action, spec.total_quantity, spec.order_type,
    )  # fmt: skip
    for decoded, encoded in ((order.lmtPrice, spec.lmt_price), (order.auxPrice, spec.aux_price)):
        assert decoded == (UNSET_DOUBLE if encoded is None else encoded)
    assert (order.tif, order.account, order.orderRef) == (spec.tif, spec.account, spec.order_ref)
    assert (order.permId, order.outsideRth) == (spec.perm_id, spec.outside_rth)


@pytest.mark.parametrize("spec", [LMT, STP])
def test_open_order_decodes_in_both_clients(
    spec: OrderSpec, caplog: pytest.LogCaptureFixture
) -> None:
    message = open_order(spec, "PreSubmitted")
    assert len(frame_fields(message)) == 127
    name, (order_id, contract, order, state) = ibapi_decode(message)
    assert (name, order_id, order.orderId, order.clientId) == (
        "openOrder", spec.order_id, spec.order_id, spec.client_id,
    )  # fmt: skip
    check_order(order, contract, spec)
    assert (order.parentId, state.status) == (spec.parent_id, "PreSubmitted")
    assert order.totalQuantity == Decimal(str(spec.total_quantity))

    name, (order_id, contract, order, state) = ib_async_decode(message, caplog)
    assert (name, order_id, order.clientId, state.status) == (
        "openOrder", spec.order_id, spec.client_id, "PreSubmitted",
    )  # fmt: skip
    check_order(order, contract, spec)
    assert order.parentId == spec.parent_id


def test_completed_order_decodes_in_both_clients(caplog: pytest.LogCaptureFixture) -> None:
    message = completed_order(LMT, "Filled", 100, "20240102 09:30:01 UTC", "Filled Size: 100")
    assert len(frame_fields(message)) == 96
    name, (contract, order, state) = ibapi_decode(message)
    assert name == "completedOrder"
    check_order(order, contract, LMT)
    assert (state.status, state.completedTime) == ("Filled", "20240102 09:30:01 UTC")
    assert (state.completedStatus, order.filledQuantity) == ("Filled Size: 100", Decimal(100))

    name, (contract, order, state) = ib_async_decode(message, caplog)
    assert name == "completedOrder"
    check_order(order, contract, LMT)
    assert (state.status, state.completedStatus, order.filledQuantity) == (
        "Filled", "Filled Size: 100", 100.0,
    )  # fmt: skip


def test_order_status_decodes_in_both_clients(caplog: pytest.LogCaptureFixture) -> None:
    spec = OrderStatusSpec(7, "Filled", 60, 40, 150.2, 123456789, 5, 150.25, 3, "", 0.0)
    message = order_status(spec)
    assert frame_fields(message) == (
        "3", "7", "Filled", "60", "40", "150.2", "123456789", "5", "150.25", "3", "", "0.0",
    )  # fmt: skip
    expected = (7, "Filled", 60, 40, 150.2, 123456789, 5, 150.25, 3, "", 0.0)
    assert ibapi_decode(message) == ("orderStatus", expected)
    assert ib_async_decode(message, caplog) == ("orderStatus", expected)


EXECUTION = ExecutionSpec(
    exec_id="0000e0d5.6568f4a4.01.01", order_id=7, client_id=3, perm_id=123456789,
    contract=AAPL, time=datetime(2024, 1, 2, 9, 30, 1, tzinfo=ZoneInfo("America/New_York")),
    account="DU111", exchange="ISLAND", side="BOT", shares=60, price=150.25, cum_qty=60,
    avg_price=150.25, order_ref="ref-7",
)  # fmt: skip


def test_exec_details_decodes_in_both_clients(caplog: pytest.LogCaptureFixture) -> None:
    message = exec_details(9, EXECUTION)
    assert len(frame_fields(message)) == 32
    name, (req_id, contract, ex) = ibapi_decode(message)
    assert (name, req_id, contract.conId, contract.symbol) == ("execDetails", 9, 265598, "AAPL")
    assert (ex.execId, ex.orderId, ex.clientId, ex.permId) == (
        EXECUTION.exec_id, 7, 3, 123456789,
    )  # fmt: skip
    assert (ex.time, ex.acctNumber, ex.exchange, ex.side) == (
        "20240102 09:30:01 America/New_York", "DU111", "ISLAND", "BOT",
    )  # fmt: skip
    assert (ex.shares, ex.price, ex.cumQty, ex.avgPrice) == (
        Decimal(60),
        150.25,
        Decimal(60),
        150.25,
    )
    assert ex.orderRef == "ref-7"

    name, (req_id, contract, ex) = ib_async_decode(message, caplog)
    assert (name, req_id, contract.conId) == ("execDetails", 9, 265598)
    assert (ex.execId, ex.orderId, ex.clientId, ex.permId) == (
        EXECUTION.exec_id, 7, 3, 123456789,
    )  # fmt: skip
    assert ex.time == EXECUTION.time
    assert (ex.side, ex.shares, ex.price, ex.cumQty, ex.orderRef) == (
        "BOT",
        60,
        150.25,
        60,
        "ref-7",
    )


def test_commission_report_decodes_in_both_clients(caplog: pytest.LogCaptureFixture) -> None:
    message = commission_report(CommissionSpec(EXECUTION.exec_id, 1.0, "USD"))
    assert len(frame_fields(message)) == 8
    name, (report,) = ibapi_decode(message)
    assert name == "commissionReport"
    assert (report.execId, report.commissionAndFees, report.currency) == (
        EXECUTION.exec_id, 1.0, "USD",
    )  # fmt: skip
    assert report.realizedPNL == UNSET_DOUBLE  # TWS's "not known yet"
    name, (report,) = ib_async_decode(message, caplog)
    assert (name, report.execId, report.commission, report.realizedPNL) == (
        "commissionReport", EXECUTION.exec_id, 1.0, UNSET_DOUBLE,
    )  # fmt: skip


def test_order_bound_decodes_in_both_clients(caplog: pytest.LogCaptureFixture) -> None:
    message = order_bound(123456789, -1, 4)
    assert ibapi_decode(message) == ("orderBound", (123456789, -1, 4))
    assert ib_async_decode(message, caplog) == ("orderBound", (123456789, -1, 4))


def test_time_text_needs_an_aware_datetime() -> None:
    assert time_text(datetime(2024, 1, 2, 14, 30, tzinfo=UTC)) == "20240102 14:30:00 UTC"
    with pytest.raises(ValueError, match="aware"):
        time_text(datetime(2024, 1, 2, 14, 30))
