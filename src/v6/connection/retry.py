"""Which connection errors are worth retrying: one pure function, documented here.

Retried (transient): the gateway is down or restarting (connection refused, reset, aborted,
broken pipe, host or network unreachable), too slow (timeouts), or it accepted the socket and
then closed it or never completed the handshake / start-up sync; also a client id held by a
stale session (TWS error 326), which frees when that session's socket closes.

An unreachable host (no route, network down, every address of the name failed, or the resolver
asking to try again) is retried too, and reported as :class:`v6.errors.HostUnreachable`.

Fatal (raised at once, never retried): anything that retrying cannot fix: a host name that
does not resolve, an invalid address or port, and programming errors (TypeError, ValueError,
...). Retrying those would only feed the circuit breaker with failures that are not the
gateway's.
"""

from __future__ import annotations

import errno
import socket
from enum import Enum

from v6.errors import (
    ClientIdInUse,
    ConnectFailed,
    ConnectTimeout,
    FatalConnectError,
    HandshakeFailed,
    HostUnreachable,
)


class Verdict(Enum):
    RETRY = "retry"
    FATAL = "fatal"


_UNREACHABLE_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
)
_TRANSIENT_ERRNOS = _UNREACHABLE_ERRNOS | {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
}
# Resolver answers that mean "try again later" rather than "no such host".
_TRANSIENT_GAI = frozenset({socket.EAI_AGAIN})


def classify(exc: BaseException) -> Verdict:
    """Retry or give up after ``exc`` from one connection attempt."""
    if isinstance(exc, FatalConnectError):
        return Verdict.FATAL
    if isinstance(exc, ConnectFailed | ClientIdInUse | TimeoutError):
        return Verdict.RETRY
    if isinstance(exc, OSError) and is_unreachable(exc):
        return Verdict.RETRY
    if isinstance(exc, socket.gaierror):
        return Verdict.FATAL
    if isinstance(exc, ConnectionError):  # refused, reset, aborted, broken pipe, ib_async's own
        return Verdict.RETRY
    if isinstance(exc, OSError):
        return Verdict.RETRY if exc.errno in _TRANSIENT_ERRNOS else Verdict.FATAL
    return Verdict.FATAL


def is_unreachable(exc: OSError) -> bool:
    """No route to the host for now: worth retrying, reported as HostUnreachable."""
    if isinstance(exc, socket.gaierror):
        return exc.errno in _TRANSIENT_GAI
    # errno None: asyncio's "Multiple exceptions" after every address of a name failed.
    return exc.errno is None or exc.errno in _UNREACHABLE_ERRNOS


#: Checked in order: the first class that matches names the attempt's result.
_LABELS: tuple[tuple[type[BaseException], str], ...] = (
    (ClientIdInUse, "client_id_in_use"),
    (ConnectTimeout, "timeout"),
    (HandshakeFailed, "handshake_failed"),
    (HostUnreachable, "unreachable"),
    (ConnectFailed, "refused"),
    (FatalConnectError, "fatal"),
)


def attempt_label(exc: BaseException, verdict: Verdict) -> str:
    """A short label for the metrics' connect-attempts-by-result counter."""
    if verdict is Verdict.FATAL:
        return "fatal"
    return next((label for cls, label in _LABELS if isinstance(exc, cls)), "error")
