"""Order messages (gateway -> client) at server version 178: pure encoders, exact field counts.

``openOrder`` (5), ``orderStatus`` (3), ``execDetails`` (11), ``commissionReport`` (59),
``completedOrder`` (101) and ``orderBound`` (100), field for field as ``ibapi``'s
``orderdecoder.py`` and ``ib_async``'s ``decoder.py`` read them at 178. Groups the simulated broker
never uses (combo legs, scale, hedge, algo, conditions, delta-neutral) are written empty, in place.

Numbers: a ``None`` price is written as TWS writes an unset double (``1.7976931348623157E308``),
an unset int as ``2147483647``; both clients read those back as their ``UNSET_*`` values.
Quantities are written as integers when integral (``100``, not ``100.0``), as TWS does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from v6.protocol.contract import ContractSpec
from v6.protocol.framing import (
    INFINITY_TEXT,
    UNSET_DOUBLE_TEXT,
    UNSET_INTEGER_TEXT,
    encode_message,
)
from v6.protocol.ids import ServerMessage

_U: Final = UNSET_DOUBLE_TEXT
_UI: Final = UNSET_INTEGER_TEXT


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One order as the broker reports it in openOrder / completedOrder."""

    order_id: int
    client_id: int
    perm_id: int
    contract: ContractSpec
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    account: str = ""
    order_ref: str = ""
    oca_group: str = ""
    open_close: str = ""
    origin: int = 0
    parent_id: int = 0
    outside_rth: bool = False
    hidden: bool = False
    good_after_time: str = ""
    good_till_date: str = ""
    trigger_method: int = 0
    all_or_none: bool = False
    trail_stop_price: float | None = None
    trailing_percent: float | None = None


@dataclass(frozen=True, slots=True)
class OrderStatusSpec:
    order_id: int
    status: str
    filled: float
    remaining: float
    avg_fill_price: float
    perm_id: int
    parent_id: int
    last_fill_price: float
    client_id: int
    why_held: str = ""
    mkt_cap_price: float = 0.0


@dataclass(frozen=True, slots=True)
class ExecutionSpec:
    """One execution. ``side`` is ``BOT`` or ``SLD``; ``time`` must be timezone-aware."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: ContractSpec
    time: datetime
    account: str
    exchange: str
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str = ""
    liquidation: int = 0
    model_code: str = ""
    last_liquidity: int = 1
    pending_price_revision: bool = False


@dataclass(frozen=True, slots=True)
class CommissionSpec:
    exec_id: str
    commission: float
    currency: str = "USD"
    realized_pnl: float | None = None
    yield_: float | None = None
    yield_redemption_date: int = 0


def price_text(value: float | None) -> str:
    """A double as TWS writes it: unset sentinel for ``None``, ``Infinite`` for infinity."""
    if value is None:
        return _U
    if math.isinf(value):
        return INFINITY_TEXT
    return repr(float(value))


def quantity_text(value: float) -> str:
    """A quantity: ``100`` when integral, else the shortest float text (``0.5``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def time_text(when: datetime) -> str:
    """``yyyymmdd hh:mm:ss <zone>``, the form ib_async turns back into an aware datetime.

    Raises :class:`ValueError` for a naive datetime (its instant is unknown)."""
    if when.tzinfo is None:
        raise ValueError(f"time must be timezone-aware: {when!r}")
    zone = when.tzinfo.key if isinstance(when.tzinfo, ZoneInfo) else None
    if zone is None:
        when, zone = when.astimezone(UTC), "UTC"
    return f"{when:%Y%m%d %H:%M:%S} {zone}"


def _contract(c: ContractSpec) -> tuple[object, ...]:
    """The 11 contract fields of order and execution messages (no primaryExchange)."""
    return (
        c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right, c.multiplier,
        c.exchange, c.currency, c.local_symbol, c.trading_class,
    )  # fmt: skip


def _order_head(o: OrderSpec) -> tuple[object, ...]:
    """action .. origin, orderRef: shared by openOrder and completedOrder."""
    return (
        o.action, quantity_text(o.total_quantity), o.order_type, price_text(o.lmt_price),
        price_text(o.aux_price), o.tif, o.oca_group, o.account, o.open_close, o.origin,
        o.order_ref,
    )  # fmt: skip


def open_order(order: OrderSpec, status: str) -> bytes:
    """``5,orderId,<contract>,...`` at version 178 (no version field; ``whatIf`` false, so every
    margin and commission field of the order state is empty / unset)."""
    o = order
    return encode_message(
        ServerMessage.OPEN_ORDER, o.order_id, *_contract(o.contract), *_order_head(o),
        o.client_id, o.perm_id, o.outside_rth, o.hidden, 0, o.good_after_time,
        "",  # sharesAllocation (deprecated)
        "", "", "",  # faGroup, faMethod, faPercentage (no faProfile from 177 on)
        "", o.good_till_date, "", _U, "",  # modelCode, goodTillDate, rule80A, %offset, firm
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        0, _U, _U, _U, _U, _U,  # auctionStrategy, startingPrice, stockRefPrice, delta, range
        _UI, 0, 0, o.all_or_none, _UI, 0,  # displaySize, block, sweep, AON, minQty, ocaType
        0, 0, _U,  # eTradeOnly, firmQuoteOnly, nbboPriceCap (deprecated)
        o.parent_id, o.trigger_method,
        _U, 0, "", _U,  # volatility, volatilityType, deltaNeutralOrderType / auxPrice
        0, 0,  # continuousUpdate, referencePriceType
        price_text(o.trail_stop_price), price_text(o.trailing_percent),
        _U, _UI,  # basisPoints, basisPointsType
        "", 0, 0, 0,  # comboLegsDescrip, combo legs, order combo legs, smart routing params
        _UI, _UI, _U,  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        0, "", "", 0, 0,  # optOutSmartRouting, clearing account / intent, notHeld, dnc present
        "", 0,  # algoStrategy, solicited
        0, status, *[""] * 9,  # whatIf, status, margins before / change / after
        _U, _U, _U, "", "",  # commission, min, max, commissionCurrency, warningText
        0, 0,  # randomizeSize, randomizePrice
        0,  # conditions
        "", _U, _U, _U, _U, _U, _U, 0,  # adjusted order type, trigger, trail, offset, adjusted...
        "", "", "",  # softDollarTier name, value, displayName
        _U, 0, 0, 0, 0,  # cashQty, dontUseAutoPriceForHedge, isOms, discretionaryUpTo, priceMgmt
        _UI, _UI, 0,  # duration (158), postToAts (160), autoCancelParent (162)
        _UI, _UI, _U, _U, _U,  # minTradeQty, minCompeteSize, competeAgainstBest, mid offsets (170)
    )  # fmt: skip


def completed_order(
    order: OrderSpec, status: str, filled: float, completed_time: str, completed_status: str
) -> bytes:
    """``101,<contract>,...`` at version 178 (no version field, no order id, no client id)."""
    o = order
    return encode_message(
        ServerMessage.COMPLETED_ORDER, *_contract(o.contract), *_order_head(o),
        o.perm_id, o.outside_rth, o.hidden, 0, o.good_after_time,
        "", "", "",  # faGroup, faMethod, faPercentage
        "", o.good_till_date, "", _U, "",  # modelCode, goodTillDate, rule80A, %offset, firm
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        _U, _U, _U, _U, _U,  # startingPrice, stockRefPrice, delta, stock range lower / upper
        _UI, 0, o.all_or_none, _UI, 0,  # displaySize, sweepToFill, AON, minQty, ocaType
        o.trigger_method,
        _U, 0, "", _U,  # volatility, volatilityType, deltaNeutralOrderType / auxPrice
        0, 0,  # continuousUpdate, referencePriceType
        price_text(o.trail_stop_price), price_text(o.trailing_percent),
        "", 0, 0, 0,  # comboLegsDescrip, combo legs, order combo legs, smart routing params
        _UI, _UI, _U,  # scale init / subs level size, price increment
        "",  # hedgeType
        "", "", 0, 0,  # clearingAccount, clearingIntent, notHeld, dnc present
        "", 0,  # algoStrategy, solicited
        status, 0, 0,  # status, randomizeSize, randomizePrice
        0,  # conditions
        _U, _U, _U,  # trailStopPrice, lmtPriceOffset, cashQty
        0, 0,  # dontUseAutoPriceForHedge, isOmsContainer
        "", quantity_text(filled), 0, 0,  # autoCancelDate, filledQuantity, refFutures, cancelParent
        "", 0, 0, 0,  # shareholder, imbalanceOnly, routeMarketableToBbo, parentPermId
        completed_time, completed_status,
        _UI, _UI, _U, _U, _U,  # minTradeQty, minCompeteSize, competeAgainstBest, mid offsets
    )  # fmt: skip


def order_status(s: OrderStatusSpec) -> bytes:
    """``3,orderId,status,filled,remaining,avgFillPrice,permId,parentId,lastFillPrice,clientId,
    whyHeld,mktCapPrice`` (12 fields; no version field from server version 131 on)."""
    return encode_message(
        ServerMessage.ORDER_STATUS, s.order_id, s.status, quantity_text(s.filled),
        quantity_text(s.remaining), s.avg_fill_price, s.perm_id, s.parent_id, s.last_fill_price,
        s.client_id, s.why_held, s.mkt_cap_price,
    )  # fmt: skip


def exec_details(req_id: int, e: ExecutionSpec) -> bytes:
    """``11,reqId,orderId,<contract>,execId,time,...,pendingPriceRevision`` (32 fields at 178;
    no version field from 136 on). ``req_id`` is -1 for an unsolicited execution."""
    return encode_message(
        ServerMessage.EXECUTION_DATA, req_id, e.order_id, *_contract(e.contract), e.exec_id,
        time_text(e.time), e.account, e.exchange, e.side, quantity_text(e.shares), e.price,
        e.perm_id, e.client_id, e.liquidation, quantity_text(e.cum_qty), e.avg_price, e.order_ref,
        "", "",  # evRule, evMultiplier
        e.model_code, e.last_liquidity, e.pending_price_revision,
    )  # fmt: skip


def commission_report(c: CommissionSpec) -> bytes:
    """``59,1,execId,commission,currency,realizedPNL,yield,yieldRedemptionDate`` (8 fields)."""
    return encode_message(
        ServerMessage.COMMISSION_REPORT, 1, c.exec_id, c.commission, c.currency,
        price_text(c.realized_pnl), price_text(c.yield_), c.yield_redemption_date,
    )  # fmt: skip


def order_bound(perm_id: int, client_id: int, order_id: int) -> bytes:
    """``100,permId,clientId,orderId``: a manual / other client's order bound to client 0."""
    return encode_message(ServerMessage.ORDER_BOUND, perm_id, client_id, order_id)
