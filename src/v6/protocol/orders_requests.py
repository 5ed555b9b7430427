"""Order requests (client -> gateway) parsed from a message's fields: pure, no I/O.

``placeOrder`` (3), ``cancelOrder`` (4), ``reqExecutions`` (7, with the whole ``ExecutionFilter``)
and ``reqGlobalCancel`` (58), in the layout both ``ibapi`` and ``ib_async`` write at the server
versions the fake gateway negotiates (145..178; text protocol, no version field in placeOrder).
Groups that only exist above 178 (customerAccount, includeOvernight, CME tagging fields, the
``lastNDays`` execution filter...) are not read: a client at 179+ never talks to this gateway.

Numbers, decided once here:

* ``""`` and TWS's "unset" sentinels (``2147483647``, ``9223372036854775807``,
  ``1.7976931348623157E308``; ``ibapi`` writes some of them literally) are *unset*: ``None`` for
  optional fields, 0 / False for counters and flags, :class:`MalformedOrder` where a value is
  required (order id, quantity).
* ``Infinite`` is ``math.inf`` (``ibapi``'s text for ``DOUBLE_INFINITY``).
* Anything else must be a plain decimal number: ``nan``, ``1_000`` or ``0x10`` raise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from v6.errors import MalformedOrder
from v6.protocol.contract import ContractSpec
from v6.protocol.ids import ClientMessage

MIN_ORDER_SERVER_VERSION: Final = 145
"""Lowest server version parsed: below it placeOrder carries a version field and other groups."""

ORDER_SERVER_VERSION: Final = 178
"""The version FakeGateway negotiates, and the highest this module parses."""

UNSET_TEXTS: Final = frozenset(
    {
        "",
        "2147483647",
        "9223372036854775807",
        "-9223372036854775808",
        "1.7976931348623157E308",
        "1.7976931348623157e+308",
        "170141183460469231731687303715884105727",  # ibapi's UNSET_DECIMAL
    }
)
"""Field texts that mean "no value"."""

INFINITY_TEXT: Final = "Infinite"

_INT_RE: Final = re.compile(r"-?\d{1,19}", re.ASCII)  # int() also takes other scripts' digits
_FLOAT_RE: Final = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?", re.ASCII)

#: order-condition type -> fields after the type (ibapi ``order_condition.make_fields``):
#: price, time, margin, execution, volume, percent change.
_CONDITION_FIELDS: Final = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """A placeOrder request: what the simulated broker acts on. Skipped groups (scale, hedge,
    delta-neutral, FA, MiFID...) are read past, not kept."""

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


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int
    manual_cancel_time: str = ""


@dataclass(frozen=True, slots=True)
class ReqGlobalCancel:
    pass


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
class ReqExecutions:
    req_id: int
    filter: ExecutionFilter = field(default_factory=ExecutionFilter)


OrderRequest = PlaceOrder | CancelOrder | ReqGlobalCancel | ReqExecutions


@dataclass(slots=True)
class _Cursor:
    """Reads fields left to right; every failure is a :class:`MalformedOrder` naming the field
    and, once read, the order id."""

    fields: tuple[str, ...]
    name: str
    pos: int = 1
    order_id: int | None = None

    def fail(self, why: str) -> MalformedOrder:
        return MalformedOrder(f"{self.name}: field {self.pos - 1} {why}", self.order_id)

    def text(self) -> str:
        if self.pos >= len(self.fields):
            self.pos += 1
            raise self.fail(f"missing (message has {len(self.fields)} fields)")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def skip(self, n: int = 1) -> None:
        for _ in range(n):
            self.text()

    def opt_int(self) -> int | None:
        raw = self.text()
        if raw in UNSET_TEXTS:
            return None
        if not _INT_RE.fullmatch(raw):
            raise self.fail(f"not an int: {raw[:20]!r}")
        return int(raw)

    def int0(self) -> int:
        """An int where unset means 0 (counters, ids, enums)."""
        return self.opt_int() or 0

    def req_int(self) -> int:
        value = self.opt_int()
        if value is None:
            raise self.fail("is required")
        return value

    def flag(self) -> bool:
        return self.int0() != 0

    def opt_float(self) -> float | None:
        raw = self.text()
        if raw in UNSET_TEXTS:
            return None
        if raw == INFINITY_TEXT:
            return math.inf
        if not _FLOAT_RE.fullmatch(raw):
            raise self.fail(f"not a number: {raw[:20]!r}")
        return float(raw)

    def req_float(self) -> float:
        value = self.opt_float()
        if value is None or math.isinf(value):
            raise self.fail("is required and finite")
        return value

    def contract(self) -> ContractSpec:
        return ContractSpec(
            con_id=self.int0(),
            symbol=self.text(),
            sec_type=self.text(),
            last_trade_date=self.text(),
            strike=self.opt_float() or 0.0,
            right=self.text(),
            multiplier=self.text(),
            exchange=self.text(),
            primary_exchange=self.text(),
            currency=self.text(),
            local_symbol=self.text(),
            trading_class=self.text(),
        )

    def ints(self, n: int) -> None:
        """Read past ``n`` integer fields, checking they are numbers."""
        for _ in range(n):
            self.opt_int()

    def floats(self, n: int) -> None:
        """Read past ``n`` number fields, checking they are numbers."""
        for _ in range(n):
            self.opt_float()

    def tag_values(self) -> tuple[tuple[str, str], ...]:
        return tuple((self.text(), self.text()) for _ in range(self.int0()))

    def end(self) -> None:
        if self.pos != len(self.fields):
            raise MalformedOrder(
                f"{self.name}: {len(self.fields)} fields, expected {self.pos}", self.order_id
            )


def _check_version(server_version: int) -> None:
    if not MIN_ORDER_SERVER_VERSION <= server_version <= ORDER_SERVER_VERSION:
        raise ValueError(
            f"server_version: {server_version} not in "
            f"{MIN_ORDER_SERVER_VERSION}..{ORDER_SERVER_VERSION}"
        )


def parse_place_order(
    fields: tuple[str, ...], server_version: int = ORDER_SERVER_VERSION
) -> PlaceOrder:
    """Parse placeOrder (``fields[0] == "3"``) as written at ``server_version``.

    Raises :class:`MalformedOrder` (``order_id`` set when readable) on a missing, extra or
    non-numeric field."""
    _check_version(server_version)
    f = _Cursor(fields, "placeOrder")
    f.order_id = f.req_int()
    kept: dict[str, Any] = {"order_id": f.order_id, "contract": f.contract()}
    f.skip(2)  # secIdType, secId
    kept.update(
        action=f.text(),
        total_quantity=f.req_float(),
        order_type=f.text(),
        lmt_price=f.opt_float(),
        aux_price=f.opt_float(),
    )
    _read_extended(f, kept)
    _read_combo(f, kept)
    _read_fa_and_dates(f, kept, server_version)
    _read_short_sale_and_box(f, kept)
    _read_volatility_and_scale(f, kept)
    _read_routing_and_algo(f, kept)
    _read_peg_bench_and_conditions(f, kept)
    _read_adjusted_to_price_mgmt(f, kept)
    _read_versioned_tail(f, kept, server_version)
    f.end()
    return PlaceOrder(**kept)


# Each reader below consumes one group of placeOrder fields in wire order (ibapi's
# ``EClient.placeOrder``) and stores what PlaceOrder keeps in ``kept``.


def _read_extended(f: _Cursor, kept: dict[str, Any]) -> None:
    kept.update(
        tif=f.text(),
        oca_group=f.text(),
        account=f.text(),
        open_close=f.text(),
        origin=f.int0(),
        order_ref=f.text(),
        transmit=f.flag(),
        parent_id=f.int0(),
    )
    f.ints(2)  # blockOrder, sweepToFill
    kept.update(
        display_size=f.opt_int(),
        trigger_method=f.int0(),
        outside_rth=f.flag(),
        hidden=f.flag(),
    )


def _read_combo(f: _Cursor, kept: dict[str, Any]) -> None:
    if kept["contract"].sec_type != "BAG":
        return
    kept["combo_legs"] = legs = f.int0()
    f.skip(8 * legs)  # conId, ratio, action, exchange, openClose, shortSaleSlot, location, exempt
    f.floats(f.int0())  # order combo leg prices
    f.skip(2 * f.int0())  # smart combo routing params


def _read_fa_and_dates(f: _Cursor, kept: dict[str, Any], server_version: int) -> None:
    f.skip()  # sharesAllocation (deprecated)
    f.floats(1)  # discretionaryAmt
    kept.update(good_after_time=f.text(), good_till_date=f.text())
    f.skip(3)  # faGroup, faMethod, faPercentage
    if server_version < 177:
        f.skip()  # faProfile
    f.skip()  # modelCode


def _read_short_sale_and_box(f: _Cursor, kept: dict[str, Any]) -> None:
    f.ints(1)  # shortSaleSlot
    f.skip()  # designatedLocation
    f.ints(2)  # exemptCode, ocaType
    f.skip(2)  # rule80A, settlingFirm
    kept.update(all_or_none=f.flag(), min_qty=f.opt_int())
    f.floats(1)  # percentOffset
    f.ints(2)  # eTradeOnly, firmQuoteOnly
    f.floats(1)  # nbboPriceCap
    f.ints(1)  # auctionStrategy
    f.floats(5)  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
    f.ints(1)  # overridePercentageConstraints


def _read_volatility_and_scale(f: _Cursor, kept: dict[str, Any]) -> None:
    f.floats(1)  # volatility
    f.ints(1)  # volatilityType
    delta_neutral_order_type = f.text()
    f.floats(1)  # deltaNeutralAuxPrice
    if delta_neutral_order_type:
        f.skip(8)  # conId, settlingFirm, clearing account / intent, openClose, shortSale...
    f.ints(2)  # continuousUpdate, referencePriceType
    kept.update(trail_stop_price=f.opt_float(), trailing_percent=f.opt_float())
    f.ints(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = f.opt_float()
    if increment is not None and 0 < increment < math.inf:
        f.skip(7)  # scale price adjust value / interval, profit offset, auto reset...
    f.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if f.text():  # hedgeType
        f.skip()  # hedgeParam


def _read_routing_and_algo(f: _Cursor, kept: dict[str, Any]) -> None:
    f.ints(1)  # optOutSmartRouting
    f.skip(2)  # clearingAccount, clearingIntent
    f.ints(1)  # notHeld
    if f.flag():  # delta-neutral contract: conId, delta, price
        f.skip(3)
    kept["algo_strategy"] = strategy = f.text()
    if strategy:
        kept["algo_params"] = f.tag_values()
    f.skip()  # algoId
    kept["what_if"] = f.flag()
    f.skip()  # orderMiscOptions
    f.ints(3)  # solicited, randomizeSize, randomizePrice


def _read_peg_bench_and_conditions(f: _Cursor, kept: dict[str, Any]) -> None:
    if kept["order_type"] in {"PEG BENCH", "PEGBENCH"}:
        f.skip(5)
    kept["conditions"] = count = f.int0()
    for _ in range(count):
        kind = f.int0()
        if kind not in _CONDITION_FIELDS:
            raise f.fail(f"unknown order condition type {kind}")
        f.skip(_CONDITION_FIELDS[kind])
    if count:
        f.ints(2)  # conditionsIgnoreRth, conditionsCancelOrder


def _read_adjusted_to_price_mgmt(f: _Cursor, kept: dict[str, Any]) -> None:
    f.skip()  # adjustedOrderType
    f.floats(5)  # triggerPrice, lmtPriceOffset, adjusted stop / stop-limit / trailing amount
    f.ints(1)  # adjustableTrailingUnit
    f.skip(3)  # extOperator, softDollarTier name and value
    kept["cash_qty"] = f.opt_float()
    f.skip(4)  # MiFID II decision maker / algo, execution trader / algo
    f.ints(4)  # dontUseAutoPriceForHedge, isOmsContainer, discretionaryUpTo, usePriceMgmtAlgo


def _read_versioned_tail(f: _Cursor, kept: dict[str, Any], server_version: int) -> None:
    for version in (158, 160, 162):  # duration, postToAts, autoCancelParent
        if server_version >= version:
            f.ints(1)
    if server_version >= 166:
        f.skip()  # advancedErrorOverride
    if server_version >= 169:
        kept["manual_order_time"] = f.text()
    if server_version >= 170:
        _read_peg_offsets(f, kept)


def _read_peg_offsets(f: _Cursor, kept: dict[str, Any]) -> None:
    order_type = kept["order_type"]
    if kept["contract"].exchange == "IBKRATS":
        f.ints(1)  # minTradeQty
    mid_offsets = order_type in {"PEG MID", "PEGMID"}
    if order_type in {"PEG BEST", "PEGBEST"}:
        f.ints(1)  # minCompeteSize
        mid_offsets = f.opt_float() == math.inf  # competeAgainstBestOffset "up to mid"
    if mid_offsets:
        f.floats(2)  # midOffsetAtWhole, midOffsetAtHalf


def parse_cancel_order(
    fields: tuple[str, ...], server_version: int = ORDER_SERVER_VERSION
) -> CancelOrder:
    """``4,1,orderId[,manualOrderCancelTime]`` (the time from server version 169 on)."""
    _check_version(server_version)
    f = _Cursor(fields, "cancelOrder")
    f.skip()  # version
    f.order_id = f.req_int()
    manual_time = f.text() if server_version >= 169 else ""
    f.end()
    return CancelOrder(f.order_id, manual_time)


def parse_global_cancel(fields: tuple[str, ...]) -> ReqGlobalCancel:
    """``58,1`` (extOperator and manualOrderIndicator only from server version 192 on)."""
    f = _Cursor(fields, "reqGlobalCancel")
    f.skip()  # version
    f.end()
    return ReqGlobalCancel()


def parse_req_executions(fields: tuple[str, ...]) -> ReqExecutions:
    """``7,3,reqId,clientId,acctCode,time,symbol,secType,exchange,side`` (exactly 10 fields;
    ``lastNDays`` / specific dates only from server version 200 on)."""
    f = _Cursor(fields, "reqExecutions")
    f.skip()  # version
    req_id = f.req_int()
    execution_filter = ExecutionFilter(
        client_id=f.int0(),
        acct_code=f.text(),
        time=f.text(),
        symbol=f.text(),
        sec_type=f.text(),
        exchange=f.text(),
        side=f.text(),
    )
    f.end()
    return ReqExecutions(req_id, execution_filter)


ORDER_REQUEST_PARSERS: Final[dict[int, Callable[[tuple[str, ...]], OrderRequest]]] = {
    ClientMessage.PLACE_ORDER: parse_place_order,
    ClientMessage.CANCEL_ORDER: parse_cancel_order,
    ClientMessage.REQ_EXECUTIONS: parse_req_executions,
    ClientMessage.REQ_GLOBAL_CANCEL: parse_global_cancel,
}
"""Message id -> parser, at :data:`ORDER_SERVER_VERSION`. Every parser raises
:class:`~v6.errors.MalformedRequest` (placeOrder / cancelOrder: :class:`MalformedOrder`)."""
