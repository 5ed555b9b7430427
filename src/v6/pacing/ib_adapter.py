"""The pacing side's seam to ``ib_async``: the only module of :mod:`v6.pacing` that touches its
internals.

* Every message ib_async writes passes ``client.sendMsg`` (``Client.send`` serialises, then calls
  it): :class:`IbAsyncPacing` replaces it with one that reads the message the way the fake
  gateway does (:func:`v6.protocol.requests.parse_request`), prices it (:func:`cost_of`) and
  offers it to the :class:`~v6.pacing.scheduler.Scheduler`, which sends it now or later. ib_async's
  own flat throttle (45 per second) is switched off: the scheduler replaces it, and writes the
  framed message to ib_async's socket itself.
* IB's answers that end a paced request reach the scheduler: ``historicalDataEnd`` (a historical
  request without keepUpToDate is complete), an error for a request id, the socket closing.
* A pacing violation that still arrives for a paced request (162 / 420 "pacing violation",
  322 "Only 50 simultaneous"; another client on the same login shares IB's budget) never reaches
  ib_async: the same message is offered again after a backoff, so the caller's awaitable
  completes later instead of failing. Error 100 (too many messages) pauses every lane but URGENT
  for one message window.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from ib_async import IB
from loguru import logger

from v6.connection.lanes import Lane, marked_lane
from v6.errors import ProtocolError
from v6.pacing.budget import Cost
from v6.pacing.scheduler import Scheduler
from v6.protocol.codes import ErrorCode, is_pacing_violation
from v6.protocol.framing import Message
from v6.protocol.ids import ClientMessage as M
from v6.protocol.market_requests import (
    CancelHistoricalData,
    CancelMktData,
    ReqHistoricalData,
    ReqMktData,
)
from v6.protocol.pacing import MESSAGE_WINDOW, historical_query
from v6.protocol.requests import parse_request

_URGENT: Final = frozenset({
    M.PLACE_ORDER, M.CANCEL_ORDER, M.REQ_GLOBAL_CANCEL, M.REQ_CURRENT_TIME, M.START_API,
    M.REQ_IDS, M.CANCEL_MKT_DATA, M.CANCEL_MKT_DEPTH, M.CANCEL_NEWS_BULLETINS,
    M.CANCEL_SCANNER_SUBSCRIPTION, M.CANCEL_HISTORICAL_DATA, M.CANCEL_REAL_TIME_BARS,
    M.CANCEL_FUNDAMENTAL_DATA, M.CANCEL_CALC_IMPLIED_VOLAT, M.CANCEL_CALC_OPTION_PRICE,
    M.CANCEL_ACCOUNT_SUMMARY, M.CANCEL_POSITIONS, M.CANCEL_POSITIONS_MULTI,
    M.CANCEL_ACCOUNT_UPDATES_MULTI, M.CANCEL_HISTOGRAM_DATA, M.CANCEL_HEAD_TIMESTAMP,
    M.CANCEL_PNL, M.CANCEL_PNL_SINGLE, M.CANCEL_TICK_BY_TICK_DATA,
})  # fmt: skip
_SYNC: Final = frozenset({
    M.REQ_OPEN_ORDERS, M.REQ_ALL_OPEN_ORDERS, M.REQ_AUTO_OPEN_ORDERS, M.REQ_COMPLETED_ORDERS,
    M.REQ_EXECUTIONS, M.REQ_POSITIONS, M.REQ_POSITIONS_MULTI, M.REQ_ACCOUNT_UPDATES,
    M.REQ_ACCOUNT_UPDATES_MULTI, M.REQ_MANAGED_ACCTS,
})  # fmt: skip
_BULK: Final = frozenset({
    M.REQ_HISTORICAL_DATA, M.REQ_CONTRACT_DATA, M.REQ_HEAD_TIMESTAMP, M.REQ_HISTOGRAM_DATA,
    M.REQ_HISTORICAL_TICKS, M.REQ_FUNDAMENTAL_DATA, M.REQ_MATCHING_SYMBOLS,
    M.REQ_SEC_DEF_OPT_PARAMS, M.REQ_SCANNER_PARAMETERS, M.REQ_SMART_COMPONENTS,
    M.REQ_MARKET_RULE, M.REQ_NEWS_ARTICLE, M.REQ_HISTORICAL_NEWS, M.REQ_MKT_DEPTH_EXCHANGES,
    M.REQ_FAMILY_CODES, M.REQ_NEWS_PROVIDERS, M.REQ_SOFT_DOLLAR_TIERS,
})  # fmt: skip
# Cancels the registry does not decode: the field that holds their request id.
_REQ_ID_FIELD: Final[dict[int, int]] = {
    M.CANCEL_REAL_TIME_BARS: 2, M.CANCEL_TICK_BY_TICK_DATA: 1, M.CANCEL_PNL: 1,
    M.CANCEL_PNL_SINGLE: 1, M.CANCEL_ACCOUNT_SUMMARY: 2, M.CANCEL_ACCOUNT_UPDATES_MULTI: 2,
}  # fmt: skip
_LINE_HOLDERS: Final = frozenset({M.REQ_TICK_BY_TICK_DATA})
#: A retried request's first backoff, in IB's same-contract windows (2 s, scaled); doubled per
#: retry up to the historical window (10 min, scaled).
_FIRST_BACKOFF_WINDOWS: Final = 1.0


_LANES: Final[dict[int, Lane]] = {
    **dict.fromkeys(_BULK, Lane.BULK), **dict.fromkeys(_SYNC, Lane.SYNC),
    **dict.fromkeys(_URGENT, Lane.URGENT),
}  # fmt: skip
#: Messages whose fields a rule reads (the others cost one message of their lane).
_READ: Final = frozenset({
    M.REQ_HISTORICAL_DATA, M.REQ_MKT_DATA, M.CANCEL_MKT_DATA, M.CANCEL_HISTORICAL_DATA,
    M.REQ_REAL_TIME_BARS, *_LINE_HOLDERS, *_REQ_ID_FIELD,
})  # fmt: skip
_PLAIN: Final = tuple(Cost(lane) for lane in Lane)  # by lane
#: The messages that may take the scheduler's short way (URGENT or SYNC, no rule reads their
#: fields), by the text of their id as ib_async writes it: orders and the start-up sync are read
#: no further than that.
_SHORT_WAY: Final[dict[str, Lane]] = {
    str(int(msg_id)): lane for msg_id, lane in _LANES.items()
    if lane <= Lane.SYNC and msg_id not in _READ
}  # fmt: skip


def lane_of(msg_id: int) -> Lane:
    """A message's lane, by its id and the lane the running code marked (a marked lane never
    demotes an URGENT message)."""
    lane = _LANES.get(msg_id, Lane.STREAMS)
    marked = marked_lane()
    return lane if marked is None or lane is Lane.URGENT else marked


def cost_of(message: Message, server_version: int) -> Cost:
    """What ``message`` spends of IB's budget, in its lane (:func:`lane_of`)."""
    lane = lane_of(message.msg_id)
    if message.msg_id not in _READ:
        return _PLAIN[lane]
    try:
        request = parse_request(message, server_version)
    except ProtocolError:
        request = None
    match request:
        case ReqHistoricalData():
            return Cost(lane, request.req_id, historical=historical_query(request))
        case ReqMktData(snapshot=False):
            return Cost(lane, request.req_id, line=True)
        case CancelHistoricalData(req_id=req_id) | CancelMktData(req_id=req_id):
            return Cost(lane, ends=req_id)
    msg_id = message.msg_id
    if msg_id == M.REQ_REAL_TIME_BARS:
        return Cost(lane, _int_field(message, 2), realtime_bars=True)
    if msg_id in _LINE_HOLDERS:
        return Cost(lane, _int_field(message, 1), line=True)
    if msg_id in _REQ_ID_FIELD:
        return Cost(lane, ends=_int_field(message, _REQ_ID_FIELD[msg_id]))
    return Cost(lane)


def _int_field(message: Message, index: int) -> int | None:
    try:
        return int(message.fields[index])
    except (IndexError, ValueError):
        return None


class IbAsyncPacing:
    """The scheduler between ib_async and its socket (see the module docstring)."""

    def __init__(self, ib: IB, scheduler: Scheduler, clock: Callable[[], float]) -> None:
        self._ib = ib
        self._client: Any = ib.client
        self._wrapper: Any = ib.wrapper
        self._scheduler = scheduler
        self._clock = clock
        self._sent: dict[int, tuple[Cost, str]] = {}  # paced requests in flight, by request id
        self._retries: Counter[int] = Counter()
        self._retry_timers: set[asyncio.TimerHandle] = set()
        #: Pacing violations that still arrived, by error code.
        self.violations: Counter[int] = Counter()
        self.retried = 0

    def install(self) -> None:
        client, wrapper = self._client, self._wrapper
        client.MaxRequests = 0  # the scheduler paces instead of ib_async's flat window
        self._flush: Callable[[None], None] = client.sendMsg  # its throttle's queue, if any
        client.sendMsg = self._offer
        self._original_error = wrapper.error
        wrapper.error = self._error
        self._original_end = wrapper.historicalDataEnd
        wrapper.historicalDataEnd = self._historical_end
        client.conn.disconnected += self._socket_closed

    def close(self) -> None:
        for timer in self._retry_timers:
            timer.cancel()
        self._retry_timers.clear()
        self._scheduler.close()

    # ------------------------------------------------------------------- outgoing

    def _offer(self, msg: str | None) -> None:
        if not msg:
            self._flush(None)
            return
        head = msg[: msg.find("\0")]
        lane = _SHORT_WAY.get(head)
        if (
            lane is not None
            and (lane is Lane.URGENT or marked_lane() is None)
            and self._scheduler.go_plain(lane)
        ):
            self._send_msg(msg)  # an order, a cancel, the start-up sync: the short way
            return
        try:
            msg_id = int(head)
        except ValueError:
            self._send_msg(msg)  # not a message this layer can read: not its to hold
            return
        if msg_id in _READ:
            fields = tuple(msg.split("\0")[:-1])
            cost = cost_of(Message(msg_id, fields), self._client.serverVersion())
        else:
            cost = _PLAIN[lane_of(msg_id)]
        if self._scheduler.go(cost):
            self._send(cost, msg)
        else:
            self._scheduler.hold(cost, lambda: self._send(cost, msg))

    def _send(self, cost: Cost, msg: str) -> None:
        if cost.req_id is not None and (cost.historical is not None or cost.realtime_bars):
            self._sent[cost.req_id] = (cost, msg)
        if cost.ends is not None:
            self._forget(cost.ends)
        self._send_msg(msg)

    def _send_msg(self, msg: str) -> None:
        """What ib_async's ``sendMsg`` does with its throttle off (``MaxRequests`` 0): frame,
        write, and its debug line; without its throttle's bookkeeping, which the scheduler
        replaces (two throttles in series would cost every message twice)."""
        client = self._client
        client.conn.sendMsg(client._prefix(msg.encode()))
        if client._logger.isEnabledFor(logging.DEBUG):
            client._logger.debug(">>> %s", msg[:-1].replace("\0", ","))

    # ------------------------------------------------------------------- incoming

    def _historical_end(self, req_id: int, *args: Any) -> None:
        self._original_end(req_id, *args)
        cost = self._sent.get(req_id)
        if cost is not None and not (cost[0].historical and cost[0].historical.keep_up_to_date):
            self._ended(req_id)

    def _error(self, req_id: int, code: int, text: str, *rest: Any) -> None:
        if code == ErrorCode.MAX_RATE_EXCEEDED:
            self.violations[code] += 1
            self._scheduler.budget.pause(self._clock() + MESSAGE_WINDOW)
        elif req_id in self._sent and is_pacing_violation(code, text):
            self.violations[code] += 1
            self._retry(req_id, code, text)
            return  # ib_async never hears of it: its request is still pending
        elif req_id in self._sent or req_id in self._scheduler.budget.lines:
            self._ended(req_id)
        self._original_error(req_id, code, text, *rest)

    def _retry(self, req_id: int, code: int, text: str) -> None:
        cost, msg = self._sent.pop(req_id)
        self._scheduler.request_ended(req_id)
        self._retries[req_id] += 1
        limits = self._scheduler.budget.limits
        first = _FIRST_BACKOFF_WINDOWS * limits.same_contract_window
        delay = min(first * 2 ** (self._retries[req_id] - 1), limits.historical_window)
        logger.info("IB {} for request {} ({}); sent again in {:.3g}s", code, req_id, text, delay)
        self.retried += 1
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def again() -> None:
            if timer is not None:
                self._retry_timers.discard(timer)
            if req_id in self._wrapper._futures or req_id in self._wrapper.reqId2Subscriber:
                self._scheduler.offer(cost, lambda: self._send(cost, msg))

        timer = loop.call_later(delay, again)
        self._retry_timers.add(timer)

    def _ended(self, req_id: int) -> None:
        self._forget(req_id)
        self._scheduler.request_ended(req_id)

    def _forget(self, req_id: int) -> None:
        self._sent.pop(req_id, None)
        self._retries.pop(req_id, None)

    def _socket_closed(self, *args: Any) -> None:
        self._sent.clear()
        self._retries.clear()
        for timer in self._retry_timers:
            timer.cancel()
        self._retry_timers.clear()
        self._scheduler.session_ended()
