"""Contract details as the fake gateway reports them, with trading and liquid hours (pure: the
time is passed in).

Each contract trades on a :class:`MarketHours` schedule (by default :data:`US_EQUITY_HOURS`:
04:00-20:00 trading, 09:30-16:00 liquid, Monday to Friday, US/Eastern), rendered as TWS renders
``tradingHours`` / ``liquidHours``: one ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` session or
``YYYYMMDD:CLOSED`` per day, ``;``-separated, from the day before to six days after today in the
contract's time zone, so a client can tell whether the market is open. Streams flow at any hour:
the hours are reported, not enforced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from v6.errors import ConfigError
from v6.protocol.contract import ContractSpec
from v6.protocol.data_messages import ContractDetailsSpec

_HHMM: Final = re.compile(r"([01][0-9]|2[0-3])[0-5][0-9]")
_WEEKDAYS: Final = frozenset(range(5))
DAYS_BEFORE: Final = 1
DAYS_AFTER: Final = 6

Session = tuple[str, str]
"""Opening and closing time, ``HHMM`` each; a close at or before the open ends the next day
(``("1715", "1700")``: FX; ``("0000", "0000")``: around the clock)."""


@dataclass(frozen=True, slots=True)
class MarketHours:
    """When a contract trades, as its contract details report it (``None``: never)."""

    time_zone_id: str = "US/Eastern"
    trading: Session | None = ("0400", "2000")
    liquid: Session | None = ("0930", "1600")
    weekdays: frozenset[int] = field(default=_WEEKDAYS)
    """Days with sessions, Monday = 0 (the others are ``CLOSED``)."""

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone_id)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"time_zone_id: unknown time zone {self.time_zone_id!r}") from None
        for name in ("trading", "liquid"):
            session = getattr(self, name)
            if session is not None and not (
                len(session) == 2 and all(_HHMM.fullmatch(t) for t in session)
            ):
                raise ConfigError(f"{name} must be None or two HHMM times, got {session!r}")
        if not self.weekdays <= frozenset(range(7)):
            raise ConfigError(f"weekdays must be in 0..6 (Monday = 0), got {set(self.weekdays)}")

    def trading_hours(self, now: float) -> str:
        return _render(self.trading, self.weekdays, self._today(now))

    def liquid_hours(self, now: float) -> str:
        return _render(self.liquid, self.weekdays, self._today(now))

    def is_liquid(self, now: float) -> bool:
        """Inside a liquid session at epoch ``now``."""
        return _inside(self.liquid, self.weekdays, datetime.fromtimestamp(now, self._zone()))

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone_id)

    def _today(self, now: float) -> date:
        return datetime.fromtimestamp(now, self._zone()).date()


US_EQUITY_HOURS: Final = MarketHours()
"""A US stock: 04:00-20:00 trading, 09:30-16:00 liquid, Monday to Friday, New York time."""
ALWAYS_OPEN: Final = MarketHours("UTC", ("0000", "0000"), ("0000", "0000"), frozenset(range(7)))
"""Around the clock, every day."""


def _session_end(day: date, session: Session) -> date:
    return day + timedelta(days=1) if session[1] <= session[0] else day


def _render(session: Session | None, weekdays: frozenset[int], today: date) -> str:
    days = [today + timedelta(days=n) for n in range(-DAYS_BEFORE, DAYS_AFTER + 1)]
    parts = []
    for day in days:
        if session is None or day.weekday() not in weekdays:
            parts.append(f"{day:%Y%m%d}:CLOSED")
        else:
            end = _session_end(day, session)
            parts.append(f"{day:%Y%m%d}:{session[0]}-{end:%Y%m%d}:{session[1]}")
    return ";".join(parts)


def _inside(session: Session | None, weekdays: frozenset[int], now: datetime) -> bool:
    if session is None:
        return False
    for day in (now.date() - timedelta(days=1), now.date()):
        if day.weekday() not in weekdays:
            continue
        start = datetime.combine(day, _time(session[0]), now.tzinfo)
        end = datetime.combine(_session_end(day, session), _time(session[1]), now.tzinfo)
        if start <= now < end:
            return True
    return False


def _time(hhmm: str) -> time_of_day:
    return time_of_day(int(hhmm[:2]), int(hhmm[2:]))


def details_for(
    contract: ContractSpec, con_id: int, hours: MarketHours, now: float
) -> ContractDetailsSpec:
    """The contract details of ``contract`` (its ``con_id`` resolved) at epoch ``now``."""
    symbol = contract.symbol or str(con_id)
    sec_type = contract.sec_type or "STK"
    full = ContractSpec(
        con_id=con_id, symbol=symbol, sec_type=sec_type,
        last_trade_date=contract.last_trade_date, strike=contract.strike, right=contract.right,
        multiplier=contract.multiplier, exchange=contract.exchange or "SMART",
        primary_exchange=contract.primary_exchange, currency=contract.currency or "USD",
        local_symbol=contract.local_symbol or symbol,
        trading_class=contract.trading_class or symbol,
    )  # fmt: skip
    return ContractDetailsSpec(
        full, market_name=full.trading_class, long_name=symbol,
        time_zone_id=hours.time_zone_id, trading_hours=hours.trading_hours(now),
        liquid_hours=hours.liquid_hours(now), stock_type="COMMON" if sec_type == "STK" else "",
    )  # fmt: skip
