"""Test tooling: :class:`FakeGateway`, a fake TWS / IB Gateway on a real socket.

``from v6.testing import FakeGateway`` imports only the standard library, loguru and the pure codec.
"""

from v6.testing.broker import (
    DEFAULT_ACCOUNT_VALUES,
    DEFAULT_ACCOUNTS,
    AccountState,
    AccountValue,
    Position,
)
from v6.testing.gateway import (
    DEFAULT_HOST,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_PACING_LIMIT,
    DEFAULT_TICK_RATE,
    MAX_ACCOUNT_SUMMARIES,
    STARTUP_SYNC_REQUESTS,
    SYSTEM_MESSAGES,
    ClientInfo,
    ErrorCode,
    FakeGateway,
    HandshakeFault,
    Phase,
)

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_ACCOUNT_VALUES",
    "DEFAULT_HOST",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_PACING_LIMIT",
    "DEFAULT_TICK_RATE",
    "MAX_ACCOUNT_SUMMARIES",
    "STARTUP_SYNC_REQUESTS",
    "SYSTEM_MESSAGES",
    "AccountState",
    "AccountValue",
    "ClientInfo",
    "ErrorCode",
    "FakeGateway",
    "HandshakeFault",
    "Phase",
    "Position",
]
