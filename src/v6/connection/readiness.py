"""Is the gateway ready for an API session? A tiny probe, and when to run it.

Readiness is the gateway's answer to the API hello (its server version), not a TCP accept: a socat
proxy in front of IB Gateway accepts while the gateway behind it is down. The probe opens the
socket, sends ``API\\0`` plus ib_async's version range, waits for the server-version frame and
closes. It takes no client id and never sends startApi, so no API session starts and a real gateway
logs at most a connect and a disconnect.

:func:`probe_readiness` is the only I/O here and never raises for network conditions; the result
says what happened. :class:`ReadinessSchedule` is pure: when the next probe is due (every
``readiness_interval`` with jitter, only while BACKING_OFF or CIRCUIT_OPEN) and what a result means.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from v6.connection.defaults import (
    DEFAULT_JITTER,
    DEFAULT_READINESS_INTERVAL,
    DEFAULT_READINESS_TIMEOUT,
)
from v6.connection.state import ConnectionState
from v6.errors import (
    ConnectFailed,
    ConnectTimeout,
    HandshakeFailed,
    HostUnreachable,
    ProtocolError,
)
from v6.protocol.codec import ClientCodec, ServerHello, encode_hello
from v6.validation import require_range

# ib_async 2.1.0's Client.MinClientVersion / MaxClientVersion: probe with the range the real
# attempt will offer, so "ready" means "will negotiate with ib_async".
IB_ASYNC_MIN_VERSION: Final = 157
IB_ASYNC_MAX_VERSION: Final = 178
MAX_READINESS_JITTER: Final = 0.5
#: States in which the manager probes instead of only waiting.
PROBING_STATES: Final = frozenset({ConnectionState.BACKING_OFF, ConnectionState.CIRCUIT_OPEN})

_READ_SIZE: Final = 4096


class ProbeOutcome(Enum):
    ANSWERED = "answered"  # the server-version frame arrived: ready
    REFUSED = "refused"  # nothing listens on the port
    CONNECT_TIMEOUT = "connect_timeout"  # TCP connect did not finish (host down, filtered)
    UNREACHABLE = "unreachable"  # any other connect error (no route, name does not resolve)
    SILENT = "silent"  # accepted, then no answer within the timeout (socat, hung gateway)
    CLOSED = "closed"  # accepted, then closed or reset before answering
    GARBAGE = "garbage"  # accepted, answered something that is not a server-version frame

    @property
    def accepted(self) -> bool:
        """The port accepted TCP (whatever came after)."""
        return self in _ACCEPTED


_ACCEPTED: Final = frozenset(
    {ProbeOutcome.ANSWERED, ProbeOutcome.SILENT, ProbeOutcome.CLOSED, ProbeOutcome.GARBAGE}
)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: ProbeOutcome
    rtt: float
    """Seconds from starting the connect to the answer (or to giving up)."""
    server_version: int | None = None
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.outcome is ProbeOutcome.ANSWERED

    def as_error(self, target: str) -> ConnectFailed:
        """The error a full attempt would have met (same class, so the same retry verdict and
        attempt label): what the manager records when a probe stands in for an attempt."""
        kind, text = _ERRORS[self.outcome]
        return kind(f"{text} {target} (readiness probe: {self})")

    def __str__(self) -> str:
        version = f" version {self.server_version}" if self.server_version is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.outcome.value}{version} in {self.rtt * 1000:.1f} ms{detail}"


_ERRORS: Final[dict[ProbeOutcome, tuple[type[ConnectFailed], str]]] = {
    ProbeOutcome.ANSWERED: (ConnectFailed, "answered the hello, yet failed:"),
    ProbeOutcome.REFUSED: (ConnectFailed, "connection refused by"),
    ProbeOutcome.CONNECT_TIMEOUT: (ConnectTimeout, "no TCP connect to"),
    ProbeOutcome.UNREACHABLE: (HostUnreachable, "cannot reach"),
    ProbeOutcome.SILENT: (ConnectTimeout, "no answer to the API hello from"),
    ProbeOutcome.CLOSED: (HandshakeFailed, "connection closed before the API hello answer by"),
    ProbeOutcome.GARBAGE: (HandshakeFailed, "no API hello answer (garbage) from"),
}


async def probe_readiness(
    host: str,
    port: int,
    timeout: float = DEFAULT_READINESS_TIMEOUT,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> ProbeResult:
    """Open ``host:port``, send the API hello, wait for the server version, close.

    Bounded by ``timeout`` in total; never raises for network conditions (only for a
    non-positive timeout).
    """
    require_readiness_timeout(timeout)
    started = clock()

    def result(outcome: ProbeOutcome, detail: str = "", version: int | None = None) -> ProbeResult:
        return ProbeResult(outcome, clock() - started, version, detail)

    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return result(ProbeOutcome.CONNECT_TIMEOUT)
    except ConnectionRefusedError:
        return result(ProbeOutcome.REFUSED)
    except OSError as exc:
        return result(ProbeOutcome.UNREACHABLE, f"{type(exc).__name__}: {exc}")
    try:
        remaining = max(0.0, timeout - (clock() - started))
        async with asyncio.timeout(remaining):
            outcome, detail, version = await _exchange_hello(reader, writer)
    except TimeoutError:
        outcome, detail, version = ProbeOutcome.SILENT, "no answer to the hello", None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return result(outcome, detail, version)


async def _exchange_hello(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[ProbeOutcome, str, int | None]:
    codec = ClientCodec()
    try:
        writer.write(encode_hello(IB_ASYNC_MIN_VERSION, IB_ASYNC_MAX_VERSION))
        await writer.drain()
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                return ProbeOutcome.CLOSED, "closed before answering", None
            for event in codec.receive_data(data):
                if isinstance(event, ServerHello):
                    return ProbeOutcome.ANSWERED, "", event.version
    except ProtocolError as exc:
        return ProbeOutcome.GARBAGE, str(exc)[:120], None
    except OSError as exc:  # reset or broken pipe after the accept
        return ProbeOutcome.CLOSED, f"{type(exc).__name__}", None


class ProbeAction(Enum):
    ATTEMPT_NOW = "attempt_now"  # the gateway answered: start the real attempt at once
    WAIT = "wait"  # keep waiting; probe again at next_probe_at()
    STOP = "stop"  # not in a probing state (anymore): stop probing


@dataclass
class ReadinessSchedule:
    """When to probe and what a result means (pure: the caller passes ``now`` and the state).

    The manager, while BACKING_OFF or CIRCUIT_OPEN, sleeps until the earlier of its backoff end and
    ``next_probe_at(now)``, runs :func:`probe_readiness`, and feeds the result to :meth:`decide`.
    ``ATTEMPT_NOW`` means: start the real attempt now (when the breaker is OPEN, as its single
    HALF_OPEN trial), so the breaker still bounds API sessions.
    """

    interval: float = DEFAULT_READINESS_INTERVAL
    jitter: float = DEFAULT_JITTER
    rng: random.Random = field(default_factory=random.Random)
    outcomes: Counter[ProbeOutcome] = field(default_factory=Counter, init=False)

    def __post_init__(self) -> None:
        require_readiness_interval(self.interval)
        # at most half the interval either way, so probes of one client never bunch up
        require_range("readiness_jitter", self.jitter, low=0.0, high=MAX_READINESS_JITTER)

    @staticmethod
    def applies(state: ConnectionState) -> bool:
        """Probing is for BACKING_OFF and CIRCUIT_OPEN only."""
        return state in PROBING_STATES

    def delay(self) -> float:
        """Seconds until the next probe: ``interval`` scaled by ``[1 - jitter, 1]``. Jitter only
        shortens it, so ``interval`` is the longest gap: a gateway that answers again is seen
        within ``interval`` (plus the probe's round trip)."""
        if not self.jitter:
            return self.interval
        return self.interval * self.rng.uniform(1.0 - self.jitter, 1.0)

    def next_probe_at(self, now: float) -> float:
        return now + self.delay()

    def decide(self, state: ConnectionState, result: ProbeResult) -> ProbeAction:
        """Count ``result`` and say what to do with it in ``state``."""
        self.outcomes[result.outcome] += 1
        if not self.applies(state):
            return ProbeAction.STOP
        return ProbeAction.ATTEMPT_NOW if result.ready else ProbeAction.WAIT

    @property
    def probes(self) -> int:
        """Probes counted so far (for "readiness probes per minute")."""
        return self.outcomes.total()


def require_readiness_interval(value: float) -> None:
    """``readiness_interval`` in (0, inf)."""
    require_range("readiness_interval", value, low=0.0, low_open=True)


def require_readiness_timeout(value: float) -> None:
    """``readiness_timeout`` in (0, inf)."""
    require_range("readiness_timeout", value, low=0.0, low_open=True)
