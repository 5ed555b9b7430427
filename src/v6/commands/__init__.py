"""The operator subcommands of ``v6-ib`` (``check``, ``watch``, ``demo``) and what they share.

Each command module exposes ``add_<name>_command(commands)``, registered by
:func:`v6.cli.build_parser`, whose ``run`` function takes the parsed arguments and returns the
exit code. Building the parser imports no optional dependency: the fake gateway and
prometheus_client are imported only when a command that needs them runs.

Shared here: logging set-up (loguru to stderr; stdout belongs to the command's output), the
connection options, and :class:`StatusLine`, the live one-line view used by ``watch`` and ``demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TextIO

from loguru import logger

from v6.connection import defaults as d
from v6.connection.settings import parse_client_ids

if TYPE_CHECKING:
    from typing import TypeAlias

    from loguru import Message

    from v6.manager import IBConnectionManager


#: Refreshes per second of the live status line on a terminal.
DEFAULT_REFRESH_INTERVAL: Final = 0.25
#: loguru's line format for the commands (stderr).
LOG_FORMAT: Final = "{time:HH:mm:ss.SSS} {level: <7} {message}"

if TYPE_CHECKING:
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Commands = argparse._SubParsersAction

_LEVELS: Final = ("WARNING", "INFO", "DEBUG")


# ------------------------------------------------------------------------------ argument types


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port 1..65535 (0 is allowed only where a command says so)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..65535")
    return value


def client_ids(text: str) -> tuple[int, ...]:
    """argparse type: one client id or a comma-separated list (``7`` or ``7,8,9``)."""
    try:
        ids = parse_client_ids(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an integer or a comma-separated list of integers"
        ) from None
    if not ids:
        raise argparse.ArgumentTypeError("at least one client id is required")
    return ids


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host`` and ``--port``: flags win over ``IB_HOST`` / ``IB_PORT``, then the defaults."""
    parser.add_argument(
        "--host",
        help=f"TWS / IB Gateway host (default: $IB_HOST, else {d.DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        help=f"API port (default: $IB_PORT, else {d.DEFAULT_PORT}; IB Gateway paper is 4002)",
    )


def add_verbosity_argument(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help=f"more log lines on stderr (default level {default}; -vv adds ib_async's own log)",
    )


def endpoint_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that were given, as keyword overrides for ``IBConnectionManager.from_env``."""
    return {
        name: value
        for name, value in (("host", args.host), ("port", args.port))
        if value is not None
    }


# ------------------------------------------------------------------------------------ logging


class _InterceptHandler(logging.Handler):
    """Sends stdlib ``logging`` records (ib_async's) to loguru, so there is one log stream."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).log(level, "{}: {}", record.name, record.getMessage())


def configure_logging(
    verbosity: int,
    default: str = "WARNING",
    *,
    sink: Callable[[Message], None] | TextIO | None = None,
    quiet_modules: tuple[str, ...] = (),
) -> str:
    """Log to stderr (or ``sink``) from ``default`` level, one step more per ``-v``.

    ``ib_async``'s own log repeats what the manager reports in its own words, so it is shown only
    from ``-vv``; tracebacks from ``-v``. Modules in ``quiet_modules`` log only warnings until
    ``-v``. Returns the level.
    Called by the CLI entry functions only: a library never configures logging.
    """
    start = _LEVELS.index(default)
    level = _LEVELS[min(start + verbosity, len(_LEVELS) - 1)]
    quiet_level = logger.level("WARNING").no if verbosity == 0 else 0

    def keep(record: Any) -> bool:
        name = record["name"] or ""
        if any(name == m or name.startswith(m + ".") for m in quiet_modules):
            return bool(record["level"].no >= quiet_level)
        return True

    # Tracebacks only from -v on, and never with variable values (loguru's "diagnose" would
    # print whatever a frame holds).
    line_format = LOG_FORMAT + "\n" + ("{exception}" if verbosity else "")

    def format_record(record: Any) -> str:
        return line_format

    logger.remove()
    logger.add(
        sink if sink is not None else sys.stderr,
        level=level,
        format=format_record,
        filter=keep,
        backtrace=False,
        diagnose=False,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.NOTSET, force=True)
    logging.getLogger("ib_async").setLevel(
        logging.DEBUG if verbosity >= 2 else logging.CRITICAL + 1
    )
    return level


# -------------------------------------------------------------------------------- status line

_COLOURS: Final = {
    "connected": "\x1b[32m",  # green
    "degraded": "\x1b[33m",  # yellow
    "connecting": "\x1b[33m",
    "backing_off": "\x1b[33m",
    "circuit_open": "\x1b[31m",  # red
    "disconnected": "\x1b[31m",
    "stopped": "\x1b[2m",  # dim
}
_RESET: Final = "\x1b[0m"
_CLEAR_LINE: Final = "\r\x1b[2K"


def format_status(
    health: Mapping[str, Any], *, colour: bool = False, width: int | None = None
) -> str:
    """One line from ``connection_health()``: state, RTT, breaker, reconnects, last error.

    ``width`` truncates the text (a wrapped line cannot be redrawn in place); ``colour`` adds
    ANSI colour to the state."""
    state = str(health["state"])
    rtt = health.get("last_rtt_seconds")
    age = health.get("last_heartbeat_age_seconds")
    parts = [
        state.upper(),
        f"client {health['client_id']}",
        "rtt " + ("-" if rtt is None else f"{rtt * 1000:.1f} ms"),
        "heard " + ("never" if age is None else f"{age:.1f}s ago"),
        f"breaker {health['circuit_breaker_state']}",
        f"reconnects {health['reconnect_count']}",
    ]
    if health.get("degraded_for_seconds") is not None:
        parts.append(f"cut off {health['degraded_for_seconds']:.1f}s")
    if health.get("last_error"):
        parts.append(f"last error: {health['last_error']}")
    line = "  ".join(parts)
    if width is not None:
        line = line[:width]
    if colour:
        head, sep, tail = line.partition("  ")
        line = f"{_COLOURS.get(state, '')}{head}{_RESET}{sep}{tail}"
    return line


def _change_key(health: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a new line on a non-terminal (not RTT or age, which move every probe)."""
    return (
        health["state"],
        health["client_id"],
        health["circuit_breaker_state"],
        health["reconnect_count"],
        health.get("last_error"),
    )


class StatusLine:
    """A live status line for a manager.

    On a terminal the line is redrawn in place (carriage return) every ``interval`` seconds and
    log lines are printed above it (use :meth:`sink` as the loguru sink). Elsewhere (a pipe, a
    file, journald) a timestamped line is printed each time the state, client id, breaker,
    reconnect count or last error changes.
    """

    def __init__(
        self,
        manager: IBConnectionManager,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        interval: float = DEFAULT_REFRESH_INTERVAL,
        tty: bool | None = None,
    ) -> None:
        self.manager = manager
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.interval = interval
        self.tty = self.out.isatty() if tty is None else tty
        self._line = ""  # what is drawn now (terminal only)
        self._last_key: tuple[Any, ...] | None = None

    def sink(self, message: Message) -> None:
        """loguru sink: on a terminal, clear the status line, log, redraw."""
        if self.tty and self._line:
            self.out.write(_CLEAR_LINE)
            self.out.flush()
        self.err.write(str(message))
        self.err.flush()
        if self.tty and self._line:
            self.out.write(self._line)
            self.out.flush()

    def print(self, text: str) -> None:
        """A permanent line on stdout (above the status line on a terminal)."""
        if self.tty and self._line:
            self.out.write(_CLEAR_LINE)
        self.out.write(text + "\n")
        if self.tty and self._line:
            self.out.write(self._line)
        self.out.flush()

    async def refresh(self) -> None:
        health = await self.manager.connection_health()
        if self.tty:
            width = max(20, shutil.get_terminal_size().columns - 1)
            line = format_status(health, colour=True, width=width)
            self._line = line
            self.out.write(_CLEAR_LINE + line)
            self.out.flush()
            return
        key = _change_key(health)
        if key != self._last_key:
            self._last_key = key
            stamp = time.strftime("%H:%M:%S")
            self.out.write(f"{stamp} {format_status(health)}\n")
            self.out.flush()

    async def run(self) -> None:
        """Refresh until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        """End the line on a terminal, so the shell prompt starts on a fresh one."""
        if self.tty and self._line:
            self.out.write("\n")
            self.out.flush()
            self._line = ""
