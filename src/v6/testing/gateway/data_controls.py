"""``FakeGateway``'s market-data controls: the tick rate, IB's pacing rules, the timing of live
data, and what clients hold right now (a mixin, so that :mod:`.server` stays about sockets and
lifecycle)."""

from __future__ import annotations

from collections import Counter

from v6.protocol.pacing import PacingLimits
from v6.testing.gateway.clients import Phase
from v6.testing.gateway.config import require_pacing_rules, require_tick_rate
from v6.testing.gateway.context import GatewayContext
from v6.testing.gateway.streams import StreamKind
from v6.validation import require_range


class DataControls:
    """Tick rate, IB's pacing rules, live-data timing and live-request counts of a
    :class:`FakeGateway`."""

    _ctx: GatewayContext

    # ---- market data timing

    def set_tick_rate(self, updates_per_second: float) -> None:
        """Price updates per second per subscription (> 0; ``math.inf`` = as fast as possible)."""
        require_tick_rate(updates_per_second)
        self._ctx.settings.tick_rate = float(updates_per_second)

    @property
    def tick_rate(self) -> float:
        return self._ctx.settings.tick_rate

    @property
    def realtime_bar_interval(self) -> float:
        """Seconds between two realtimeBar messages, and between two updates of a kept-up-to-date
        historical request (0 < s <= 3600)."""
        return self._ctx.settings.realtime_bar_interval

    @realtime_bar_interval.setter
    def realtime_bar_interval(self, seconds: float) -> None:
        require_range("realtime_bar_interval", seconds, low=0, low_open=True, high=3600)
        self._ctx.settings.realtime_bar_interval = float(seconds)

    @property
    def historical_latency(self) -> float:
        """Seconds before a historical request is answered (0 <= s <= 3600); the request is open
        (toward IB's 50-open cap) until then."""
        return self._ctx.settings.historical_latency

    @historical_latency.setter
    def historical_latency(self, seconds: float) -> None:
        require_range("historical_latency", seconds, low=0, high=3600)
        self._ctx.settings.historical_latency = float(seconds)

    # ---- IB's pacing rules

    @property
    def pacing_rules(self) -> PacingLimits | None:
        """IB's pacing rules the gateway enforces (``None``: none of them). Replace at runtime,
        e.g. ``gw.pacing_rules = PacingLimits(scale=0.01)``; the windows keep what they counted.
        Raises ``ConfigError`` for anything but a ``PacingLimits`` or ``None``."""
        return self._ctx.settings.pacing_rules

    @pacing_rules.setter
    def pacing_rules(self, rules: PacingLimits | None) -> None:
        require_pacing_rules(rules)
        self._ctx.settings.pacing_rules = rules
        self._ctx.app.market.pacing.limits = rules

    @property
    def pacing_errors(self) -> Counter[int]:
        """Copy of: error code (162, 322, 420, 101) -> requests IB's pacing rules refused, over
        all clients since the gateway was made."""
        return Counter(self._ctx.app.market.pacing.refusals)

    # ---- what clients hold now

    @property
    def market_data_subscriptions(self) -> int:
        """Open streaming reqMktData subscriptions, summed over live clients."""
        return sum(s.state.count(StreamKind.MARKET_DATA) for s in self._ctx.sessions)

    @property
    def market_data_lines(self) -> int:
        """Market-data lines in use over the login (streaming reqMktData, reqRealTimeBars,
        reqTickByTickData)."""
        return sum(s.state.lines for s in self._ctx.sessions if s.phase is Phase.READY)

    @property
    def open_historical_requests(self) -> int:
        """Historical requests open over the login: waiting for their reply (see
        :attr:`historical_latency`) or kept up to date until cancelled."""
        sessions = self._ctx.sessions
        return sum(s.state.count(StreamKind.HISTORICAL) for s in sessions
                   if s.phase is Phase.READY)  # fmt: skip
