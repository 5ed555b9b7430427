"""The fake gateway's defaults and its configuration checks (one style, one place).

Every check raises :class:`~v6.errors.ConfigError` (a ``ValueError``) naming the field and the
allowed range, through the one validation helper of v6 (:mod:`v6.validation`):
``port must be in [0, 65535], got 70000``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from v6.errors import ConfigError
from v6.protocol.codec import MAX_SERVER_VERSION, MIN_SERVER_VERSION
from v6.protocol.pacing import PacingLimits
from v6.testing.broker import (
    DEFAULT_COMMISSION_PER_SHARE,
    DEFAULT_FILL_SIZE,
    DEFAULT_MIN_COMMISSION,
    DEFAULT_SEED,
    AccountState,
)
from v6.testing.gateway.contract_details import US_EQUITY_HOURS, MarketHours
from v6.validation import require_int, require_range

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 0
"""Library default: a free port, read back from ``FakeGateway.port``."""
DEFAULT_MAX_CLIENTS: Final = 32
"""TWS accepts at most 32 simultaneous API clients."""
DEFAULT_PACING_LIMIT: Final = 50
"""Messages per :data:`PACING_WINDOW` a client may send before error 100 (TWS: 50/s)."""
PACING_WINDOW: Final = 1.0
DEFAULT_TICK_RATE: Final = 4.0
"""Price updates per second per market-data subscription; each is a tickPrice + a tickSize."""
DEFAULT_NEXT_ORDER_ID: Final = 1
DEFAULT_HANDSHAKE_TIMEOUT: Final = 5.0
"""Seconds a socket has from accept to ``startApi`` before it is closed."""
MAX_HANDSHAKE_TIMEOUT: Final = 3600.0
DEFAULT_MAX_OUTPUT_BUFFER: Final = 1024 * 1024
"""Bytes of replies a client may leave unread before the gateway stops reading its requests."""
DEFAULT_SLOW_CLIENT_TIMEOUT: Final = 10.0
"""Seconds a client may stay over :data:`DEFAULT_MAX_OUTPUT_BUFFER` before it is disconnected."""
MAX_ACCOUNT_SUMMARIES: Final = 2
"""Active account-summary subscriptions a client may hold; the next one gets error 322."""
DEFAULT_MARKET_INTERVAL: Final = 0.25
"""Seconds between two steps of the simulated quotes (working LMT / STP orders match at each)."""
DEFAULT_PACING_RULES: Final = PacingLimits()
"""IB's published pacing limits (:mod:`v6.protocol.pacing`): enforced unless told otherwise."""
DEFAULT_REALTIME_BAR_INTERVAL: Final = 5.0
"""Seconds between two realtimeBar messages (TWS: one 5-second bar every 5 s), and between two
updates of a kept-up-to-date historical request."""
DEFAULT_HISTORICAL_LATENCY: Final = 0.0
"""Seconds a historical request stays open before its reply."""
DEFAULT_PNL_INTERVAL: Final = 1.0
"""Seconds between two updates of a reqPnL / reqPnLSingle subscription."""


@dataclass(slots=True)
class GatewaySettings:
    """Everything configurable about a gateway, checked at construction (``FakeGateway``'s
    arguments, documented there). Mutable: ``gw.pacing_limit = None`` takes effect at once."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    account_state: AccountState = field(default_factory=AccountState)
    max_clients: int = DEFAULT_MAX_CLIENTS
    pacing_limit: int | None = DEFAULT_PACING_LIMIT
    tick_rate: float = DEFAULT_TICK_RATE
    server_version: int = MAX_SERVER_VERSION
    next_order_id: int = DEFAULT_NEXT_ORDER_ID
    farm_notices: bool = True
    max_account_summaries: int = MAX_ACCOUNT_SUMMARIES
    on_accept: Callable[[float], None] | None = None
    wall_clock: Callable[[], float] = time.time
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT
    max_output_buffer: int = DEFAULT_MAX_OUTPUT_BUFFER
    slow_client_timeout: float | None = DEFAULT_SLOW_CLIENT_TIMEOUT
    seed: int = DEFAULT_SEED
    fill_size: float = DEFAULT_FILL_SIZE
    commission_per_share: float = DEFAULT_COMMISSION_PER_SHARE
    min_commission: float = DEFAULT_MIN_COMMISSION
    market_interval: float | None = DEFAULT_MARKET_INTERVAL
    pacing_rules: PacingLimits | None = DEFAULT_PACING_RULES
    realtime_bar_interval: float = DEFAULT_REALTIME_BAR_INTERVAL
    historical_latency: float = DEFAULT_HISTORICAL_LATENCY
    pnl_interval: float = DEFAULT_PNL_INTERVAL
    market_hours: MarketHours = US_EQUITY_HOURS
    contract_hours: dict[int | str, MarketHours] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_int("port", self.port, low=0, high=65535)
        require_int("max_clients", self.max_clients, low=1, high=1024)
        if self.pacing_limit is not None:
            require_int("pacing_limit", self.pacing_limit, low=1, high=100_000)
        require_tick_rate(self.tick_rate)
        require_int("server_version", self.server_version, low=MIN_SERVER_VERSION,
                    high=MAX_SERVER_VERSION)  # fmt: skip
        require_int("next_order_id", self.next_order_id, low=0, high=2**31 - 1)
        require_int("max_account_summaries", self.max_account_summaries, low=0, high=1000)
        if self.handshake_timeout is not None:
            require_range("handshake_timeout", self.handshake_timeout, low=0, low_open=True,
                          high=MAX_HANDSHAKE_TIMEOUT)  # fmt: skip
        require_int("max_output_buffer", self.max_output_buffer, low=1024, high=2**30)
        if self.slow_client_timeout is not None:
            require_range("slow_client_timeout", self.slow_client_timeout, low=0, low_open=True,
                          high=3600)  # fmt: skip
        require_int("seed", self.seed, low=-(2**63), high=2**63 - 1)
        require_range("fill_size", self.fill_size, low=0, low_open=True)
        require_range("commission_per_share", self.commission_per_share, low=0)
        require_range("min_commission", self.min_commission, low=0)
        if self.market_interval is not None:
            require_range("market_interval", self.market_interval, low=0, low_open=True,
                          high=3600)  # fmt: skip
        require_pacing_rules(self.pacing_rules)
        require_range("realtime_bar_interval", self.realtime_bar_interval, low=0, low_open=True,
                      high=3600)  # fmt: skip
        require_range("historical_latency", self.historical_latency, low=0, high=3600)
        require_range("pnl_interval", self.pnl_interval, low=0, low_open=True, high=3600)
        require_market_hours("market_hours", self.market_hours)
        self.contract_hours = dict(self.contract_hours)
        for key, hours in self.contract_hours.items():
            require_market_hours(f"contract_hours[{key!r}]", hours)

    def hours_of(self, con_id: int, symbol: str) -> MarketHours:
        """The market hours of a contract: by its conId, else its symbol, else the default."""
        hours = self.contract_hours
        return hours.get(con_id) or hours.get(symbol) or self.market_hours

    def connection_time(self) -> str:
        """The handshake's connection time, from :attr:`wall_clock`."""
        return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(self.wall_clock()))


def require_tick_rate(updates_per_second: float) -> None:
    """> 0; ``math.inf`` means as fast as the socket drains."""
    require_range("tick_rate", updates_per_second, low=0, low_open=True, finite=False)


def require_pacing_rules(rules: object) -> None:
    """A :class:`~v6.protocol.pacing.PacingLimits`, or ``None`` (IB's rules not enforced)."""
    if rules is not None and not isinstance(rules, PacingLimits):
        raise ConfigError(
            f"pacing_rules must be a PacingLimits or None, got {type(rules).__name__}: {rules!r}"
        )


def require_market_hours(name: str, hours: object) -> None:
    if not isinstance(hours, MarketHours):
        raise ConfigError(f"{name} must be a MarketHours, got {type(hours).__name__}: {hours!r}")
