"""Server -> client messages of live data and reference data: real-time bars, keep-up-to-date bar
updates, tick-by-tick data, PnL, contract details. One encoder per message, each returning one
framed message with exactly the fields ib_async and ibapi read at server versions 164..178.

Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from v6.protocol.contract import ContractSpec
from v6.protocol.framing import encode_message
from v6.protocol.ids import ServerMessage
from v6.protocol.messages import Bar


def realtime_bar(req_id: int, epoch: int, bar: Bar) -> bytes:
    """``50,3,reqId,time,open,high,low,close,volume,wap,count`` (11 fields); ``bar.date`` is
    not sent (``epoch`` is the bar's start)."""
    return encode_message(
        ServerMessage.REAL_TIME_BARS, 3, req_id, epoch, bar.open, bar.high, bar.low, bar.close,
        bar.volume, bar.wap, bar.bar_count,
    )  # fmt: skip


def historical_data_update(req_id: int, bar: Bar) -> bytes:
    """``90,reqId,barCount,date,open,close,high,low,wap,volume`` (no version field): the current
    bar of a ``keepUpToDate`` request, sent again each time it changes."""
    return encode_message(
        ServerMessage.HISTORICAL_DATA_UPDATE, req_id, bar.bar_count, bar.date, bar.open,
        bar.close, bar.high, bar.low, bar.wap, bar.volume,
    )  # fmt: skip


class TickByTickType(IntEnum):
    """The tick type field of a tickByTick message (a request names it ``Last``, ``AllLast``,
    ``BidAsk``, ``MidPoint``)."""

    LAST = 1
    ALL_LAST = 2
    BID_ASK = 3
    MID_POINT = 4


TICK_BY_TICK_TYPES = {
    "Last": TickByTickType.LAST,
    "AllLast": TickByTickType.ALL_LAST,
    "BidAsk": TickByTickType.BID_ASK,
    "MidPoint": TickByTickType.MID_POINT,
}
"""A reqTickByTickData ``tickType`` -> the type its messages carry."""


def tick_by_tick_last(
    req_id: int,
    tick_type: TickByTickType,
    epoch: int,
    price: float,
    size: int,
    exchange: str,
    attr_mask: int = 0,
    special_conditions: str = "",
) -> bytes:
    """``99,reqId,1|2,time,price,size,attrMask,exchange,specialConditions`` (Last / AllLast)."""
    return encode_message(
        ServerMessage.TICK_BY_TICK, req_id, int(tick_type), epoch, price, size, attr_mask,
        exchange, special_conditions,
    )  # fmt: skip


def tick_by_tick_bid_ask(
    req_id: int, epoch: int, bid: float, ask: float, bid_size: int, ask_size: int,
    attr_mask: int = 0,
) -> bytes:  # fmt: skip
    """``99,reqId,3,time,bid,ask,bidSize,askSize,attrMask``."""
    return encode_message(
        ServerMessage.TICK_BY_TICK, req_id, int(TickByTickType.BID_ASK), epoch, bid, ask,
        bid_size, ask_size, attr_mask,
    )  # fmt: skip


def tick_by_tick_mid_point(req_id: int, epoch: int, mid_point: float) -> bytes:
    """``99,reqId,4,time,midPoint``."""
    return encode_message(
        ServerMessage.TICK_BY_TICK, req_id, int(TickByTickType.MID_POINT), epoch, mid_point
    )


def pnl(req_id: int, daily: float, unrealized: float, realized: float) -> bytes:
    """``94,reqId,dailyPnL,unrealizedPnL,realizedPnL`` (no version field)."""
    return encode_message(ServerMessage.PNL, req_id, daily, unrealized, realized)


def pnl_single(
    req_id: int, position: float, daily: float, unrealized: float, realized: float, value: float
) -> bytes:
    """``95,reqId,pos,dailyPnL,unrealizedPnL,realizedPnL,value`` (no version field)."""
    return encode_message(
        ServerMessage.PNL_SINGLE, req_id, position, daily, unrealized, realized, value
    )


@dataclass(frozen=True, slots=True)
class ContractDetailsSpec:
    """What a contractData message says about one contract (the fields v6 fills; the others go
    out empty or zero)."""

    contract: ContractSpec
    market_name: str = ""
    min_tick: float = 0.01
    order_types: str = "LMT,MKT,STP"
    valid_exchanges: str = "SMART"
    long_name: str = ""
    time_zone_id: str = ""
    trading_hours: str = ""
    """``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` sessions or ``YYYYMMDD:CLOSED``, ``;``-separated."""
    liquid_hours: str = ""
    stock_type: str = ""
    min_size: float = 1.0
    size_increment: float = 1.0


def contract_data(req_id: int, details: ContractDetailsSpec) -> bytes:
    """``10,reqId,symbol,secType,lastTradeDate,strike,right,exchange,currency,localSymbol,
    marketName,tradingClass,conId,minTick,multiplier,orderTypes,validExchanges,priceMagnifier,
    underConId,longName,primaryExchange,contractMonth,industry,category,subcategory,timeZoneId,
    tradingHours,liquidHours,evRule,evMultiplier,secIdCount(0),aggGroup,underSymbol,
    underSecType,marketRuleIds,realExpirationDate,stockType,minSize,sizeIncrement,
    suggestedSizeIncrement`` (no version field from server version 164; 40 fields)."""
    d, c = details, details.contract
    return encode_message(
        ServerMessage.CONTRACT_DATA, req_id, c.symbol, c.sec_type, c.last_trade_date, c.strike,
        c.right, c.exchange, c.currency, c.local_symbol, d.market_name, c.trading_class,
        c.con_id, d.min_tick, c.multiplier, d.order_types, d.valid_exchanges, 1, 0,
        d.long_name, c.primary_exchange, "", "", "", "", d.time_zone_id, d.trading_hours,
        d.liquid_hours, "", 0, 0, 0, "", "", "", "", d.stock_type, d.min_size,
        d.size_increment, d.size_increment,
    )  # fmt: skip


def contract_data_end(req_id: int) -> bytes:
    """``52,1,reqId``."""
    return encode_message(ServerMessage.CONTRACT_DATA_END, 1, req_id)
