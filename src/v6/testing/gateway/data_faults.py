"""The live-data faults, as TWS shows them: one stream falls silent, a data farm breaks and comes
back, a competing live session takes the market data, live updates fail for one request.

Each is one :class:`~.faults.Fault` subclass acting on the clients' live requests
(:mod:`.streams`) when it is switched on (and off); ``FakeGateway``'s data-fault methods are
shortcuts to them (:mod:`.data_controls`). As at TWS, a stream *stopped* by a fault stays silent
until its client cancels it and requests it again (a new request flows); a stream *held* flows
again when the fault is switched off.

=================================  ===========================================================
fault                              what the clients see
=================================  ===========================================================
``SilenceStream(req_id, cid)``     that stream sends nothing while the fault is on; everything
                                   else (probes included) is answered
``SilenceInstrument(con_id)``      every stream of that contract, and every new request for it,
                                   sends nothing while the fault is on (a dead feed)
``FarmFlap(farm, seconds)``        2103 (a market-data farm) or 2105 (an HMDS farm, its name
                                   holds "hmds") to every client; that farm's streams stop;
                                   requests for it wait; after ``seconds`` 2104 / 2106
``CompetingSession(seconds)``      10197 to each market-data subscription (a burst of at least
                                   10 messages) and they stop; for ``seconds`` new ones too
``FailLiveUpdates(req_id, cid)``   10182 for that request, and its stream stops
=================================  ===========================================================
"""

from __future__ import annotations

from typing import Final

from v6.errors import ConfigError
from v6.protocol.codes import (
    TEXT_COMPETING_LIVE_SESSION,
    TEXT_LIVE_UPDATES_FAILED,
    ErrorCode,
    farm_notice,
)
from v6.testing.gateway.faults import Fault, LiveStreams, StreamOwner
from v6.testing.gateway.streams import LINE_KINDS, LiveStream
from v6.validation import require_int, require_range

COMPETING_BURST: Final = 10
"""Fewest 10197 messages a competing session sends at once (TWS: bursts of 10-20)."""


class _StreamTarget(Fault):
    """A fault aimed at one request id, of one client id or (``None``) of every client."""

    def __init__(self, req_id: int, client_id: int | None = None) -> None:
        require_int("req_id", req_id, low=-(2**31), high=2**31 - 1)
        if client_id is not None:
            require_int("client_id", client_id, low=-(2**31), high=2**31 - 1)
        self.req_id = req_id
        self.client_id = client_id

    @property
    def key(self) -> tuple[object, ...]:
        return (type(self), self.client_id, self.req_id)

    def targets(self, live: LiveStreams) -> list[tuple[StreamOwner, LiveStream]]:
        return [
            (owner, stream)
            for owner, stream in live.live_streams()
            if stream.req_id == self.req_id and self.client_id in (None, owner.client_id)
        ]


class SilenceStream(_StreamTarget):
    """The live request ``req_id`` (of ``client_id``, or of every client) sends nothing while the
    fault is on; a new request for it (cancel, then request again) streams."""

    def on_switch_on(self, live: LiveStreams) -> None:
        for _, stream in self.targets(live):
            stream.held_by.add(self.key)

    def on_switch_off(self, live: LiveStreams) -> None:
        for _, stream in live.live_streams():
            stream.held_by.discard(self.key)


class SilenceInstrument(Fault):
    """Every live request for the contract ``con_id``, and every new one while the fault is on,
    sends nothing: a feed no re-request brings back."""

    def __init__(self, con_id: int) -> None:
        require_int("con_id", con_id, low=0, high=2**31 - 1)
        self.con_id = con_id

    @property
    def key(self) -> tuple[object, ...]:
        return (SilenceInstrument, self.con_id)

    def on_switch_on(self, live: LiveStreams) -> None:
        for _, stream in live.live_streams():
            self.on_new_stream(stream)

    def on_switch_off(self, live: LiveStreams) -> None:
        for _, stream in live.live_streams():
            stream.held_by.discard(self.key)

    def on_new_stream(self, stream: LiveStream) -> tuple[int, str] | None:
        if stream.instrument == self.con_id:
            stream.held_by.add(self.key)
        return None


class FailLiveUpdates(_StreamTarget):
    """Error 10182 ("Failed to request live updates") for the live request ``req_id`` (of
    ``client_id``, or of every client), whose stream stops. An event: it is not kept on."""

    @property
    def lasting(self) -> bool:
        return False

    def on_switch_on(self, live: LiveStreams) -> None:
        for owner, stream in self.targets(live):
            stream.stopped = True
            owner.send_error(stream.req_id, ErrorCode.LIVE_UPDATES_FAILED,
                             TEXT_LIVE_UPDATES_FAILED)  # fmt: skip


class FarmFlap(Fault):
    """The data farm ``farm`` breaks for ``seconds``: 2103 "Market data farm connection is
    broken:<farm>" (2105 "HMDS data farm ..." for a farm whose name holds ``hmds``) to every
    client; every stream on that farm stops for good; requests made meanwhile wait. Then 2104 /
    2106 "... is OK:<farm>", and the requests that waited flow."""

    def __init__(self, farm: str, seconds: float) -> None:
        if not isinstance(farm, str) or not farm.strip():
            raise ConfigError(f"farm must be a farm's name (usfarm, ushmds...), got {farm!r}")
        require_range("seconds", seconds, low=0, high=86_400)
        self.farm = farm
        self.seconds = float(seconds)

    @property
    def key(self) -> tuple[object, ...]:
        return (FarmFlap, self.farm)

    @property
    def farm_kind(self) -> str:
        return "historical_data" if "hmds" in self.farm.lower() else "market_data"

    def on_switch_on(self, live: LiveStreams) -> None:
        live.broadcast(*farm_notice(self.farm_kind, self.farm, ok=False))
        for _, stream in live.live_streams():
            if stream.farm == self.farm:
                stream.stopped = True
        live.switch_off_later(self, self.seconds)

    def on_switch_off(self, live: LiveStreams) -> None:
        live.broadcast(*farm_notice(self.farm_kind, self.farm, ok=True))
        for _, stream in live.live_streams():
            stream.held_by.discard(self.key)

    def on_new_stream(self, stream: LiveStream) -> tuple[int, str] | None:
        if stream.farm == self.farm:
            stream.held_by.add(self.key)
        return None


class CompetingSession(Fault):
    """Another session of the login takes the market data: error 10197 ("No market data during
    competing live session") for each market-data subscription (streaming reqMktData,
    reqRealTimeBars, reqTickByTickData), sent as one burst of at least
    :data:`COMPETING_BURST` messages, and those streams stop. For ``seconds`` after, new
    market-data requests get 10197 too and stay silent; with ``seconds`` 0 (the default) the
    fault is an event and is not kept on."""

    def __init__(self, seconds: float = 0.0) -> None:
        require_range("seconds", seconds, low=0, high=86_400)
        self.seconds = float(seconds)

    @property
    def lasting(self) -> bool:
        return self.seconds > 0

    def on_switch_on(self, live: LiveStreams) -> None:
        targets = [(o, s) for o, s in live.live_streams() if s.kind in LINE_KINDS]
        for _, stream in targets:
            stream.stopped = True
        for n in range(max(COMPETING_BURST, len(targets)) if targets else 0):
            owner, stream = targets[n % len(targets)]
            owner.send_error(stream.req_id, ErrorCode.COMPETING_LIVE_SESSION,
                             TEXT_COMPETING_LIVE_SESSION)  # fmt: skip
        if self.lasting:
            live.switch_off_later(self, self.seconds)

    def on_new_stream(self, stream: LiveStream) -> tuple[int, str] | None:
        if stream.kind not in LINE_KINDS:
            return None
        stream.stopped = True
        return (ErrorCode.COMPETING_LIVE_SESSION, TEXT_COMPETING_LIVE_SESSION)
