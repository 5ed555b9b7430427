"""The link's error mapping. The link itself runs against FakeGateway in test_manager and
test_supervision (1102 without ib_async's account summary, 326, closes mid-handshake)."""

from __future__ import annotations

import errno
import socket

import pytest

from v6.connection.link import map_connect_error
from v6.connection.settings import ConnectionSettings
from v6.errors import (
    ClientIdInUse,
    ConnectFailed,
    ConnectTimeout,
    HandshakeFailed,
    HostUnreachable,
)

SETTINGS = ConnectionSettings(host="gw.example", port=4002, connect_timeout=3.0)


@pytest.mark.parametrize(
    ("exc", "mapped", "text"),
    [
        (TimeoutError(), ConnectTimeout, "no API-ready answer from gw.example:4002 within 3.0s"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "x"), ConnectFailed, "refused by gw.example"),
        (ConnectionResetError(errno.ECONNRESET, "x"), HandshakeFailed, "handshake"),
        (ConnectionError("positions request timed out"), HandshakeFailed, "start-up sync"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), HostUnreachable, "cannot reach"),
        (OSError("Multiple exceptions: ..."), HostUnreachable, "cannot reach gw.example:4002"),
        (socket.gaierror(socket.EAI_AGAIN, "again"), HostUnreachable, "cannot reach"),
    ],
)
def test_errors_are_mapped_once_at_the_boundary(
    exc: BaseException, mapped: type[BaseException], text: str
) -> None:
    result = map_connect_error(exc, SETTINGS)
    assert type(result) is mapped
    assert text in str(result)


@pytest.mark.parametrize(
    "exc",
    [
        ClientIdInUse(3),
        socket.gaierror(socket.EAI_NONAME, "no such host"),
        OSError(errno.EADDRNOTAVAIL, "cannot assign"),
        ValueError("bug"),
    ],
)
def test_ours_and_unknown_errors_pass_unchanged(exc: BaseException) -> None:
    assert map_connect_error(exc, SETTINGS) is exc
