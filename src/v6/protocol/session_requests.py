"""Session requests (client -> gateway): startApi and the small questions about the session.
Pure, no I/O; fields are read by :mod:`v6.protocol.fields`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from v6.protocol.fields import ClientRequest, Fields
from v6.protocol.ids import ClientMessage


@dataclass(frozen=True, slots=True)
class StartApi(ClientRequest):
    """``71,2,clientId[,optionalCapabilities]``: the first request of every session."""

    msg_ids = (ClientMessage.START_API,)

    client_id: int
    optional_capabilities: str = ""

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer(), f.text() if f.more() else "")


@dataclass(frozen=True, slots=True)
class ReqIds(ClientRequest):
    """``8,1,numIds``."""

    msg_ids = (ClientMessage.REQ_IDS,)

    num_ids: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer())


@dataclass(frozen=True, slots=True)
class ReqCurrentTime(ClientRequest):
    """``49,1``."""

    msg_ids = (ClientMessage.REQ_CURRENT_TIME,)


@dataclass(frozen=True, slots=True)
class ReqManagedAccounts(ClientRequest):
    """``17,1``."""

    msg_ids = (ClientMessage.REQ_MANAGED_ACCTS,)
