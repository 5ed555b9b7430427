from __future__ import annotations

import errno
import socket

import pytest

from v6.connection import Verdict, classify
from v6.connection.retry import attempt_label, is_unreachable
from v6.errors import ClientIdInUse, ConnectFailed, ConnectTimeout, HandshakeFailed, HostUnreachable


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


@pytest.mark.parametrize(
    ("exc", "unreachable"),
    [
        (OSError(errno.EHOSTUNREACH, "no route to host"), True),
        (OSError(errno.ENETUNREACH, "network unreachable"), True),
        (OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."), True),
        (socket.gaierror(socket.EAI_AGAIN, "try again"), True),
        (socket.gaierror(socket.EAI_NONAME, "no such host"), False),
        (OSError(errno.EADDRNOTAVAIL, "cannot assign"), False),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), False),
    ],
)
def test_is_unreachable(exc: OSError, unreachable: bool) -> None:
    assert is_unreachable(exc) is unreachable


@pytest.mark.parametrize(
    ("exc", "label"),
    [
        (ClientIdInUse(1), "client_id_in_use"),
        (ConnectTimeout("slow"), "timeout"),
        (HandshakeFailed("closed"), "handshake_failed"),
        (HostUnreachable("no route"), "unreachable"),
        (ConnectFailed("refused"), "refused"),
        (RuntimeError("odd"), "error"),
    ],
)
def test_attempt_labels(exc: BaseException, label: str) -> None:
    assert attempt_label(exc, Verdict.RETRY) == label
    assert attempt_label(exc, Verdict.FATAL) == "fatal"


def test_host_unreachable_is_retried_and_a_connection_error() -> None:
    exc = HostUnreachable("no route")
    assert classify(exc) is Verdict.RETRY
    assert isinstance(exc, ConnectFailed)
    assert isinstance(exc, ConnectionError)
