"""Order requests (client -> gateway): what each one carries and how it is read. Pure, no I/O.

``placeOrder`` (3), ``cancelOrder`` (4), ``reqGlobalCancel`` (58), ``reqExecutions`` (7, with the
whole ``ExecutionFilter``), and the order-book requests ``reqOpenOrders`` / ``reqAllOpenOrders``
(5 / 16), ``reqAutoOpenOrders`` (15) and ``reqCompletedOrders`` (99). Layouts are those both
``ibapi`` and ``ib_async`` write at the server versions the fake gateway negotiates (145..178; text
protocol, no version field in placeOrder). Groups that only exist above 178 (customerAccount,
includeOvernight, CME tagging fields, the ``lastNDays`` execution filter...) are not read: a client
at 179+ never talks to this gateway. placeOrder, cancelOrder, reqGlobalCancel and reqExecutions
are read to their exact field count; how each field is read (ints, numbers, unset values) is
:mod:`v6.protocol.fields`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, Self

from v6.protocol.contract import ContractSpec
from v6.protocol.fields import ClientRequest, Fields
from v6.protocol.ids import ClientMessage

MIN_ORDER_SERVER_VERSION: Final = 145
"""Lowest server version parsed: below it placeOrder carries a version field and other groups."""

ORDER_SERVER_VERSION: Final = 178
"""The version FakeGateway negotiates, and the highest this module parses."""

#: order-condition type -> fields after the type (ibapi ``order_condition.make_fields``):
#: price, time, margin, execution, volume, percent change.
_CONDITION_FIELDS: Final = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


@dataclass(frozen=True, slots=True)
class PlaceOrder(ClientRequest):
    """A placeOrder request: what the simulated broker acts on. Skipped groups (scale, hedge,
    delta-neutral, FA, MiFID...) are read past, not kept."""

    msg_ids = (ClientMessage.PLACE_ORDER,)
    versioned = False
    for_order = True

    order_id: int
    contract: ContractSpec
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = ""
    oca_group: str = ""
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    display_size: int | None = None
    trigger_method: int = 0
    outside_rth: bool = False
    hidden: bool = False
    good_after_time: str = ""
    good_till_date: str = ""
    all_or_none: bool = False
    min_qty: int | None = None
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    what_if: bool = False
    cash_qty: float | None = None
    combo_legs: int = 0
    conditions: int = 0
    manual_order_time: str = ""

    @classmethod
    def parse(cls, f: Fields) -> Self:
        """``3,orderId,<contract>,...`` as written at the session's server version (145..178)."""
        if not MIN_ORDER_SERVER_VERSION <= f.server_version <= ORDER_SERVER_VERSION:
            raise f.malformed(
                f"server_version: {f.server_version} not in "
                f"{MIN_ORDER_SERVER_VERSION}..{ORDER_SERVER_VERSION}"
            )
        order_id = f.read_order_id()
        kept: dict[str, Any] = {"order_id": order_id, "contract": f.contract()}
        f.skip(2)  # secIdType, secId
        kept.update(
            action=f.text(),
            total_quantity=f.required_number(),
            order_type=f.text(),
            lmt_price=f.optional_number(),
            aux_price=f.optional_number(),
        )
        _read_extended(f, kept)
        _read_combo(f, kept)
        _read_fa_and_dates(f, kept)
        _read_short_sale_and_box(f, kept)
        _read_volatility_and_scale(f, kept)
        _read_routing_and_algo(f, kept)
        _read_peg_bench_and_conditions(f, kept)
        _read_adjusted_to_price_mgmt(f, kept)
        _read_versioned_tail(f, kept)
        f.end()
        return cls(**kept)


@dataclass(frozen=True, slots=True)
class CancelOrder(ClientRequest):
    """``4,1,orderId[,manualOrderCancelTime]`` (the time from server version 169 on)."""

    msg_ids = (ClientMessage.CANCEL_ORDER,)
    for_order = True

    order_id: int
    manual_cancel_time: str = ""

    @classmethod
    def parse(cls, f: Fields) -> Self:
        order_id = f.read_order_id()
        manual_time = f.text() if f.server_version >= 169 else ""
        f.end()
        return cls(order_id, manual_time)


@dataclass(frozen=True, slots=True)
class ReqGlobalCancel(ClientRequest):
    """``58,1`` (extOperator and manualOrderIndicator only from server version 192 on)."""

    msg_ids = (ClientMessage.REQ_GLOBAL_CANCEL,)

    @classmethod
    def parse(cls, f: Fields) -> Self:
        f.end()
        return cls()


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    """TWS's execution filter; empty text / client id 0 match everything.

    ``time`` is ``yyyymmdd hh:mm:ss`` (or the older ``yyyymmdd-hh:mm:ss``), optionally followed by
    a time zone; the broker interprets it."""

    client_id: int = 0
    acct_code: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


@dataclass(frozen=True, slots=True)
class ReqExecutions(ClientRequest):
    """``7,3,reqId,clientId,acctCode,time,symbol,secType,exchange,side`` (exactly 10 fields;
    ``lastNDays`` / specific dates only from server version 200 on)."""

    msg_ids = (ClientMessage.REQ_EXECUTIONS,)

    req_id: int
    filter: ExecutionFilter = field(default_factory=ExecutionFilter)

    @classmethod
    def parse(cls, f: Fields) -> Self:
        req_id = f.required_integer()
        execution_filter = ExecutionFilter(
            client_id=f.integer(),
            acct_code=f.text(),
            time=f.text(),
            symbol=f.text(),
            sec_type=f.text(),
            exchange=f.text(),
            side=f.text(),
        )
        f.end()
        return cls(req_id, execution_filter)


@dataclass(frozen=True, slots=True)
class ReqOpenOrders(ClientRequest):
    """reqOpenOrders or reqAllOpenOrders (``5,1`` / ``16,1``): both end with openOrderEnd."""

    msg_ids = (ClientMessage.REQ_OPEN_ORDERS, ClientMessage.REQ_ALL_OPEN_ORDERS)

    all_clients: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(all_clients=f.msg_id == ClientMessage.REQ_ALL_OPEN_ORDERS)


@dataclass(frozen=True, slots=True)
class ReqAutoOpenOrders(ClientRequest):
    """``15,1,autoBind``."""

    msg_ids = (ClientMessage.REQ_AUTO_OPEN_ORDERS,)

    auto_bind: bool

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.flag())


@dataclass(frozen=True, slots=True)
class ReqCompletedOrders(ClientRequest):
    """``99,apiOnly`` (no version field)."""

    msg_ids = (ClientMessage.REQ_COMPLETED_ORDERS,)
    versioned = False

    api_only: bool

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.flag())


# Each reader below consumes one group of placeOrder fields in wire order (ibapi's
# ``EClient.placeOrder``) and stores what PlaceOrder keeps in ``kept``.


def _read_extended(f: Fields, kept: dict[str, Any]) -> None:
    kept.update(
        tif=f.text(),
        oca_group=f.text(),
        account=f.text(),
        open_close=f.text(),
        origin=f.integer(),
        order_ref=f.text(),
        transmit=f.flag(),
        parent_id=f.integer(),
    )
    f.skip_integers(2)  # blockOrder, sweepToFill
    kept.update(
        display_size=f.optional_integer(),
        trigger_method=f.integer(),
        outside_rth=f.flag(),
        hidden=f.flag(),
    )


def _read_combo(f: Fields, kept: dict[str, Any]) -> None:
    if kept["contract"].sec_type != "BAG":
        return
    kept["combo_legs"] = legs = f.integer()
    f.skip(8 * legs)  # conId, ratio, action, exchange, openClose, shortSaleSlot, location, exempt
    f.skip_numbers(f.integer())  # order combo leg prices
    f.skip(2 * f.integer())  # smart combo routing params


def _read_fa_and_dates(f: Fields, kept: dict[str, Any]) -> None:
    f.skip()  # sharesAllocation (deprecated)
    f.skip_numbers(1)  # discretionaryAmt
    kept.update(good_after_time=f.text(), good_till_date=f.text())
    f.skip(3)  # faGroup, faMethod, faPercentage
    if f.server_version < 177:
        f.skip()  # faProfile
    f.skip()  # modelCode


def _read_short_sale_and_box(f: Fields, kept: dict[str, Any]) -> None:
    f.skip_integers(1)  # shortSaleSlot
    f.skip()  # designatedLocation
    f.skip_integers(2)  # exemptCode, ocaType
    f.skip(2)  # rule80A, settlingFirm
    kept.update(all_or_none=f.flag(), min_qty=f.optional_integer())
    f.skip_numbers(1)  # percentOffset
    f.skip_integers(2)  # eTradeOnly, firmQuoteOnly
    f.skip_numbers(1)  # nbboPriceCap
    f.skip_integers(1)  # auctionStrategy
    f.skip_numbers(5)  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
    f.skip_integers(1)  # overridePercentageConstraints


def _read_volatility_and_scale(f: Fields, kept: dict[str, Any]) -> None:
    f.skip_numbers(1)  # volatility
    f.skip_integers(1)  # volatilityType
    delta_neutral_order_type = f.text()
    f.skip_numbers(1)  # deltaNeutralAuxPrice
    if delta_neutral_order_type:
        f.skip(8)  # conId, settlingFirm, clearing account / intent, openClose, shortSale...
    f.skip_integers(2)  # continuousUpdate, referencePriceType
    kept.update(trail_stop_price=f.optional_number(), trailing_percent=f.optional_number())
    f.skip_integers(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = f.optional_number()
    if increment is not None and 0 < increment < math.inf:
        f.skip(7)  # scale price adjust value / interval, profit offset, auto reset...
    f.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if f.text():  # hedgeType
        f.skip()  # hedgeParam


def _read_routing_and_algo(f: Fields, kept: dict[str, Any]) -> None:
    f.skip_integers(1)  # optOutSmartRouting
    f.skip(2)  # clearingAccount, clearingIntent
    f.skip_integers(1)  # notHeld
    if f.flag():  # delta-neutral contract: conId, delta, price
        f.skip(3)
    kept["algo_strategy"] = strategy = f.text()
    if strategy:
        kept["algo_params"] = f.tag_values()
    f.skip()  # algoId
    kept["what_if"] = f.flag()
    f.skip()  # orderMiscOptions
    f.skip_integers(3)  # solicited, randomizeSize, randomizePrice


def _read_peg_bench_and_conditions(f: Fields, kept: dict[str, Any]) -> None:
    if kept["order_type"] in {"PEG BENCH", "PEGBENCH"}:
        f.skip(5)
    kept["conditions"] = count = f.integer()
    for _ in range(count):
        kind = f.integer()
        if kind not in _CONDITION_FIELDS:
            raise f.fail(f"unknown order condition type {kind}")
        f.skip(_CONDITION_FIELDS[kind])
    if count:
        f.skip_integers(2)  # conditionsIgnoreRth, conditionsCancelOrder


def _read_adjusted_to_price_mgmt(f: Fields, kept: dict[str, Any]) -> None:
    f.skip()  # adjustedOrderType
    f.skip_numbers(5)  # triggerPrice, lmtPriceOffset, adjusted stop / stop-limit / trailing amount
    f.skip_integers(1)  # adjustableTrailingUnit
    f.skip(3)  # extOperator, softDollarTier name and value
    kept["cash_qty"] = f.optional_number()
    f.skip(4)  # MiFID II decision maker / algo, execution trader / algo
    # dontUseAutoPriceForHedge, isOmsContainer, discretionaryUpTo, usePriceMgmtAlgo
    f.skip_integers(4)


def _read_versioned_tail(f: Fields, kept: dict[str, Any]) -> None:
    for version in (158, 160, 162):  # duration, postToAts, autoCancelParent
        if f.server_version >= version:
            f.skip_integers(1)
    if f.server_version >= 166:
        f.skip()  # advancedErrorOverride
    if f.server_version >= 169:
        kept["manual_order_time"] = f.text()
    if f.server_version >= 170:
        _read_peg_offsets(f, kept)


def _read_peg_offsets(f: Fields, kept: dict[str, Any]) -> None:
    order_type = kept["order_type"]
    if kept["contract"].exchange == "IBKRATS":
        f.skip_integers(1)  # minTradeQty
    mid_offsets = order_type in {"PEG MID", "PEGMID"}
    if order_type in {"PEG BEST", "PEGBEST"}:
        f.skip_integers(1)  # minCompeteSize
        mid_offsets = f.optional_number() == math.inf  # competeAgainstBestOffset "up to mid"
    if mid_offsets:
        f.skip_numbers(2)  # midOffsetAtWhole, midOffsetAtHalf
