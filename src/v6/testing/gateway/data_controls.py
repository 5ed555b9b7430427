"""``FakeGateway``'s market-data controls: the tick rate, IB's pacing rules, the timing of live
data, market hours, the data faults, and what clients hold right now (a mixin, so that
:mod:`.server` stays about sockets and lifecycle)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from v6.protocol.pacing import PacingLimits
from v6.testing.gateway.clients import LiveRequest, Phase
from v6.testing.gateway.config import (
    require_market_hours,
    require_pacing_rules,
    require_tick_rate,
)
from v6.testing.gateway.context import GatewayContext
from v6.testing.gateway.contract_details import MarketHours
from v6.testing.gateway.data_faults import (
    CompetingSession,
    FailLiveUpdates,
    FarmFlap,
    SilenceInstrument,
    SilenceStream,
)
from v6.testing.gateway.faults import Faults
from v6.testing.gateway.streams import StreamKind
from v6.validation import require_range


class DataControls:
    """Tick rate, IB's pacing rules, live-data timing, market hours, data faults and live
    requests of a :class:`FakeGateway`."""

    _ctx: GatewayContext

    if TYPE_CHECKING:

        @property
        def faults(self) -> Faults: ...

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

    @property
    def live_requests(self) -> tuple[LiveRequest, ...]:
        """Every live request at the gateway now (streaming market data, real-time bars,
        tick-by-tick, open historical requests, PnL), per API client, with its update count."""
        return tuple(LiveRequest.of(owner.client_id, stream)
                     for owner, stream in self._ctx.live_streams())  # fmt: skip

    def live_request_counts(self) -> Counter[tuple[int | None, StreamKind, int]]:
        """(client id, kind, contract) -> live requests now: "exactly one per subscription"."""
        return Counter((r.client_id, r.kind, r.instrument) for r in self.live_requests)

    def stream_updates(
        self, req_id: int, client_id: int | None = None, kind: StreamKind | None = None
    ) -> int:
        """Updates sent so far by the live request ``req_id`` (of ``client_id`` / of ``kind``
        when given). Raises ``LookupError`` unless exactly one live request matches."""
        found = [r for r in self.live_requests if r.req_id == req_id
                 and client_id in (None, r.client_id) and kind in (None, r.kind)]  # fmt: skip
        if len(found) != 1:
            raise LookupError(f"{len(found)} live requests match req_id {req_id}: {found}")
        return found[0].updates

    # ---- market hours

    def set_market_hours(self, hours: MarketHours, contract: int | str | None = None) -> None:
        """The trading and liquid hours contract details report, for one contract (its conId or
        symbol) or, with ``contract`` None, for every contract not set on its own."""
        require_market_hours("hours", hours)
        if contract is None:
            self._ctx.settings.market_hours = hours
        else:
            self._ctx.settings.contract_hours[contract] = hours

    # ---- data faults (each a shortcut to gw.faults, see v6.testing.gateway.data_faults)

    def silence_stream(self, req_id: int, client_id: int | None = None, on: bool = True) -> None:
        """The live request ``req_id`` (of ``client_id``, else of every client) sends nothing;
        everything else is answered. ``on=False`` lets it flow again; a cancel and a new request
        for it flows at once."""
        fault = SilenceStream(req_id, client_id)
        if on:
            self.faults.switch_on(fault)
        else:
            self.faults.switch_off(fault)

    def silence_instrument(self, con_id: int, on: bool = True) -> None:
        """Every live request for the contract ``con_id``, and every new one, sends nothing
        (``on=False``: they flow again)."""
        fault = SilenceInstrument(con_id)
        if on:
            self.faults.switch_on(fault)
        else:
            self.faults.switch_off(fault)

    def farm_flap(self, farm: str, seconds: float) -> None:
        """The data farm ``farm`` breaks (2103, or 2105 for an HMDS farm) for ``seconds``, then
        is OK again (2104 / 2106); its streams stop until requested again."""
        self.faults.switch_on(FarmFlap(farm, seconds))

    def competing_session(self, seconds: float = 0.0) -> None:
        """10197 to every market-data subscription (a burst), which stop; for ``seconds``, new
        ones too."""
        self.faults.switch_on(CompetingSession(seconds))

    def fail_live_updates(self, req_id: int, client_id: int | None = None) -> None:
        """10182 for the live request ``req_id`` (of ``client_id``, else of every client); its
        stream stops."""
        self.faults.switch_on(FailLiveUpdates(req_id, client_id))
