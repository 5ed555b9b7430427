"""Test tooling: :class:`FakeGateway`, a fake TWS / IB Gateway on a real socket.

Its rooms:

* :mod:`.gateway`: the fake gateway (sockets, the TWS application, the faults, switched on and
  off through ``gw.faults``);
* :mod:`.broker`: the simulated broker "at IB" it trades against (pure), and the account state;
* :mod:`.scenario`: the one "inject a fault, time the recovery" harness;
* :mod:`.demo`, :mod:`.demo_report`: ``v6-ib demo``;
* :mod:`.hostile`: hostile clients, for the benchmark and the fault matrix;
* :mod:`.fake_ibc`: a fake of IBC's command server;
* :mod:`.pytest_plugin`: the ``fake_gateway`` fixture; :mod:`.cli`: ``v6-ib gateway``.

``from v6.testing import FakeGateway`` imports only the standard library, loguru and the pure
layers (:mod:`v6.protocol`, :mod:`v6.errors`, :mod:`v6.validation`).
"""

from v6.protocol.pacing import NO_PACING, PacingLimits
from v6.testing.broker import (
    DEFAULT_ACCOUNT_VALUES,
    DEFAULT_ACCOUNTS,
    AccountState,
    AccountValue,
    Position,
)
from v6.testing.gateway import (
    ALWAYS_OPEN,
    DEFAULT_HOST,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_PACING_LIMIT,
    DEFAULT_TICK_RATE,
    MAX_ACCOUNT_SUMMARIES,
    STARTUP_SYNC_REQUESTS,
    SYSTEM_MESSAGES,
    US_EQUITY_HOURS,
    BrokenHandshake,
    ClientInfo,
    CloseAfterPlaceOrder,
    CompetingSession,
    DropCommissionReports,
    DropExecutions,
    ErrorCode,
    ExecBeforeOpenOrder,
    FailLiveUpdates,
    FakeGateway,
    FarmFlap,
    Fault,
    HandshakeFault,
    HoldOrderStatus,
    IgnoreRequests,
    Latency,
    LiveRequest,
    MarketHours,
    Phase,
    SilenceInstrument,
    SilenceStream,
    Stall,
    StreamKind,
)

__all__ = [
    "ALWAYS_OPEN",
    "DEFAULT_ACCOUNTS",
    "DEFAULT_ACCOUNT_VALUES",
    "DEFAULT_HOST",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_PACING_LIMIT",
    "DEFAULT_TICK_RATE",
    "MAX_ACCOUNT_SUMMARIES",
    "NO_PACING",
    "STARTUP_SYNC_REQUESTS",
    "SYSTEM_MESSAGES",
    "US_EQUITY_HOURS",
    "AccountState",
    "AccountValue",
    "BrokenHandshake",
    "ClientInfo",
    "CloseAfterPlaceOrder",
    "CompetingSession",
    "DropCommissionReports",
    "DropExecutions",
    "ErrorCode",
    "ExecBeforeOpenOrder",
    "FailLiveUpdates",
    "FakeGateway",
    "FarmFlap",
    "Fault",
    "HandshakeFault",
    "HoldOrderStatus",
    "IgnoreRequests",
    "Latency",
    "LiveRequest",
    "MarketHours",
    "PacingLimits",
    "Phase",
    "Position",
    "SilenceInstrument",
    "SilenceStream",
    "Stall",
    "StreamKind",
]
