from __future__ import annotations

import errno
import socket

import pytest

from v6.connection import Verdict, classify
from v6.errors import ClientIdInUse, ConnectTimeout, HandshakeFailed


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        BrokenPipeError(errno.EPIPE, "pipe"),
        TimeoutError(),
        ConnectTimeout("slow"),
        HandshakeFailed("closed"),
        ClientIdInUse(1),
        ConnectionError("ib_async: positions request timed out"),
        OSError(errno.EHOSTUNREACH, "unreachable"),
        socket.gaierror(socket.EAI_AGAIN, "try again"),
    ],
)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    assert classify(exc) is Verdict.RETRY


@pytest.mark.parametrize(
    "exc",
    [
        socket.gaierror(socket.EAI_NONAME, "no such host"),
        OverflowError("port must be 0-65535"),
        OSError(errno.EADDRNOTAVAIL, "cannot assign requested address"),
        ValueError("bad"),
        TypeError("bad"),
    ],
)
def test_errors_retrying_cannot_fix_are_fatal(exc: BaseException) -> None:
    assert classify(exc) is Verdict.FATAL


def test_our_fatal_error_stays_fatal() -> None:
    from v6.errors import FatalConnectError

    assert classify(FatalConnectError("no such host")) is Verdict.FATAL
