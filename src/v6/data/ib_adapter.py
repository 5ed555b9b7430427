"""The live-data side's seam to ``ib_async``: the only module of :mod:`v6.data` that touches its
internals.

ib_async forgets every subscription at a disconnect (``wrapper.reset()`` empties ``tickers``,
``reqId2Ticker``, ``reqId2Subscriber``, ``reqId2PnL`` ...) and ends the events of the objects it
forgot (``setEventsDone``); asked again, it makes NEW objects, so the ones the application holds
freeze. :class:`IbAsyncData` asks IB again the way ib_async does, but binds each request to the
object the application already holds: a held Ticker goes back into ``wrapper.tickers`` before
``startTicker`` looks for it; bar lists and PnL objects are registered under the new request id
by hand. The held objects' events are spared at a disconnect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ib_async import IB, BarDataList, PnL, PnLSingle, RealTimeBarList, Ticker

from v6.data.specs import (
    HistoricalBars,
    MarketData,
    PnLOf,
    PnLSingleOf,
    RealtimeBars,
    Spec,
    TickByTick,
)


class IbAsyncData:
    """Requests, cancels and objects of subscriptions, on an ``ib_async.IB``."""

    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self._wrapper: Any = ib.wrapper
        self._client: Any = ib.client
        self._held: set[int] = set()  # id() of the objects the application holds
        self._original_set_events_done: Callable[[], None] = self._wrapper.setEventsDone
        self._wrapper.setEventsDone = self._set_events_done  # type: ignore[method-assign]

    # --------------------------------------------------------------------- objects

    def new_handle(self, spec: Spec) -> Any:
        """The object the application gets for ``spec`` (before any request is made)."""
        match spec:
            case MarketData(contract=contract) | TickByTick(contract=contract):
                found = self._wrapper.tickers.get(hash(contract))
                handle: Any = found or Ticker(contract=contract, defaults=self._wrapper.defaults)
            case RealtimeBars():
                handle = RealTimeBarList()  # type: ignore[no-untyped-call]
                handle.contract, handle.barSize = spec.contract, spec.bar_size
                handle.whatToShow, handle.useRTH = spec.what_to_show, spec.use_rth
                handle.realTimeBarsOptions = list(spec.options)
            case HistoricalBars():
                handle = BarDataList()  # type: ignore[no-untyped-call]
                handle.contract, handle.endDateTime = spec.contract, ""
                handle.durationStr, handle.barSizeSetting = spec.duration, spec.bar_size
                handle.whatToShow, handle.useRTH = spec.what_to_show, spec.use_rth
                handle.formatDate, handle.keepUpToDate = spec.format_date, True
            case PnLOf():
                handle = PnL(spec.account, spec.model_code)
            case PnLSingleOf():
                handle = PnLSingle(spec.account, spec.model_code, spec.con_id)
        self._held.add(id(handle))
        return handle

    def release(self, handle: Any) -> None:
        """The application no longer holds ``handle`` through the manager."""
        self._held.discard(id(handle))

    # ------------------------------------------------------------------- requests

    def request(self, spec: Spec, handle: Any) -> int:
        """Ask IB for ``spec`` in this session, bound to ``handle``; the request id. Not for
        :class:`HistoricalBars` (see :meth:`bind_bars`). ``ConnectionError`` when down."""
        wrapper, client = self._wrapper, self._client
        req_id = int(client.getReqId())
        match spec:
            case MarketData():
                wrapper.tickers[hash(spec.contract)] = handle  # startTicker finds it
                wrapper.startTicker(req_id, spec.contract, "mktData")
                client.reqMktData(req_id, spec.contract, spec.generic_ticks, False, False,
                                  list(spec.options))  # fmt: skip
            case TickByTick():
                wrapper.tickers[hash(spec.contract)] = handle
                wrapper.startTicker(req_id, spec.contract, spec.tick_type)
                client.reqTickByTickData(req_id, spec.contract, spec.tick_type,
                                         spec.number_of_ticks, spec.ignore_size)  # fmt: skip
            case RealtimeBars():
                handle.reqId = req_id
                wrapper.startSubscription(req_id, handle, spec.contract)
                client.reqRealTimeBars(req_id, spec.contract, spec.bar_size, spec.what_to_show,
                                       spec.use_rth, list(spec.options))  # fmt: skip
            case PnLOf():
                wrapper.pnlKey2ReqId[(spec.account, spec.model_code)] = req_id
                wrapper.reqId2PnL[req_id] = handle
                client.reqPnL(req_id, spec.account, spec.model_code)
            case PnLSingleOf():
                wrapper.pnlSingleKey2ReqId[(spec.account, spec.model_code, spec.con_id)] = req_id
                wrapper.reqId2PnlSingle[req_id] = handle
                client.reqPnLSingle(req_id, spec.account, spec.model_code, spec.con_id)
            case HistoricalBars():
                raise TypeError("historical bars are fetched, then bound (bind_bars)")
        return req_id

    async def fetch_bars(self, spec: HistoricalBars, duration: str) -> BarDataList:
        """A keepUpToDate request for ``duration`` of bars ending now (ib_async's own list;
        :meth:`bind_bars` moves its updates to the held one)."""
        bars: BarDataList = await self.ib.reqHistoricalDataAsync(
            spec.contract, "", duration, spec.bar_size, spec.what_to_show, spec.use_rth,
            spec.format_date, keepUpToDate=True, timeout=0,
        )  # fmt: skip
        return bars

    def bind_bars(self, fetched: BarDataList, held: BarDataList) -> int:
        """Updates of ``fetched``'s request go to ``held`` from now on; its request id."""
        req_id = int(fetched.reqId)
        held.reqId = req_id
        self._wrapper.reqId2Subscriber[req_id] = held
        return req_id

    def cancel(self, spec: Spec, handle: Any, req_id: int | None) -> None:
        """End ``spec``'s request of this session at IB and in ib_async's tables (the handle
        lives on). Nothing is sent when the socket is down."""
        if req_id is None:
            return
        wrapper = self._wrapper
        match spec:
            case MarketData() | TickByTick():
                tick_type = "mktData" if isinstance(spec, MarketData) else spec.tick_type
                if wrapper.ticker2ReqId[tick_type].get(handle) == req_id:
                    wrapper.endTicker(handle, tick_type)
                wrapper.reqId2Ticker.pop(req_id, None)
            case RealtimeBars() | HistoricalBars():
                wrapper.reqId2Subscriber.pop(req_id, None)
            case PnLOf():
                wrapper.pnlKey2ReqId.pop((spec.account, spec.model_code), None)
                wrapper.reqId2PnL.pop(req_id, None)
            case PnLSingleOf():
                wrapper.pnlSingleKey2ReqId.pop((spec.account, spec.model_code, spec.con_id), None)
                wrapper.reqId2PnlSingle.pop(req_id, None)
        if self.ib.isConnected():
            self._send_cancel(spec, req_id)

    def _send_cancel(self, spec: Spec, req_id: int) -> None:
        client = self._client
        match spec:
            case MarketData():
                client.cancelMktData(req_id)
            case TickByTick():
                client.cancelTickByTickData(req_id)
            case RealtimeBars():
                client.cancelRealTimeBars(req_id)
            case HistoricalBars():
                client.cancelHistoricalData(req_id)
            case PnLOf():
                client.cancelPnL(req_id)
            case PnLSingleOf():
                client.cancelPnLSingle(req_id)

    # ---------------------------------------------------------------------- patch

    def _set_events_done(self) -> None:
        """ib_async ends every subscription object's events on a lost socket; the held ones
        must live on."""
        wrapper, held = self._wrapper, self._held
        tickers, subscribers = wrapper.tickers, wrapper.reqId2Subscriber
        wrapper.tickers = {k: t for k, t in tickers.items() if id(t) not in held}
        wrapper.reqId2Subscriber = {k: s for k, s in subscribers.items() if id(s) not in held}
        try:
            self._original_set_events_done()
        finally:
            wrapper.tickers, wrapper.reqId2Subscriber = tickers, subscribers
