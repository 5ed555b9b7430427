"""Every default of the connection layer, defined once. README quotes these."""

from __future__ import annotations

# From the user's plan.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7497  # TWS paper trading; IB Gateway paper is 4002
DEFAULT_CLIENT_ID = 1
DEFAULT_MAX_RETRIES = 3  # retries after the first attempt: delays 2 s, 4 s, 8 s
DEFAULT_RETRY_DELAY = 2.0
DEFAULT_HEARTBEAT_INTERVAL = 30.0
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_BREAKER_TIMEOUT = 60.0

# Ours. The plan's connect used timeout=10 for ib_async; we bound a whole attempt by it.
DEFAULT_CONNECT_TIMEOUT = 10.0
# A probe answer later than this means the gateway is not usable for trading. 2.5x ib_async
# Watchdog's probeTimeout (4 s): TWS pauses for seconds under load, and a needless reconnect
# costs a full re-sync and resubscription. With the 30 s interval a stall is found within 40 s.
DEFAULT_HEARTBEAT_TIMEOUT = 10.0
# Caps the exponential backoff; equal to the breaker's open timeout so neither outlasts the other.
DEFAULT_MAX_DELAY = 60.0
# Each retry delay is scaled by a random factor in [1 - jitter, 1 + jitter] (then capped).
DEFAULT_JITTER = 0.2
# How long TWS may report 1100/2110 (cut off from IB) before we reconnect ourselves.
DEFAULT_DEGRADED_GRACE = 120.0

# Restarts (issue 9). Once a second: a restarted gateway is noticed within about a second, while a
# readiness probe costs one local connect + two small frames (~60 per minute per client).
DEFAULT_READINESS_INTERVAL = 1.0
# A local gateway answers the hello in milliseconds; one that needs more than 2 s is not ready for
# the start-up sync either, and a socat accept-and-hold is declared silent within 2 s. The manager
# also caps it at connect_timeout.
DEFAULT_READINESS_TIMEOUT = 2.0
# IB Gateway's daily restart (auto-restart or IBC) takes about 60-90 s from exit to the API port
# answering again; 120 s covers a restart begun in the window's last minute without treating a
# window that really overran as normal for long.
DEFAULT_MAINTENANCE_GRACE = 120.0
# A gateway that has accepted sockets but not answered a hello for 120 s is hung, not starting.
# Equal to the maintenance grace, so an overrun window reaches the operator and IBC together.
DEFAULT_IBC_RESTART_AFTER = 120.0
# IBC replies from its GUI thread after queueing the action; 5 s is generous on a busy machine.
DEFAULT_IBC_TIMEOUT = 5.0
# A request unanswered while the gateway sends nothing at all: after this fraction of
# heartbeat_timeout a probe goes out at once (a slow historical query alone is not a stall: the
# probe's answer clears it); nothing by heartbeat_timeout after the request is a stall.
REQUEST_PROBE_FRACTION = 0.5

# The environment prefix read by IBConnectionManager.from_env().
ENV_PREFIX = "IB_"
