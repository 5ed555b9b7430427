"""The market-data room of the fake gateway's TWS application: market-data, historical and
real-time-bar requests in, replies and live streams out, through IB's pacing rules.

No sockets and no event loop: a request and the requesting client's state in, framed replies out;
the live requests it opens are :mod:`.streams` in the client's state, which the session's live
loop (:mod:`.ticks`) renders. It is also the :class:`~.streams.StreamFeed` those streams read.

IB's pacing rules (:class:`~.ib_pacing.IbPacingRules`) count per login: what is open is counted
over every client of the gateway (``clients``), and a refused request is answered with IB's error
for its request id, not served and not open.
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
    CancelRealTimeBars,
    ReqHistoricalData,
    ReqMktData,
    ReqRealTimeBars,
)
from v6.protocol.pacing import historical_query
from v6.testing.broker import Broker, Quote, instrument_id
from v6.testing.gateway.clients import ClientState
from v6.testing.gateway.config import GatewaySettings
from v6.testing.gateway.ib_pacing import IbPacingRules, PacingRefusal
from v6.testing.gateway.market import HistoryCache, bar_step, base_price
from v6.testing.gateway.streams import (
    HistoricalStream,
    LiveStream,
    RealTimeBarStream,
    StreamKind,
    TickStream,
)

MarketRequest = (
    ReqMktData
    | CancelMktData
    | ReqHistoricalData
    | CancelHistoricalData
    | ReqRealTimeBars
    | CancelRealTimeBars
)
_Replies = list[bytes]
_NO_REPLY: Final[_Replies] = []


class MarketDataService:
    """Market-data requests -> replies and live streams, under IB's pacing rules.

    ``clients`` gives every client of the login (the gateway's API clients); without it only the
    requesting client is counted. ``clock`` is the monotonic clock the live loop runs on.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        broker: Broker,
        clients: Callable[[], Iterable[ClientState]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.history = HistoryCache()
        self.pacing = IbPacingRules(settings.pacing_rules)
        self._clients = clients
        self.clock = clock

    def handle(self, client: ClientState, request: MarketRequest) -> _Replies:
        match request:
            case ReqMktData():
                return self._market_data(client, request)
            case ReqHistoricalData():
                return self._historical(client, request)
            case ReqRealTimeBars():
                return self._realtime_bars(client, request)
            case CancelMktData(req_id=req_id):
                return self._cancel(client, StreamKind.MARKET_DATA, req_id)
            case CancelHistoricalData(req_id=req_id):
                return self._cancel(client, StreamKind.HISTORICAL, req_id)
            case CancelRealTimeBars(req_id=req_id):
                return self._cancel(client, StreamKind.REALTIME_BARS, req_id)
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

    def wall_clock(self) -> float:
        return self.settings.wall_clock()

    def quote(self, instrument: int) -> Quote:
        return self.broker.quote(instrument)

    def history_reply(self, request: ReqHistoricalData, now: float) -> bytes:
        """The historicalData reply (bars + end) to ``request`` at ``now``; a kept-up-to-date
        request also gets the current, unfinished bar."""
        if request.keep_up_to_date:
            now += bar_step(request.bar_size)
        return self.history.reply(request, now)

    # ---- requests

    @staticmethod
    def _refuse(client: ClientState, req_id: int, refusal: PacingRefusal) -> _Replies:
        """IB's error for a request over one of its rules."""
        logger.info("fake gateway: {} request {} refused by IB's {} rule ({})", client.peer,
                    req_id, refusal.rule, refusal.code)  # fmt: skip
        return [client.error(req_id, refusal.code, refusal.text)]

    def _market_data(self, client: ClientState, request: ReqMktData) -> _Replies:
        stream = TickStream(request.req_id, instrument_id(request.contract))
        first = stream.render(1, self.quote(stream.instrument))
        stream.updates = 1
        if request.snapshot:
            return [first, codec.tick_snapshot_end(request.req_id)]
        refusal = self._admit_line(client, stream)
        if refusal is not None:
            return self._refuse(client, request.req_id, refusal)
        client.streams[stream.key] = stream  # the session's live loop streams it from now on
        return [first]

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
        latency = self.settings.historical_latency
        if not latency and not request.keep_up_to_date:
            return [self.history.reply(request, self.wall_clock())]
        now = self.clock()
        stream = HistoricalStream(request, instrument_id(request.contract), now + latency)
        client.streams[stream.key] = stream
        if latency:
            return _NO_REPLY  # the live loop replies when it is due
        reply, next_in = stream.step(self)
        stream.updates = 1
        stream.next_due = now + (next_in or 0.0)
        return [reply]

    def _realtime_bars(self, client: ClientState, request: ReqRealTimeBars) -> _Replies:
        contract = request.contract
        stream = RealTimeBarStream(
            request.req_id, instrument_id(contract), base_price(contract.con_id, contract.symbol),
            self.clock() + self.settings.realtime_bar_interval,
        )  # fmt: skip
        refusal = self._admit_line(client, stream)
        if refusal is not None:
            return self._refuse(client, request.req_id, refusal)
        client.streams[stream.key] = stream
        return _NO_REPLY

    @staticmethod
    def _cancel(client: ClientState, kind: StreamKind, req_id: int) -> _Replies:
        client.streams.pop((kind, req_id), None)
        return _NO_REPLY
