"""A fake TWS / IB Gateway: an asyncio TCP server speaking the TWS API socket protocol.

Unmodified ``ib_async`` and ``ibapi`` clients connect to it over real sockets. All protocol
knowledge lives in the pure codec (:mod:`v6.protocol.codec`); this package is its I/O edge, in
rooms:

* :mod:`.server`: :class:`FakeGateway`, lifecycle, observation API, the public fault methods;
* :mod:`.client_session`: :class:`~.client_session.ClientSession`, one socket (I/O, pacing,
  phase, output limit), seeing the gateway only through a :class:`~.context.GatewayContext`
  (:mod:`.context`);
* :mod:`.clients`: what the rooms share about one client (phase, state, snapshot, and
  :class:`~.clients.ClientSocket`, the socket as the context and the tick streams see it);
* :mod:`.outbox`: the replies waiting for one socket (order, latency, batching, held output);
* :mod:`.streams`: one client's live requests as streams (pure); :mod:`.ticks`: its live loop,
  putting them on the wire;
* :mod:`.intake`: what one client may make the gateway do (pacing, counted reports; pure);
* :mod:`.app`: the "TWS application", requests -> replies;
* :mod:`.market_data`: its market-data room (market data, historical and real-time bars);
  :mod:`.ib_pacing`: IB's pacing rules, enforced there (pure);
* :mod:`.trading`: its trading room (orders, executions, positions, broker events as messages);
* :mod:`.controls`: the public trading controls (quotes, forced fills, order faults, restart);
  :mod:`.data_controls`: the public market-data controls (tick rate, pacing rules, live timing);
* :mod:`.market`: bars and ticks (pure);
* :mod:`.faults`: faults as objects hooked at accept, hello, request, send, flush, broker
  events and live requests, switched on and off through ``gw.faults`` (:class:`Faults`);
  :mod:`.order_faults` and :mod:`.data_faults`: the order and the live-data faults;
* :mod:`.contract_details`: contract details and market hours (pure);
* :mod:`.config`: defaults and configuration checks.

Behaviour, as a real TWS (as the ib_async and ibapi sources and IB's documentation describe it):

* handshake: answers ``min(server_version, client_max)``; closes at once on bad magic, a bad hello
  or no common version; sends nothing but the version answer until ``startApi``;
* after ``startApi``: managedAccounts, nextValidId, farm notices 2104/2106/2158;
* startup sync of ``ib_async.IB.connectAsync``; reqCurrentTime, reqIds, reqManagedAccts;
* trading against a simulated broker at "IB" (:mod:`v6.testing.broker`): placeOrder, cancelOrder,
  reqGlobalCancel, open / completed orders, executions with filters, positions; events go to the
  owning client id (and client 0 after reqAutoOpenOrders(True)); a malformed placeOrder gets
  error 201 for its order id;
* account summary subscriptions, at most :data:`MAX_ACCOUNT_SUMMARIES` per client (then 322);
* market data streams (tickPrice + tickSize), historical bars (also kept up to date), real-time
  bars, tick-by-tick data, PnL and PnL of one position, contract details with market hours;
* live-data faults as TWS shows them: a silent stream, a farm flap, a competing session, 10182;
* IB's pacing rules over all clients (one login): 162, 322, 420 and 101, with IB's texts;
* a duplicate live client id gets 326 and the socket is closed;
* pacing: above ``pacing_limit`` messages per second a client's messages are dropped and it gets
  error 100 (once per second while it keeps exceeding);
* a garbage frame (well framed, not a message) counts toward pacing and is logged (at most once a
  second per client, with a count); an unknown message id is ignored; a framing error (oversized
  length) closes that client. Nothing a client sends affects others;
* a socket has ``handshake_timeout`` to reach startApi; when ``max_clients`` are open, a new socket
  takes the place of the oldest unfinished handshake;
* a client that leaves more than ``max_output_buffer`` bytes of replies unread is not read from
  until it catches up, and is disconnected after ``slow_client_timeout``.
"""

from typing import Final

from v6.protocol.codec import ClientMessage
from v6.protocol.codes import FARM_NOTICES, SYSTEM_MESSAGES, ErrorCode
from v6.testing.gateway.clients import ClientInfo, LiveRequest, Phase
from v6.testing.gateway.config import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HISTORICAL_LATENCY,
    DEFAULT_HOST,
    DEFAULT_MARKET_INTERVAL,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_OUTPUT_BUFFER,
    DEFAULT_NEXT_ORDER_ID,
    DEFAULT_PACING_LIMIT,
    DEFAULT_PACING_RULES,
    DEFAULT_PNL_INTERVAL,
    DEFAULT_PORT,
    DEFAULT_REALTIME_BAR_INTERVAL,
    DEFAULT_SLOW_CLIENT_TIMEOUT,
    DEFAULT_TICK_RATE,
    MAX_ACCOUNT_SUMMARIES,
    PACING_WINDOW,
)
from v6.testing.gateway.contract_details import ALWAYS_OPEN, US_EQUITY_HOURS, MarketHours
from v6.testing.gateway.data_faults import (
    CompetingSession,
    FailLiveUpdates,
    FarmFlap,
    SilenceInstrument,
    SilenceStream,
)
from v6.testing.gateway.faults import (
    BrokenHandshake,
    Fault,
    Faults,
    HandshakeFault,
    HookVerdict,
    IgnoreRequests,
    Latency,
    LiveStreams,
    Stall,
    StreamOwner,
)
from v6.testing.gateway.ib_pacing import IbPacingRules, PacingRefusal
from v6.testing.gateway.market import (
    MAX_HISTORICAL_BARS,
    bar_at,
    bar_step,
    base_price,
    make_bars,
    served_seconds,
)
from v6.testing.gateway.order_faults import (
    CloseAfterPlaceOrder,
    DropCommissionReports,
    DropExecutions,
    ExecBeforeOpenOrder,
    HoldOrderStatus,
)
from v6.testing.gateway.server import FakeGateway, format_addresses
from v6.testing.gateway.streams import HISTORICAL_FARM, MARKET_DATA_FARM, StreamKind

STARTUP_SYNC_REQUESTS: Final = frozenset(
    {
        ClientMessage.REQ_POSITIONS,
        ClientMessage.REQ_OPEN_ORDERS,
        ClientMessage.REQ_COMPLETED_ORDERS,
        ClientMessage.REQ_ACCOUNT_UPDATES,
        ClientMessage.REQ_ACCOUNT_UPDATES_MULTI,
        ClientMessage.REQ_EXECUTIONS,
    }
)
"""The requests ``ib_async.IB.connectAsync`` sends after the API is ready; pass to
:meth:`FakeGateway.ignore_requests` for a "sync never completes" fault."""

__all__ = [
    "ALWAYS_OPEN",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_HISTORICAL_LATENCY",
    "DEFAULT_HOST",
    "DEFAULT_MARKET_INTERVAL",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_MAX_OUTPUT_BUFFER",
    "DEFAULT_NEXT_ORDER_ID",
    "DEFAULT_PACING_LIMIT",
    "DEFAULT_PACING_RULES",
    "DEFAULT_PNL_INTERVAL",
    "DEFAULT_PORT",
    "DEFAULT_REALTIME_BAR_INTERVAL",
    "DEFAULT_SLOW_CLIENT_TIMEOUT",
    "DEFAULT_TICK_RATE",
    "FARM_NOTICES",
    "HISTORICAL_FARM",
    "MARKET_DATA_FARM",
    "MAX_ACCOUNT_SUMMARIES",
    "MAX_HISTORICAL_BARS",
    "PACING_WINDOW",
    "STARTUP_SYNC_REQUESTS",
    "SYSTEM_MESSAGES",
    "US_EQUITY_HOURS",
    "BrokenHandshake",
    "ClientInfo",
    "CloseAfterPlaceOrder",
    "CompetingSession",
    "DropCommissionReports",
    "DropExecutions",
    "ErrorCode",
    "ExecBeforeOpenOrder",
    "FailLiveUpdates",
    "FakeGateway",
    "FarmFlap",
    "Fault",
    "Faults",
    "HandshakeFault",
    "HoldOrderStatus",
    "HookVerdict",
    "IbPacingRules",
    "IgnoreRequests",
    "Latency",
    "LiveRequest",
    "LiveStreams",
    "MarketHours",
    "PacingRefusal",
    "Phase",
    "SilenceInstrument",
    "SilenceStream",
    "Stall",
    "StreamKind",
    "StreamOwner",
    "bar_at",
    "bar_step",
    "base_price",
    "format_addresses",
    "make_bars",
    "served_seconds",
]
