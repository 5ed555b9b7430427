"""Server -> client messages: one encoder per message, each returning one framed message.

Field counts are exact: ibapi drops a message whose field count differs from its handler's
signature by one. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from v6.protocol.contract import ContractSpec
from v6.protocol.framing import VERSION_ADVANCED_ORDER_REJECT, encode_message, frame
from v6.protocol.ids import ServerMessage


def managed_accounts(accounts: Sequence[str]) -> bytes:
    """``15,1,<a,b,...>``."""
    return encode_message(ServerMessage.MANAGED_ACCTS, 1, ",".join(accounts))


def next_valid_id(order_id: int) -> bytes:
    """``9,1,<id>``."""
    return encode_message(ServerMessage.NEXT_VALID_ID, 1, order_id)


def error_message(
    server_version: int, req_id: int, code: int, text: str, advanced_order_reject_json: str = ""
) -> bytes:
    """``4,2,<id>,<code>,<text>`` plus ``advancedOrderRejectJson`` from version 166 on."""
    if server_version >= VERSION_ADVANCED_ORDER_REJECT:
        return encode_message(
            ServerMessage.ERR_MSG, 2, req_id, code, text, advanced_order_reject_json
        )
    return encode_message(ServerMessage.ERR_MSG, 2, req_id, code, text)


def current_time(epoch_seconds: int) -> bytes:
    """``49,1,<epoch seconds>``."""
    return encode_message(ServerMessage.CURRENT_TIME, 1, epoch_seconds)


def position_data(account: str, contract: ContractSpec, position: float, avg_cost: float) -> bytes:
    """``61,3,account,<11 contract fields without primaryExchange>,position,avgCost`` (16)."""
    c = contract
    return encode_message(
        ServerMessage.POSITION_DATA, 3, account, c.con_id, c.symbol, c.sec_type,
        c.last_trade_date, c.strike, c.right, c.multiplier, c.exchange, c.currency,
        c.local_symbol, c.trading_class, position, avg_cost,
    )  # fmt: skip


def position_end() -> bytes:
    """``62,1``."""
    return encode_message(ServerMessage.POSITION_END, 1)


def open_order_end() -> bytes:
    """``53,1``."""
    return encode_message(ServerMessage.OPEN_ORDER_END, 1)


def completed_orders_end() -> bytes:
    """``102`` (no version field)."""
    return encode_message(ServerMessage.COMPLETED_ORDERS_END)


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    """``6,2,key,value,currency,account``."""
    return encode_message(ServerMessage.ACCT_VALUE, 2, key, value, currency, account)


def portfolio_value(
    account: str,
    contract: ContractSpec,
    position: float,
    market_price: float,
    market_value: float,
    avg_cost: float,
    unrealized_pnl: float,
    realized_pnl: float,
) -> bytes:
    """``7,8,<11 contract fields without exchange>,position,price,value,cost,uPnL,rPnL,account``
    (exactly 20 fields)."""
    c = contract
    return encode_message(
        ServerMessage.PORTFOLIO_VALUE, 8, c.con_id, c.symbol, c.sec_type, c.last_trade_date,
        c.strike, c.right, c.multiplier, c.primary_exchange, c.currency, c.local_symbol,
        c.trading_class, position, market_price, market_value, avg_cost, unrealized_pnl,
        realized_pnl, account,
    )  # fmt: skip


def account_update_time(hh_mm: str) -> bytes:
    """``8,1,HH:MM``."""
    return encode_message(ServerMessage.ACCT_UPDATE_TIME, 1, hh_mm)


def account_download_end(account: str) -> bytes:
    """``54,1,account``."""
    return encode_message(ServerMessage.ACCT_DOWNLOAD_END, 1, account)


def account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> bytes:
    """``73,1,reqId,account,modelCode,key,value,currency``."""
    return encode_message(
        ServerMessage.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency
    )


def account_update_multi_end(req_id: int) -> bytes:
    """``74,1,reqId``."""
    return encode_message(ServerMessage.ACCOUNT_UPDATE_MULTI_END, 1, req_id)


def exec_details_end(req_id: int) -> bytes:
    """``55,1,reqId``."""
    return encode_message(ServerMessage.EXECUTION_DATA_END, 1, req_id)


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    """``63,1,reqId,account,tag,value,currency``."""
    return encode_message(ServerMessage.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency)


def account_summary_end(req_id: int) -> bytes:
    """``64,1,reqId``."""
    return encode_message(ServerMessage.ACCOUNT_SUMMARY_END, 1, req_id)


def tick_price(req_id: int, tick_type: int, price: float, size: int, attr_mask: int = 0) -> bytes:
    """``1,6,reqId,tickType,price,size,attrMask`` (exactly 7; ``size`` integral for ibapi 9.81)."""
    payload = f"1\x006\x00{req_id}\x00{tick_type}\x00{price!r}\x00{size}\x00{attr_mask}\x00"
    return frame(payload.encode())


def tick_size(req_id: int, tick_type: int, size: int) -> bytes:
    """``2,6,reqId,tickType,size``."""
    return frame(f"2\x006\x00{req_id}\x00{tick_type}\x00{size}\x00".encode())


def tick_snapshot_end(req_id: int) -> bytes:
    """``57,1,reqId``."""
    return encode_message(ServerMessage.TICK_SNAPSHOT_END, 1, req_id)


@dataclass(frozen=True, slots=True)
class Bar:
    """One historical bar. ``volume`` is integral: ibapi 9.81 parses it with ``int()``."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    bar_count: int


def historical_data(req_id: int, start: str, end: str, bars: Iterable[Bar]) -> bytes:
    """``17,reqId,start,end,n,{date,open,high,low,close,volume,wap,barCount}*n`` (no version,
    server versions 124..195)."""
    bar_list = list(bars)
    fields: list[object] = [ServerMessage.HISTORICAL_DATA, req_id, start, end, len(bar_list)]
    for b in bar_list:
        fields += [b.date, b.open, b.high, b.low, b.close, b.volume, b.wap, b.bar_count]
    return encode_message(*fields)
