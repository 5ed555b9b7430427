"""What one subscription asks IB for, by kind: everything needed to ask again (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ib_async import Contract, TagValue


class FeedKind(StrEnum):
    MARKET_DATA = "market_data"
    TICK_BY_TICK = "tick_by_tick"
    REALTIME_BARS = "realtime_bars"
    HISTORICAL_BARS = "historical_bars"
    PNL = "pnl"
    PNL_SINGLE = "pnl_single"


#: The data-farm family each kind streams from: a farm notice (2103/2104 market data,
#: 2105/2106 historical) concerns the feeds of its family only.
FARM_FAMILY: dict[FeedKind, str] = {
    FeedKind.MARKET_DATA: "market_data",
    FeedKind.TICK_BY_TICK: "market_data",
    FeedKind.REALTIME_BARS: "market_data",
    FeedKind.HISTORICAL_BARS: "historical_data",
}


@dataclass(frozen=True)
class MarketData:
    contract: Contract
    generic_ticks: str = ""
    options: tuple[TagValue, ...] = ()
    kind: FeedKind = field(default=FeedKind.MARKET_DATA, init=False)


@dataclass(frozen=True)
class TickByTick:
    contract: Contract
    tick_type: str = "Last"  # Last, AllLast, BidAsk or MidPoint
    number_of_ticks: int = 0
    ignore_size: bool = False
    kind: FeedKind = field(default=FeedKind.TICK_BY_TICK, init=False)


@dataclass(frozen=True)
class RealtimeBars:
    contract: Contract
    bar_size: int = 5
    what_to_show: str = "TRADES"
    use_rth: bool = False
    options: tuple[TagValue, ...] = ()
    kind: FeedKind = field(default=FeedKind.REALTIME_BARS, init=False)


@dataclass(frozen=True)
class HistoricalBars:
    """A keepUpToDate bar series: its first request asks for ``duration``; a replay asks for
    what it missed (see :mod:`v6.data.gaps`)."""

    contract: Contract
    duration: str
    bar_size: str
    what_to_show: str = "TRADES"
    use_rth: bool = True
    format_date: int = 1
    kind: FeedKind = field(default=FeedKind.HISTORICAL_BARS, init=False)


@dataclass(frozen=True)
class PnLOf:
    account: str
    model_code: str = ""
    kind: FeedKind = field(default=FeedKind.PNL, init=False)


@dataclass(frozen=True)
class PnLSingleOf:
    account: str
    model_code: str
    con_id: int
    kind: FeedKind = field(default=FeedKind.PNL_SINGLE, init=False)


Spec = MarketData | TickByTick | RealtimeBars | HistoricalBars | PnLOf | PnLSingleOf


def contract_of(spec: Spec) -> Contract | None:
    return None if isinstance(spec, PnLOf | PnLSingleOf) else spec.contract


def feed_name(spec: Spec) -> str:
    """A short name for logs and health: ``AAPL (265598)``, ``PnL DU123``."""
    match spec:
        case PnLOf(account=account):
            return f"PnL {account}"
        case PnLSingleOf(account=account, con_id=con_id):
            return f"PnL {account} {con_id}"
    c = spec.contract
    name = c.localSymbol or c.symbol or c.secType or "contract"
    return f"{name} ({c.conId})" if c.conId else name
