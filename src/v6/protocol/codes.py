"""TWS error and system-message codes and TWS's own texts for them: defined once, shared by the
manager (which interprets them), the fake gateway (which sends them) and the demo.

Pure data; no I/O. Sources: IB's TWS API documentation and the ib_async / ibapi sources.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class ErrorCode(IntEnum):
    """TWS error / system message codes v6 sends or acts on."""

    MAX_RATE_EXCEEDED = 100
    MAX_TICKERS = 101
    DUPLICATE_ORDER_ID = 103
    PRICE_NOT_ON_TICK = 110
    CANCEL_NOT_FOUND = 135
    NOT_CANCELLABLE = 161
    HISTORICAL_DATA_ERROR = 162
    ORDER_REJECTED = 201
    ORDER_CANCELLED = 202
    VALIDATION_ERROR = 321
    ACCOUNT_SUMMARY_LIMIT = 322
    CLIENT_ID_IN_USE = 326
    INVALID_REALTIME_QUERY = 420
    CONNECTIVITY_LOST = 1100
    RESTORED_DATA_LOST = 1101
    RESTORED_DATA_MAINTAINED = 1102
    SOCKET_PORT_RESET = 1300
    MARKET_DATA_FARM_BROKEN = 2103
    MARKET_DATA_FARM_OK = 2104
    HMDS_FARM_BROKEN = 2105
    HMDS_FARM_OK = 2106
    TWS_SERVER_BROKEN = 2110
    SEC_DEF_FARM_BROKEN = 2157
    SEC_DEF_FARM_OK = 2158
    CANCEL_UNKNOWN_ORDER = 10147
    CANCEL_FINISHED_ORDER = 10148
    LIVE_UPDATES_FAILED = 10182
    COMPETING_LIVE_SESSION = 10197


#: TWS lost its link to IB; the API socket stays up.
CUT_OFF: Final = frozenset({ErrorCode.CONNECTIVITY_LOST, ErrorCode.TWS_SERVER_BROKEN})
#: TWS's link to IB is back.
RESTORED: Final = frozenset({ErrorCode.RESTORED_DATA_LOST, ErrorCode.RESTORED_DATA_MAINTAINED})

#: Farm notices: code -> (farm kind, ok?). Tracked for health; never a reason to reconnect.
FARM_CODES: Final[dict[int, tuple[str, bool]]] = {
    ErrorCode.MARKET_DATA_FARM_BROKEN: ("market_data", False),
    ErrorCode.MARKET_DATA_FARM_OK: ("market_data", True),
    ErrorCode.HMDS_FARM_BROKEN: ("historical_data", False),
    ErrorCode.HMDS_FARM_OK: ("historical_data", True),
    ErrorCode.SEC_DEF_FARM_BROKEN: ("sec_def", False),
    ErrorCode.SEC_DEF_FARM_OK: ("sec_def", True),
}

SYSTEM_MESSAGES: Final[dict[int, str]] = {
    ErrorCode.CONNECTIVITY_LOST: "Connectivity between IB and Trader Workstation has been lost.",
    ErrorCode.RESTORED_DATA_LOST: (
        "Connectivity between IB and Trader Workstation has been restored - data lost."
    ),
    ErrorCode.RESTORED_DATA_MAINTAINED: (
        "Connectivity between IB and Trader Workstation has been restored - data maintained."
    ),
    ErrorCode.MARKET_DATA_FARM_BROKEN: "Market data farm connection is broken:usfarm",
    ErrorCode.MARKET_DATA_FARM_OK: "Market data farm connection is OK:usfarm",
    ErrorCode.HMDS_FARM_BROKEN: "HMDS data farm connection is broken:ushmds",
    ErrorCode.HMDS_FARM_OK: "HMDS data farm connection is OK:ushmds",
    ErrorCode.TWS_SERVER_BROKEN: (
        "Connectivity between Trader Workstation and server is broken. "
        "It will be restored automatically."
    ),
    ErrorCode.SEC_DEF_FARM_BROKEN: "Sec-def data farm connection is broken:secdefnj",
    ErrorCode.SEC_DEF_FARM_OK: "Sec-def data farm connection is OK:secdefnj",
}
"""TWS's own text for the system messages (request id -1) the fake gateway can broadcast."""

#: The farm notices TWS sends after startApi.
FARM_NOTICES: Final = (
    ErrorCode.MARKET_DATA_FARM_OK,
    ErrorCode.HMDS_FARM_OK,
    ErrorCode.SEC_DEF_FARM_OK,
)

TEXT_CLIENT_ID_IN_USE: Final = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
TEXT_ACCOUNT_SUMMARY_LIMIT: Final = (
    "Error processing request:-'bd' : cause - Maximum number of account summary requests exceeded"
)


def max_rate_text(limit: int, received: int) -> str:
    """TWS's error 100 text."""
    return f"Max rate of messages per second has been exceeded:max={limit} rec={received} (1)"


# Pacing (v6.protocol.pacing): what IB answers a request over one of its rules.
TEXT_PACING_VIOLATION: Final = "Historical data request pacing violation"
TEXT_HISTORICAL_PACING: Final = (
    f"Historical Market Data Service error message:{TEXT_PACING_VIOLATION}"
)  # 162
TEXT_REALTIME_PACING: Final = f"Invalid Real-time Query:{TEXT_PACING_VIOLATION}"  # 420
TEXT_OPEN_HISTORICAL_LIMIT: Final = (
    "Error processing request:Only 50 simultaneous API historical data requests allowed."
)  # 322
TEXT_MAX_TICKERS: Final = "Max number of tickers has been reached"  # 101

# Live data (sent by the fake gateway's data faults).
TEXT_LIVE_UPDATES_FAILED: Final = "Failed to request live updates (disconnected)."  # 10182
TEXT_COMPETING_LIVE_SESSION: Final = "No market data during competing live session"  # 10197

#: Farm notices per farm kind: (broken code, OK code, TWS's text before the farm's name).
FARM_NOTICE_TEXTS: Final[dict[str, tuple[int, int, str]]] = {
    "market_data": (ErrorCode.MARKET_DATA_FARM_BROKEN, ErrorCode.MARKET_DATA_FARM_OK,
                    "Market data farm connection is"),
    "historical_data": (ErrorCode.HMDS_FARM_BROKEN, ErrorCode.HMDS_FARM_OK,
                        "HMDS data farm connection is"),
    "sec_def": (ErrorCode.SEC_DEF_FARM_BROKEN, ErrorCode.SEC_DEF_FARM_OK,
                "Sec-def data farm connection is"),
}  # fmt: skip


def farm_notice(kind: str, farm: str, ok: bool) -> tuple[int, str]:
    """TWS's farm notice (code, text) for ``farm`` of ``kind`` (a :data:`FARM_CODES` kind:
    ``market_data``, ``historical_data``, ``sec_def``): ``(2103, "Market data farm connection is
    broken:usfarm")``."""
    broken, good, text = FARM_NOTICE_TEXTS[kind]
    return (good, f"{text} OK:{farm}") if ok else (broken, f"{text} broken:{farm}")


def is_pacing_violation(code: int, text: str) -> bool:
    """IB refused a request for pacing (and would take it later): 162 / 420 "pacing
    violation", or 322 "simultaneous" historical requests."""
    if code in (ErrorCode.HISTORICAL_DATA_ERROR, ErrorCode.INVALID_REALTIME_QUERY):
        return "pacing violation" in text.lower()
    return code == ErrorCode.ACCOUNT_SUMMARY_LIMIT and "simultaneous" in text.lower()


# Order errors (sent by the fake gateway's simulated broker).
TEXT_DUPLICATE_ORDER_ID: Final = "Duplicate order id"
TEXT_PRICE_NOT_ON_TICK: Final = (
    "The price does not conform to the minimum price variation for this contract."
)
TEXT_ORDER_CANCELLED: Final = "Order Canceled - reason:"


def rejected_text(reason: str) -> str:
    """TWS's error 201 text."""
    return f"Order rejected - reason:{reason}"


def cancel_unknown_text(order_id: int) -> str:
    """TWS's error 10147 text."""
    return f"OrderId {order_id} that needs to be cancelled is not found."


def cancel_finished_text(order_id: int, status: str) -> str:
    """TWS's error 10148 text."""
    return f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {status}."
