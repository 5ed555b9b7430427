"""Which connection errors are worth retrying: one pure function, documented here.

Retried (transient): the gateway is down or restarting (connection refused, reset, aborted,
broken pipe, host or network unreachable), too slow (timeouts), or it accepted the socket and
then closed it or never completed the handshake / start-up sync; also a client id held by a
stale session (TWS error 326), which frees when that session's socket closes.

Fatal (raised at once, never retried): anything that retrying cannot fix: a host name that
does not resolve, an invalid address or port, and programming errors (TypeError, ValueError,
...). Retrying those would only feed the circuit breaker with failures that are not the
gateway's.
"""

from __future__ import annotations

import errno
import socket
from enum import Enum

from v6.errors import ClientIdInUse, ConnectFailed, FatalConnectError


class Verdict(Enum):
    RETRY = "retry"
    FATAL = "fatal"


_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
    }
)
# Resolver answers that mean "try again later" rather than "no such host".
_TRANSIENT_GAI = frozenset({socket.EAI_AGAIN})


def classify(exc: BaseException) -> Verdict:
    """Retry or give up after ``exc`` from one connection attempt."""
    if isinstance(exc, FatalConnectError):
        return Verdict.FATAL
    if isinstance(exc, ConnectFailed | ClientIdInUse | TimeoutError):
        return Verdict.RETRY
    if isinstance(exc, socket.gaierror):
        return Verdict.RETRY if exc.errno in _TRANSIENT_GAI else Verdict.FATAL
    if isinstance(exc, ConnectionError):  # refused, reset, aborted, broken pipe, ib_async's own
        return Verdict.RETRY
    if isinstance(exc, OSError):
        return Verdict.RETRY if exc.errno in _TRANSIENT_ERRNOS else Verdict.FATAL
    return Verdict.FATAL
