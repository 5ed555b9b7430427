"""Account requests (client -> gateway): account values, portfolio, summaries, positions, PnL.
Pure, no I/O; fields are read by :mod:`v6.protocol.fields`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from v6.protocol.fields import CancelRequest, ClientRequest, Fields
from v6.protocol.ids import ClientMessage


@dataclass(frozen=True, slots=True)
class ReqAccountUpdates(ClientRequest):
    """``6,2,subscribe[,account]``."""

    msg_ids = (ClientMessage.REQ_ACCOUNT_UPDATES,)

    subscribe: bool
    account: str

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.flag(), f.text() if f.more() else "")


@dataclass(frozen=True, slots=True)
class ReqAccountUpdatesMulti(ClientRequest):
    """``76,1,reqId,account,modelCode,ledgerAndNLV``."""

    msg_ids = (ClientMessage.REQ_ACCOUNT_UPDATES_MULTI,)

    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text(), f.text(), f.flag())


@dataclass(frozen=True, slots=True)
class CancelAccountUpdatesMulti(CancelRequest):
    """``77,1,reqId``."""

    msg_ids = (ClientMessage.CANCEL_ACCOUNT_UPDATES_MULTI,)


@dataclass(frozen=True, slots=True)
class ReqAccountSummary(ClientRequest):
    """``62,1,reqId,group,tag,tag,...`` (the tags comma-separated in one field)."""

    msg_ids = (ClientMessage.REQ_ACCOUNT_SUMMARY,)

    req_id: int
    group: str
    tags: tuple[str, ...]

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text(), tuple(t for t in f.text().split(",") if t))


@dataclass(frozen=True, slots=True)
class CancelAccountSummary(CancelRequest):
    """``63,1,reqId``."""

    msg_ids = (ClientMessage.CANCEL_ACCOUNT_SUMMARY,)


@dataclass(frozen=True, slots=True)
class ReqPositions(ClientRequest):
    """``61,1``."""

    msg_ids = (ClientMessage.REQ_POSITIONS,)


@dataclass(frozen=True, slots=True)
class CancelPositions(ClientRequest):
    """``64,1``."""

    msg_ids = (ClientMessage.CANCEL_POSITIONS,)


@dataclass(frozen=True, slots=True)
class ReqPnL(ClientRequest):
    """``92,reqId,account,modelCode`` (no version field): the account's daily, unrealized and
    realized PnL, updated about once a second until cancelled."""

    msg_ids = (ClientMessage.REQ_PNL,)
    versioned = False

    req_id: int
    account: str
    model_code: str = ""

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text(), f.text())


@dataclass(frozen=True, slots=True)
class CancelPnL(CancelRequest):
    """``93,reqId`` (no version field)."""

    msg_ids = (ClientMessage.CANCEL_PNL,)
    versioned = False


@dataclass(frozen=True, slots=True)
class ReqPnLSingle(ClientRequest):
    """``94,reqId,account,modelCode,conId`` (no version field): one position's PnL."""

    msg_ids = (ClientMessage.REQ_PNL_SINGLE,)
    versioned = False

    req_id: int
    account: str
    model_code: str
    con_id: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text(), f.text(), f.integer())


@dataclass(frozen=True, slots=True)
class CancelPnLSingle(CancelRequest):
    """``95,reqId`` (no version field)."""

    msg_ids = (ClientMessage.CANCEL_PNL_SINGLE,)
    versioned = False
