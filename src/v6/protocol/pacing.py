"""IB's pacing rules, as data (pure): the fake gateway enforces them, :mod:`v6.pacing` obeys them.

From IB's API documentation ("Pacing Limitations", "historical_limitations", "realtime_bars";
``shared/reference/tws-pacing-and-data.md``):

=========================================================  ===========  =====================
limit                                                      window       IB's answer
=========================================================  ===========  =====================
messages sent <= market-data lines / 2 (100 -> 50/s)       1 s          100
no identical historical request (bars <= 30 s)             15 s         162
< 6 historical requests, same contract+exchange+tick type  2 s          162
<= 60 historical requests (BID_ASK counts twice)           10 min       162
<= 50 open historical requests (keepUpToDate included)     concurrent   322
<= 60 new ``reqRealTimeBars``                              10 min       420
market-data lines (default 100)                            concurrent   101
=========================================================  ===========  =====================

Bars of one minute and longer are exempt from the 10-minute limit (IB keeps a soft throttle that
answers slowly, not with an error). Not documented anywhere: whether historical pacing counts per
client id or per login; both sides here assume per login.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from v6.protocol.market_requests import ReqHistoricalData
from v6.validation import require_int, require_range

MESSAGES_PER_SECOND: Final = 50
MESSAGE_WINDOW: Final = 1.0
IDENTICAL_WINDOW: Final = 15.0
SAME_CONTRACT_LIMIT: Final = 5
"""Historical requests for one contract + exchange + tick type within :data:`SAME_CONTRACT_WINDOW`
(IB: "six or more" is a violation)."""
SAME_CONTRACT_WINDOW: Final = 2.0
HISTORICAL_LIMIT: Final = 60
HISTORICAL_WINDOW: Final = 600.0
OPEN_HISTORICAL_LIMIT: Final = 50
REALTIME_BARS_LIMIT: Final = 60
REALTIME_BARS_WINDOW: Final = 600.0
MARKET_DATA_LINES: Final = 100
IDENTICAL_MAX_BAR: Final = 30.0
"""The identical-request rule applies to bars of at most this many seconds."""
EXEMPT_BAR: Final = 60.0
"""Bars of at least this many seconds are exempt from the 10-minute historical limit."""
DOUBLE_WEIGHT: Final = frozenset({"BID_ASK"})
"""``whatToShow`` values IB counts twice toward the 10-minute limit."""

_UNIT_SECONDS: Final = {
    "sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600,
    "day": 86_400, "days": 86_400, "week": 604_800, "weeks": 604_800,
    "month": 2_592_000, "months": 2_592_000,
}  # fmt: skip
_BAR_SIZE = re.compile(r"^\s*([0-9]{1,9})\s+([A-Za-z]+)\s*$")  # ASCII digits only
_DURATION: Final = re.compile(r"^\s*([0-9]{1,9})\s*([SDWMY])\s*$", re.IGNORECASE)
_DURATION_SECONDS: Final = {"S": 1, "D": 86_400, "W": 604_800, "M": 2_592_000, "Y": 31_536_000}


def bar_seconds(bar_size: str) -> float | None:
    """Seconds of one bar of ``bar_size`` (``"5 secs"``, ``"1 min"``, ``"1 day"``, ...); None
    if TWS would not accept it."""
    match = _BAR_SIZE.match(bar_size)
    if match is None or int(match.group(1)) == 0:
        return None
    unit = _UNIT_SECONDS.get(match.group(2).lower())
    return None if unit is None else float(int(match.group(1)) * unit)


def duration_seconds(duration: str) -> float | None:
    """Seconds in an IB duration (``"1800 S"``, ``"1 D"``, ``"2 W"``, ``"1 M"``, ``"1 Y"``);
    None if TWS would not accept it."""
    match = _DURATION.match(duration)
    if match is None:
        return None
    return float(int(match.group(1)) * _DURATION_SECONDS[match.group(2).upper()])


@dataclass(frozen=True)
class HistoricalQuery:
    """What IB's historical rules look at in one ``reqHistoricalData``."""

    contract: str  # the contract's identity (conId, else symbol/type/expiry/strike/right)
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    end: str
    use_rth: bool
    keep_up_to_date: bool

    @property
    def bar(self) -> float | None:
        return bar_seconds(self.bar_size)

    @property
    def weight(self) -> int:
        """Units toward the 10-minute limit (BID_ASK counts twice)."""
        return 2 if self.what_to_show.upper() in DOUBLE_WEIGHT else 1

    @property
    def same_contract_key(self) -> tuple[str, str, str]:
        return (self.contract, self.exchange, self.what_to_show.upper())

    def counts_as_identical(self) -> bool:
        bar = self.bar
        return bar is not None and bar <= IDENTICAL_MAX_BAR

    def counts_toward_window(self) -> bool:
        bar = self.bar
        return bar is None or bar < EXEMPT_BAR


def historical_query(request: ReqHistoricalData) -> HistoricalQuery:
    """What IB's historical rules look at in ``request``; the contract's identity is its conId,
    else ``symbol/secType/expiry/strike/right/currency``."""
    c = request.contract
    identity = str(c.con_id) if c.con_id else "/".join(
        (c.symbol, c.sec_type, c.last_trade_date, str(c.strike), c.right, c.currency)
    )
    return HistoricalQuery(
        identity, c.exchange, request.what_to_show, request.bar_size, request.duration,
        request.end_date_time, request.use_rth, request.keep_up_to_date,
    )  # fmt: skip


@dataclass(frozen=True)
class PacingLimits:
    """IB's pacing limits (defaults: the published ones; ``None`` turns one rule off).

    ``scale`` multiplies every window except the one-second message window, so a test can turn
    ten minutes into six seconds (``scale=0.01``) and still hit every rule."""

    messages_per_second: int | None = MESSAGES_PER_SECOND
    identical_window: float | None = IDENTICAL_WINDOW
    same_contract: int | None = SAME_CONTRACT_LIMIT
    historical: int | None = HISTORICAL_LIMIT
    open_historical: int | None = OPEN_HISTORICAL_LIMIT
    realtime_bars: int | None = REALTIME_BARS_LIMIT
    market_data_lines: int | None = MARKET_DATA_LINES
    scale: float = 1.0

    def __post_init__(self) -> None:
        require_range("scale", self.scale, low=0.0, low_open=True)
        for name in ("messages_per_second", "same_contract", "historical", "open_historical",
                     "realtime_bars", "market_data_lines"):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                require_int(name, value, low=1)
        if self.identical_window is not None:
            require_range("identical_window", self.identical_window, low=0.0, low_open=True)

    @property
    def same_contract_window(self) -> float:
        return SAME_CONTRACT_WINDOW * self.scale

    @property
    def historical_window(self) -> float:
        return HISTORICAL_WINDOW * self.scale

    @property
    def realtime_bars_window(self) -> float:
        return REALTIME_BARS_WINDOW * self.scale

    @property
    def scaled_identical_window(self) -> float | None:
        return None if self.identical_window is None else self.identical_window * self.scale

    def scaled(self, scale: float) -> PacingLimits:
        return replace(self, scale=scale)


NO_PACING: Final = PacingLimits(
    messages_per_second=None, identical_window=None, same_contract=None, historical=None,
    open_historical=None, realtime_bars=None, market_data_lines=None,
)  # fmt: skip
"""Every rule off."""
