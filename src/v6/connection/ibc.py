"""Escalation to IBC: restart a gateway that accepts TCP but no longer answers the API hello.

IBC (github.com/IbcAlpha/IBC) runs a command server on ``CommandServerPort``: a client connects,
sends one command per line (``RESTART``, ``STOP``, ``RECONNECTDATA`` ...) and reads a reply line
``OK <text>`` or ``ERROR <text>``; an ``INFO`` banner and a prompt (``CommandPrompt``) may come
first. IBC closes the channel itself after ``RESTART``. :func:`send_ibc_command` speaks that and
never raises for network conditions; :class:`IbcEscalation` (pure, injected clock) says when to send
``RESTART``: once per stuck episode, after ``ibc_restart_after`` seconds of accepted-but-silent
probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from loguru import logger

from v6.connection.defaults import DEFAULT_IBC_RESTART_AFTER, DEFAULT_IBC_TIMEOUT
from v6.connection.readiness import ProbeOutcome
from v6.errors import ConfigError
from v6.validation import require_int, require_range

IBC_COMMANDS: Final = frozenset(
    {"RESTART", "STOP", "EXIT", "ENABLEAPI", "RECONNECTDATA", "RECONNECTACCOUNT"}
)
_REPLY_RE: Final = re.compile(r"(?<![A-Za-z])(OK|ERROR)(?![A-Za-z])\s?(.*)")


@dataclass(frozen=True, slots=True)
class IbcReply:
    ok: bool
    text: str


async def send_ibc_command(
    host: str, port: int, command: str = "RESTART", timeout: float = DEFAULT_IBC_TIMEOUT
) -> IbcReply:
    """Send one command to IBC's command server and return its reply.

    Network trouble (refused, timeout, closed without a reply) gives ``IbcReply(False, why)``;
    only invalid arguments raise ConfigError.
    """
    require_int("ibc_command_port", port, low=1, high=65535)
    require_range("ibc_timeout", timeout, low=0.0, low_open=True)
    if command.upper() not in IBC_COMMANDS:
        raise ConfigError(f"ibc command: {command!r} is not one of {sorted(IBC_COMMANDS)}")
    where = f"IBC command server {host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return IbcReply(False, f"{where}: no connection within {timeout:g} s")
    except OSError as exc:
        return IbcReply(False, f"{where}: {type(exc).__name__}: {exc}")
    try:
        async with asyncio.timeout(timeout):
            writer.write(command.upper().encode("ascii") + b"\n")
            await writer.drain()
            return await _read_reply(reader, where)
    except TimeoutError:
        return IbcReply(False, f"{where}: no reply to {command} within {timeout:g} s")
    except (OSError, ValueError) as exc:  # reset, or a line above the stream limit
        return IbcReply(False, f"{where}: {type(exc).__name__}: {exc}")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader, where: str) -> IbcReply:
    while line := await reader.readline():
        text = line.decode("utf-8", errors="replace").strip()
        if text.startswith("INFO"):
            continue
        match = _REPLY_RE.search(text)  # search: a prompt may precede the reply
        if match:
            return IbcReply(match.group(1) == "OK", match.group(2).strip())
    return IbcReply(False, f"{where}: closed without a reply")


@dataclass
class IbcEscalation:
    """When to send IBC ``RESTART`` (pure; the clock is injected).

    Feed every readiness probe's outcome to :meth:`observe`. A stuck episode starts at the first
    probe that was accepted but not answered (silent, closed, garbage) and ends at an answer or a
    refused / unreachable port (the gateway went away: it is restarting). ``observe`` returns True
    once per episode, when it has lasted ``restart_after`` seconds.
    """

    restart_after: float = DEFAULT_IBC_RESTART_AFTER
    clock: Callable[[], float] = time.monotonic
    restarts_requested: int = 0
    _stuck_since: float | None = field(default=None, init=False)
    _requested: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        require_ibc_restart_after(self.restart_after)

    def observe(self, outcome: ProbeOutcome, *, allowed: bool = True) -> bool:
        """Count one probe; True when RESTART is due now. ``allowed=False`` (inside a known
        maintenance window) keeps the episode's clock running but holds the request back."""
        now = self.clock()
        if outcome is ProbeOutcome.ANSWERED or not outcome.accepted:
            self._stuck_since, self._requested = None, False
            return False
        if self._stuck_since is None:
            self._stuck_since = now
        if not allowed or self._requested or now - self._stuck_since < self.restart_after:
            return False
        self._requested = True
        self.restarts_requested += 1
        logger.warning(
            "gateway accepts connections but has not answered the API hello for {:.0f} s: "
            "asking IBC to RESTART it",
            now - self._stuck_since,
        )
        return True

    def stuck_for(self) -> float:
        """Seconds the current episode has lasted (0 when not stuck)."""
        return 0.0 if self._stuck_since is None else self.clock() - self._stuck_since

    @staticmethod
    def record_reply(reply: IbcReply) -> None:
        """Log IBC's answer to the RESTART (the caller sent it)."""
        if reply.ok:
            logger.warning("IBC accepted RESTART: {}", reply.text or "OK")
        else:
            logger.error("IBC RESTART failed: {}", reply.text)


def require_ibc_command_port(value: int | None) -> None:
    """``ibc_command_port`` is None (IBC escalation off) or in [1, 65535]."""
    if value is not None:
        require_int("ibc_command_port", value, low=1, high=65535)


def require_ibc_restart_after(value: float) -> None:
    """``ibc_restart_after`` in (0, inf)."""
    require_range("ibc_restart_after", value, low=0.0, low_open=True)
