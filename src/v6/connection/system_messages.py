"""What TWS's system messages (request id -1) mean for the connection: a pure interpreter.

``interpret(code, text)`` turns one message into one effect; the manager applies it. Nothing here
reconnects, sleeps or logs. Codes and texts come from :mod:`v6.protocol.codes`.

=========================  ===========================================================
1100, 2110                 :class:`CutOff`: TWS lost IB; the API socket stays up (DEGRADED)
1101                       :class:`Restored` with ``data_lost``: resubscribe market data
1102                       :class:`Restored`, data kept: nothing to redo
2103..2106, 2157, 2158     :class:`FarmStatus`: tracked for health, never a reason to act
anything else              :data:`IGNORE`
=========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from v6.protocol.codes import CUT_OFF, FARM_CODES, RESTORED, ErrorCode

#: At most this many farms are tracked per session; the oldest entry makes room for a new one.
MAX_FARMS: Final = 64
#: A farm name longer than this (malformed text from the network) is cut to it.
MAX_FARM_NAME: Final = 64


@dataclass(frozen=True)
class CutOff:
    code: int
    text: str


@dataclass(frozen=True)
class Restored:
    code: int
    text: str
    data_lost: bool


class FarmStatus(NamedTuple):
    """A farm notice, read once for the connection and every participant (every handshake
    brings several: a tuple is the cheapest value to build)."""

    kind: str  # a FARM_CODES kind: "market_data", "historical_data", "sec_def"
    farm: str  # the farm's name, e.g. "usfarm"
    ok: bool

    @property
    def key(self) -> str:
        """``"<kind>:<farm>"``, e.g. ``"market_data:usfarm"``."""
        return f"{self.kind}:{self.farm}"


@dataclass(frozen=True)
class Ignore:
    pass


IGNORE: Final = Ignore()
Effect = CutOff | Restored | FarmStatus | Ignore


def interpret(code: int, text: str) -> Effect:
    """The effect of system message ``code`` with TWS's ``text`` (any text, even malformed)."""
    if code in CUT_OFF:
        return CutOff(code, text)
    if code in RESTORED:
        return Restored(code, text, data_lost=code == ErrorCode.RESTORED_DATA_LOST)
    if code in FARM_CODES:
        kind, ok = FARM_CODES[code]
        farm = text.rpartition(":")[2].strip()[:MAX_FARM_NAME] or "?"
        return FarmStatus(kind, farm, ok)
    return IGNORE


class Farms(Mapping[str, str]):
    """Farm key -> "ok" / "broken", for one session, bounded to ``cap`` entries."""

    def __init__(self, cap: int = MAX_FARMS) -> None:
        self._cap = cap
        self._status: dict[str, str] = {}

    def update(self, status: FarmStatus) -> None:
        key = status.key
        self._status.pop(key, None)  # re-inserted last: the most recent news is kept
        if len(self._status) >= self._cap:
            del self._status[next(iter(self._status))]
        self._status[key] = "ok" if status.ok else "broken"

    def __getitem__(self, key: str) -> str:
        return self._status[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._status)

    def __len__(self) -> int:
        return len(self._status)
