"""Market-data requests (client -> gateway): streaming quotes, historical and real-time bars,
tick-by-tick data, contract details. Pure, no I/O; fields are read by :mod:`v6.protocol.fields`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from v6.protocol.contract import ContractSpec
from v6.protocol.fields import CancelRequest, ClientRequest, Fields
from v6.protocol.ids import ClientMessage


def _skip_combo_legs(f: Fields, contract: ContractSpec) -> None:
    """A BAG contract's legs in a data request: a count, then conId, ratio, action, exchange."""
    if contract.sec_type == "BAG":
        f.skip(4 * f.integer())


@dataclass(frozen=True, slots=True)
class ReqMktData(ClientRequest):
    """``1,11,reqId,<contract>,[legs],deltaNeutral,genericTicks,snapshot,...`` (the regulatory
    snapshot flag and mktDataOptions after ``snapshot`` are not read)."""

    msg_ids = (ClientMessage.REQ_MKT_DATA,)

    req_id: int
    contract: ContractSpec
    generic_ticks: str = ""
    snapshot: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        req_id = f.integer()
        contract = f.contract()
        _skip_combo_legs(f, contract)
        if f.flag():  # delta-neutral contract: conId, delta, price
            f.skip(3)
        generic_ticks = f.text()
        return cls(req_id, contract, generic_ticks, f.flag())


@dataclass(frozen=True, slots=True)
class CancelMktData(CancelRequest):
    """``2,2,reqId``."""

    msg_ids = (ClientMessage.CANCEL_MKT_DATA,)


@dataclass(frozen=True, slots=True)
class ReqHistoricalData(ClientRequest):
    """``20,reqId,<contract>,includeExpired,end,barSize,duration,useRTH,whatToShow,formatDate,
    [legs],keepUpToDate,chartOptions`` (no version field from server version 124 on)."""

    msg_ids = (ClientMessage.REQ_HISTORICAL_DATA,)
    versioned = False

    req_id: int
    contract: ContractSpec
    end_date_time: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        req_id = f.integer()
        contract = f.contract()
        f.skip()  # includeExpired
        end, bar_size, duration = f.text(), f.text(), f.text()
        use_rth = f.flag()
        what_to_show = f.text()
        format_date = f.integer()
        _skip_combo_legs(f, contract)
        keep_up_to_date = f.flag() if f.more() else False
        return cls(req_id, contract, end, bar_size, duration, use_rth, what_to_show, format_date,
                   keep_up_to_date)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CancelHistoricalData(CancelRequest):
    """``25,1,reqId``."""

    msg_ids = (ClientMessage.CANCEL_HISTORICAL_DATA,)


@dataclass(frozen=True, slots=True)
class ReqRealTimeBars(ClientRequest):
    """``50,3,reqId,<contract>,barSize,whatToShow,useRTH,realTimeBarsOptions``."""

    msg_ids = (ClientMessage.REQ_REAL_TIME_BARS,)

    req_id: int
    contract: ContractSpec
    bar_size: int = 5
    what_to_show: str = "TRADES"
    use_rth: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.contract(), f.integer(), f.text(), f.flag())


@dataclass(frozen=True, slots=True)
class CancelRealTimeBars(CancelRequest):
    """``51,1,reqId``."""

    msg_ids = (ClientMessage.CANCEL_REAL_TIME_BARS,)
@dataclass(frozen=True, slots=True)
class ReqTickByTickData(ClientRequest):
    """``97,reqId,<contract>,tickType,numberOfTicks,ignoreSize`` (no version field); ``tick_type``
    is ``Last``, ``AllLast``, ``BidAsk`` or ``MidPoint``."""

    msg_ids = (ClientMessage.REQ_TICK_BY_TICK_DATA,)
    versioned = False

    req_id: int
    contract: ContractSpec
    tick_type: str = "Last"
    number_of_ticks: int = 0
    ignore_size: bool = False

    @classmethod
    def parse(cls, f: Fields) -> Self:
        req_id, contract, tick_type = f.integer(), f.contract(), f.text()
        number_of_ticks = f.integer() if f.more() else 0
        return cls(req_id, contract, tick_type, number_of_ticks, f.flag() if f.more() else False)


@dataclass(frozen=True, slots=True)
class CancelTickByTickData(CancelRequest):
    """``98,reqId`` (no version field)."""

    msg_ids = (ClientMessage.CANCEL_TICK_BY_TICK_DATA,)
    versioned = False


@dataclass(frozen=True, slots=True)
class ReqContractDetails(ClientRequest):
    """``9,8,reqId,<contract>,includeExpired,secIdType,secId[,issuerId]`` (the fields after the
    contract are not read)."""

    msg_ids = (ClientMessage.REQ_CONTRACT_DATA,)

    req_id: int
    contract: ContractSpec

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.contract())
