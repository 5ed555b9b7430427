"""The "TWS application" of the fake gateway: typed requests in, reply bytes out.

No sockets and no event loop: :meth:`TwsApp.handle` takes one request and the requesting client's
:class:`ClientState` and returns the framed replies, in order. The session writes them. The
dispatch is a ``match`` over every registered request type ending in ``assert_never``, so mypy
flags a request added to the codec and not handled here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final, assert_never

from loguru import logger

from v6.protocol import codec
from v6.protocol.codec import (
    CancelAccountSummary,
    CancelAccountUpdatesMulti,
    CancelHistoricalData,
    CancelMktData,
    CancelOrder,
    CancelPnL,
    CancelPnLSingle,
    CancelPositions,
    CancelRealTimeBars,
    CancelTickByTickData,
    PlaceOrder,
    ReqAccountSummary,
    ReqAccountUpdates,
    ReqAccountUpdatesMulti,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqContractDetails,
    ReqCurrentTime,
    ReqExecutions,
    ReqGlobalCancel,
    ReqHistoricalData,
    ReqIds,
    ReqManagedAccounts,
    ReqMktData,
    ReqOpenOrders,
    ReqPnL,
    ReqPnLSingle,
    ReqPositions,
    ReqRealTimeBars,
    ReqTickByTickData,
    Request,
    StartApi,
)
from v6.protocol.codes import (
    FARM_NOTICES,
    SYSTEM_MESSAGES,
    TEXT_ACCOUNT_SUMMARY_LIMIT,
    ErrorCode,
)
from v6.testing.broker import Broker
from v6.testing.gateway.clients import ClientState
from v6.testing.gateway.config import GatewaySettings
from v6.testing.gateway.market_data import MarketDataService, VetStream
from v6.testing.gateway.trading import Trading, positions_for, values_for

_Replies = list[bytes]
_SessionRequest = ReqIds | ReqCurrentTime | ReqManagedAccounts
_AccountRequest = (
    ReqAccountUpdates
    | ReqAccountUpdatesMulti
    | CancelAccountUpdatesMulti
    | ReqAccountSummary
    | CancelAccountSummary
)
_NO_REPLY: Final[_Replies] = []


class TwsApp:
    """Requests -> replies, reading the gateway's (mutable) :class:`GatewaySettings`.

    ``clients`` gives every API client of the gateway (IB's pacing rules count per login);
    without it, only the requesting client is counted. ``vet_stream`` shows each new live
    request to the active faults."""

    def __init__(
        self,
        settings: GatewaySettings,
        broker: Broker,
        clients: Callable[[], Iterable[ClientState]] | None = None,
        vet_stream: VetStream | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.trading = Trading(settings, broker)
        self.market = MarketDataService(settings, broker, clients, vet_stream)

    def welcome(self, client: ClientState) -> _Replies:
        """What TWS sends after ``startApi``: accounts, the next order id, farm notices."""
        s = self.settings
        out = [
            codec.managed_accounts(s.account_state.accounts),
            codec.next_valid_id(self.broker.next_order_id),
        ]
        if s.farm_notices:
            out += [client.error(codec.NO_REQUEST_ID, code, SYSTEM_MESSAGES[code])
                    for code in FARM_NOTICES]  # fmt: skip
        return out

    def handle(self, client: ClientState, request: Request) -> _Replies:
        """The replies to one request of an API-ready client."""
        match request:
            case StartApi():
                return _NO_REPLY  # a second startApi on a ready session
            case ReqIds() | ReqCurrentTime() | ReqManagedAccounts():
                return self._session(request)
            case (
                ReqAccountUpdates()
                | ReqAccountUpdatesMulti()
                | CancelAccountUpdatesMulti()
                | ReqAccountSummary()
                | CancelAccountSummary()
            ):
                return self._account(client, request)
            case (
                PlaceOrder()
                | CancelOrder()
                | ReqGlobalCancel()
                | ReqOpenOrders()
                | ReqAutoOpenOrders()
                | ReqCompletedOrders()
                | ReqExecutions()
                | ReqPositions()
                | CancelPositions()
            ):
                return self.trading.handle(client, request)
            case (
                ReqMktData()
                | CancelMktData()
                | ReqHistoricalData()
                | CancelHistoricalData()
                | ReqRealTimeBars()
                | CancelRealTimeBars()
                | ReqTickByTickData()
                | CancelTickByTickData()
                | ReqPnL()
                | CancelPnL()
                | ReqPnLSingle()
                | CancelPnLSingle()
                | ReqContractDetails()
            ):
                return self.market.handle(client, request)
            case _:
                assert_never(request)

    def _session(self, request: _SessionRequest) -> _Replies:
        s = self.settings
        match request:
            case ReqIds():
                return [codec.next_valid_id(self.broker.next_order_id)]
            case ReqCurrentTime():
                return [codec.current_time(int(s.wall_clock()))]
            case ReqManagedAccounts():
                return [codec.managed_accounts(s.account_state.accounts)]
            case _:
                assert_never(request)

    def _account(self, client: ClientState, request: _AccountRequest) -> _Replies:
        state = self.settings.account_state
        match request:
            case ReqAccountUpdates(subscribe=False):
                client.account_updates = None
                return _NO_REPLY
            case ReqAccountUpdates(account=account):
                return self._account_updates(client, account or state.accounts[0])
            case ReqAccountUpdatesMulti():
                return self._account_updates_multi(request)
            case ReqAccountSummary():
                return self._account_summary(client, request)
            case CancelAccountSummary(req_id=req_id):
                client.account_summaries.discard(req_id)
                return _NO_REPLY
            case CancelAccountUpdatesMulti():
                return _NO_REPLY
            case _:
                assert_never(request)

    def _account_updates(self, client: ClientState, account: str) -> _Replies:
        state = self.settings.account_state
        if account not in state.accounts:
            logger.warning("fake gateway: {} account updates for unknown {}", client.peer, account)
            return _NO_REPLY
        client.account_updates = account
        out = [codec.account_value(v.key, v.value, v.currency, account)
               for v in values_for(state, self.broker, account)]  # fmt: skip
        out += [codec.portfolio_value(account, p.contract, p.quantity, p.price, p.market_value,
                                      p.avg_cost, p.unrealized_pnl, p.realized_pnl)
                for p in positions_for(state, self.broker, account)]  # fmt: skip
        now = time.gmtime(self.settings.wall_clock())
        out.append(codec.account_update_time(time.strftime("%H:%M", now)))
        out.append(codec.account_download_end(account))
        return out

    def _account_updates_multi(self, request: ReqAccountUpdatesMulti) -> _Replies:
        state = self.settings.account_state
        req_id, model = request.req_id, request.model_code
        accounts = state.accounts if request.account in ("", "All") else (request.account,)
        out = [codec.account_update_multi(req_id, acct, model, v.key, v.value, v.currency)
               for acct in accounts for v in values_for(state, self.broker, acct)]  # fmt: skip
        return [*out, codec.account_update_multi_end(req_id)]

    def _account_summary(self, client: ClientState, request: ReqAccountSummary) -> _Replies:
        if len(client.account_summaries) >= self.settings.max_account_summaries:
            logger.info("fake gateway: {} account summary limit reached (322)", client.peer)
            return [client.error(request.req_id, ErrorCode.ACCOUNT_SUMMARY_LIMIT,
                                 TEXT_ACCOUNT_SUMMARY_LIMIT)]  # fmt: skip
        client.account_summaries.add(request.req_id)
        state = self.settings.account_state
        tags = set(request.tags)
        out = [
            codec.account_summary(request.req_id, account, v.key, v.value, v.currency)
            for account in state.accounts
            for v in values_for(state, self.broker, account)
            if v.key in tags
        ]
        return [*out, codec.account_summary_end(request.req_id)]
