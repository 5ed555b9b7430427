"""The market-data room of the fake gateway's TWS application: market data, historical and
real-time bars, tick-by-tick data, PnL and contract details; requests in, replies and live
streams out, through IB's pacing rules and the active data faults.

No sockets and no event loop: a request and the requesting client's state in, framed replies out;
the live requests it opens are :mod:`.streams` in the client's state, which the session's live
loop (:mod:`.ticks`) renders. It is also the :class:`~.streams.StreamFeed` those streams read.

IB's pacing rules (:class:`~.ib_pacing.IbPacingRules`) count per login: what is open is counted
over every client of the gateway (``clients``), and a refused request is answered with IB's error
for its request id, not served and not open. Every new live request is shown to the active
faults (``vet_stream``), which may hold or stop it and answer it with an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final, assert_never

from loguru import logger

from v6.protocol import codec
from v6.protocol.codec import (
    CancelHistoricalData,
    CancelMktData,
    CancelPnL,
    CancelPnLSingle,
    CancelRealTimeBars,
    CancelTickByTickData,
    ReqContractDetails,
    ReqHistoricalData,
    ReqMktData,
    ReqPnL,
    ReqPnLSingle,
    ReqRealTimeBars,
    ReqTickByTickData,
)
from v6.protocol.data_messages import (
    TICK_BY_TICK_TYPES,
    TickByTickType,
    contract_data,
    contract_data_end,
)
from v6.protocol.pacing import historical_query
from v6.testing.broker import Broker, Quote, instrument_id
from v6.testing.gateway.clients import ClientState
from v6.testing.gateway.config import GatewaySettings
from v6.testing.gateway.contract_details import details_for
from v6.testing.gateway.ib_pacing import IbPacingRules, PacingRefusal
from v6.testing.gateway.market import HistoryCache, base_price, kept_up_to_date_reply
from v6.testing.gateway.streams import (
    HistoricalStream,
    LiveStream,
    PnlSingleStream,
    PnlStream,
    RealTimeBarStream,
    StreamKind,
    TickByTickStream,
    TickStream,
)
from v6.testing.gateway.trading import positions_for

MarketRequest = (
    ReqMktData
    | CancelMktData
    | ReqHistoricalData
    | CancelHistoricalData
    | ReqRealTimeBars
    | CancelRealTimeBars
    | ReqTickByTickData
    | CancelTickByTickData
    | ReqPnL
    | CancelPnL
    | ReqPnLSingle
    | CancelPnLSingle
    | ReqContractDetails
)
_CANCELS: Final = {
    CancelMktData: StreamKind.MARKET_DATA,
    CancelHistoricalData: StreamKind.HISTORICAL,
    CancelRealTimeBars: StreamKind.REALTIME_BARS,
    CancelTickByTickData: StreamKind.TICK_BY_TICK,
    CancelPnL: StreamKind.PNL,
    CancelPnLSingle: StreamKind.PNL_SINGLE,
}
VetStream = Callable[[LiveStream], list[tuple[int, str]]]
"""Shows a new live request to the active faults; the errors (code, text) its client gets."""
_Replies = list[bytes]
_NO_REPLY: Final[_Replies] = []


class MarketDataService:
    """Market-data requests -> replies and live streams, under IB's pacing rules.

    ``clients`` gives every client of the login (the gateway's API clients); without it only the
    requesting client is counted. ``vet_stream`` shows each new live request to the active
    faults. ``clock`` is the monotonic clock the live loop runs on.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        broker: Broker,
        clients: Callable[[], Iterable[ClientState]] | None = None,
        vet_stream: VetStream | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.history = HistoryCache()
        self.pacing = IbPacingRules(settings.pacing_rules)
        self._clients = clients
        self._vet_stream = vet_stream
        self.clock = clock

    def handle(self, client: ClientState, request: MarketRequest) -> _Replies:
        match request:
            case ReqMktData():
                return self._market_data(client, request)
            case ReqHistoricalData():
                return self._historical(client, request)
            case ReqRealTimeBars():
                return self._realtime_bars(client, request)
            case ReqTickByTickData():
                return self._tick_by_tick(client, request)
            case ReqPnL() | ReqPnLSingle():
                return self._pnl(client, request)
            case ReqContractDetails():
                return self._contract_details(request)
            case (
                CancelMktData()
                | CancelHistoricalData()
                | CancelRealTimeBars()
                | CancelTickByTickData()
                | CancelPnL()
                | CancelPnLSingle()
            ):
                client.streams.pop((_CANCELS[type(request)], request.req_id), None)
                return _NO_REPLY
            case _:
                assert_never(request)

    # ---- what the login holds (every client)

    def login_clients(self, client: ClientState) -> Iterable[ClientState]:
        return (client,) if self._clients is None else self._clients()

    def lines_in_use(self, client: ClientState) -> int:
        """Market-data lines held over the login."""
        return sum(c.lines for c in self.login_clients(client))

    def open_historical(self, client: ClientState) -> int:
        """Historical requests open over the login (waiting for their reply, or kept up to
        date)."""
        return sum(c.count(StreamKind.HISTORICAL) for c in self.login_clients(client))

    # ---- StreamFeed: what the live streams read

    @property
    def realtime_bar_interval(self) -> float:
        return self.settings.realtime_bar_interval

    @property
    def pnl_interval(self) -> float:
        return self.settings.pnl_interval

    def wall_clock(self) -> float:
        return self.settings.wall_clock()

    def quote(self, instrument: int) -> Quote:
        return self.broker.quote(instrument)

    def history_reply(self, request: ReqHistoricalData, now: float) -> bytes:
        """The historicalData reply (bars + end) to ``request`` at ``now``; a kept-up-to-date
        request also gets the current, unfinished bar."""
        if request.keep_up_to_date:
            return kept_up_to_date_reply(request, now)
        return self.history.reply(request, now)

    def pnl(self, account: str) -> tuple[float, float, float]:
        held = positions_for(self.settings.account_state, self.broker, account)
        unrealized = round(sum(p.unrealized_pnl for p in held), 2)
        realized = round(sum(p.realized_pnl for p in held), 2)
        return round(unrealized + realized, 2), unrealized, realized

    def pnl_single(self, account: str, con_id: int) -> tuple[float, float, float, float, float]:
        held = positions_for(self.settings.account_state, self.broker, account)
        for p in held:
            if p.con_id == con_id:
                unrealized, realized = round(p.unrealized_pnl, 2), round(p.realized_pnl, 2)
                return (p.quantity, round(unrealized + realized, 2), unrealized, realized,
                        round(p.market_value, 2))  # fmt: skip
        return (0.0, 0.0, 0.0, 0.0, 0.0)

    # ---- requests

    @staticmethod
    def _refuse(client: ClientState, req_id: int, refusal: PacingRefusal) -> _Replies:
        """IB's error for a request over one of its rules."""
        logger.info("fake gateway: {} request {} refused by IB's {} rule ({})", client.peer,
                    req_id, refusal.rule, refusal.code)  # fmt: skip
        return [client.error(req_id, refusal.code, refusal.text)]

    def _open(self, client: ClientState, stream: LiveStream) -> _Replies:
        """Register a live request; the active faults may hold or stop it, and answer it."""
        errors = self._vet_stream(stream) if self._vet_stream is not None else []
        client.streams[stream.key] = stream  # the session's live loop streams it from now on
        return [client.error(stream.req_id, code, text) for code, text in errors]

    def _market_data(self, client: ClientState, request: ReqMktData) -> _Replies:
        stream = TickStream(request.req_id, instrument_id(request.contract))
        if request.snapshot:
            first = stream.render(1, self.quote(stream.instrument))
            return [first, codec.tick_snapshot_end(request.req_id)]
        refusal = self._admit_line(client, stream)
        if refusal is not None:
            return self._refuse(client, request.req_id, refusal)
        replies = self._open(client, stream)
        if stream.flowing:
            replies.append(stream.render(1, self.quote(stream.instrument)))
            stream.updates = 1
        return replies

    def _admit_line(self, client: ClientState, stream: LiveStream) -> PacingRefusal | None:
        self.pacing.limits = self.settings.pacing_rules
        held = self.lines_in_use(client) - (stream.key in client.streams)  # a re-request
        if stream.kind is StreamKind.REALTIME_BARS:
            return self.pacing.admit_realtime_bars(self.clock(), held)
        return self.pacing.admit_line(held)

    def _historical(self, client: ClientState, request: ReqHistoricalData) -> _Replies:
        self.pacing.limits = self.settings.pacing_rules
        key = (StreamKind.HISTORICAL, request.req_id)
        open_now = self.open_historical(client) - (key in client.streams)
        refusal = self.pacing.admit_historical(self.clock(), historical_query(request), open_now)
        if refusal is not None:
            return self._refuse(client, request.req_id, refusal)
        now, latency = self.clock(), self.settings.historical_latency
        stream = HistoricalStream(request, instrument_id(request.contract), now + latency)
        replies = self._open(client, stream)
        if latency or not stream.flowing:
            return replies  # the live loop replies when it is due (and flows)
        reply, next_in = stream.step(self)
        stream.updates = 1
        if next_in is None:
            del client.streams[key]  # answered: no longer open
        else:
            stream.next_due = now + next_in
        return [*replies, reply]

    def _realtime_bars(self, client: ClientState, request: ReqRealTimeBars) -> _Replies:
        contract = request.contract
        stream = RealTimeBarStream(
            request.req_id, instrument_id(contract), base_price(contract.con_id, contract.symbol),
            self.clock() + self.settings.realtime_bar_interval,
        )  # fmt: skip
        refusal = self._admit_line(client, stream)
        if refusal is not None:
            return self._refuse(client, request.req_id, refusal)
        return self._open(client, stream)

    def _tick_by_tick(self, client: ClientState, request: ReqTickByTickData) -> _Replies:
        tick_type = TICK_BY_TICK_TYPES.get(request.tick_type, TickByTickType.LAST)
        stream = TickByTickStream(request.req_id, instrument_id(request.contract), tick_type,
                                  self.settings.wall_clock)  # fmt: skip
        refusal = self._admit_line(client, stream)
        if refusal is not None:
            return self._refuse(client, request.req_id, refusal)
        return self._open(client, stream)

    def _pnl(self, client: ClientState, request: ReqPnL | ReqPnLSingle) -> _Replies:
        now = self.clock()  # the first update at once, then every pnl_interval
        if isinstance(request, ReqPnL):
            return self._open(client, PnlStream(request.req_id, request.account, now))
        return self._open(client, PnlSingleStream(request.req_id, request.account,
                                                  request.con_id, now))  # fmt: skip

    def _contract_details(self, request: ReqContractDetails) -> _Replies:
        contract = request.contract
        con_id = abs(instrument_id(contract))  # an unqualified contract gets a stable stand-in
        hours = self.settings.hours_of(con_id, contract.symbol)
        details = details_for(contract, con_id, hours, self.wall_clock())
        return [contract_data(request.req_id, details), contract_data_end(request.req_id)]
