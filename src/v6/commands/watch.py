"""``v6-ib watch``: supervise a connection and show its health live until Ctrl-C / SIGTERM.

On a terminal one status line (state, client id, RTT, breaker, reconnects, last error) is redrawn
a few times a second, with every state transition logged above it; elsewhere a line is printed per
change. ``--metrics-port`` serves the Prometheus metrics (needs ``pip install v6[metrics]``).
Exit 0 when stopped by a signal, 1 if supervision ended on a fatal error, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from v6.commands import (
    DEFAULT_REFRESH_INTERVAL,
    Commands,
    StatusLine,
    add_endpoint_arguments,
    add_verbosity_argument,
    client_ids,
    configure_logging,
    endpoint_overrides,
    port_number,
    positive_float,
)
from v6.connection import defaults as d
from v6.connection.listeners import cancel_and_wait

if TYPE_CHECKING:
    from v6.manager import IBConnectionManager
    from v6.metrics import MetricsServer

#: watch's own client id (the check uses DEFAULT_CHECK_CLIENT_ID): watching never takes the
#: application's session. A comma list gives fallbacks for error 326.
DEFAULT_WATCH_CLIENT_IDS: Final = (998,)

EXIT_OK: Final = 0
EXIT_FATAL: Final = 1
EXIT_USAGE: Final = 2


def add_watch_command(commands: Commands) -> None:
    """Add ``v6-ib watch``."""
    parser = commands.add_parser(
        "watch",
        help="supervise a connection and show a live status line until Ctrl-C",
        description=(
            "Connect and keep the connection up (reconnecting on loss, stalls and long 1100 "
            "outages) while showing state, round-trip time, circuit breaker, reconnects and last "
            "error. Every state transition is logged. Ctrl-C or SIGTERM stops it (exit 0)."
        ),
    )
    add_endpoint_arguments(parser)
    default_ids = ",".join(str(i) for i in DEFAULT_WATCH_CLIENT_IDS)
    parser.add_argument(
        "--client-id",
        type=client_ids,
        default=DEFAULT_WATCH_CLIENT_IDS,
        metavar="ID[,ID...]",
        help=f"client id(s), tried in turn on error 326 (default: {default_ids}; "
        "$IB_CLIENT_ID is ignored: it is the application's)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=positive_float,
        metavar="SECONDS",
        help="probe after this much silence (default: $IB_HEARTBEAT_INTERVAL, else "
        f"{d.DEFAULT_HEARTBEAT_INTERVAL:g})",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="reconnect when a probe is unanswered this long (default: $IB_HEARTBEAT_TIMEOUT, "
        f"else {d.DEFAULT_HEARTBEAT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)",
    )
    parser.add_argument(
        "--metrics-host",
        metavar="HOST",
        help="interface for --metrics-port (default: loopback only, "
        "v6.metrics.DEFAULT_METRICS_HOST)",
    )
    parser.add_argument(
        "--refresh",
        type=positive_float,
        default=DEFAULT_REFRESH_INTERVAL,
        metavar="SECONDS",
        help="how often the status is refreshed (default: %(default)s)",
    )
    add_verbosity_argument(parser, "INFO")
    parser.set_defaults(run=run_watch)


def run_watch(args: argparse.Namespace) -> int:
    """CLI entry: runs :func:`watch` in its own event loop."""
    from v6.errors import ConfigError

    try:
        return asyncio.run(watch(args))
    except ConfigError as exc:
        print(f"v6-ib watch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_OK


async def watch(args: argparse.Namespace) -> int:
    from loguru import logger

    from v6.manager import IBConnectionManager

    overrides = endpoint_overrides(args)
    if args.heartbeat_interval is not None:
        overrides["heartbeat_interval"] = args.heartbeat_interval
    if args.heartbeat_timeout is not None:
        overrides["heartbeat_timeout"] = args.heartbeat_timeout
    manager = IBConnectionManager.from_env(None, client_id=list(args.client_id), **overrides)
    view = StatusLine(manager, interval=args.refresh)
    configure_logging(args.verbose, "INFO", sink=view.sink)
    try:
        metrics = _serve_metrics(manager, args)
    except (ImportError, OSError) as exc:
        print(f"v6-ib watch: error: metrics: {exc}", file=sys.stderr)
        return EXIT_USAGE

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = _handle_signals(loop, stop.set)
    logger.info(
        "Watching {}:{} with client id(s) {}", manager.host, manager.port, list(args.client_id)
    )
    refresher: asyncio.Task[None] | None = None
    try:
        await manager.start()
        refresher = asyncio.create_task(view.run(), name="v6-ib-watch-status")
        return await _supervise_until(stop, manager, args.refresh)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        if refresher is not None:
            await cancel_and_wait(refresher)
        await manager.stop()
        if metrics is not None:
            metrics.close()
        await view.refresh()
        view.close()


def _serve_metrics(manager: IBConnectionManager, args: argparse.Namespace) -> MetricsServer | None:
    """Start the metrics endpoint if asked for (raises ImportError / OSError)."""
    if args.metrics_port is None:
        return None
    from loguru import logger

    from v6.metrics import serve_metrics

    if args.metrics_host is None:
        metrics = serve_metrics(manager, args.metrics_port)
    else:
        metrics = serve_metrics(manager, args.metrics_port, args.metrics_host)
    logger.info("Serving metrics at {}", metrics.url)
    return metrics


def _handle_signals(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
) -> list[signal.Signals]:
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform
            loop.add_signal_handler(signum, callback)
            handled.append(signum)
    return handled


async def _supervise_until(
    stop: asyncio.Event, manager: IBConnectionManager, refresh: float
) -> int:
    """Wait for ``stop``; EXIT_FATAL if supervision ends by itself first."""
    from loguru import logger

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), refresh)
        health = await manager.connection_health()
        if not health["supervised"] and not stop.is_set():
            logger.error("Supervision ended: {}", health["last_error"])
            return EXIT_FATAL
    logger.info("Stopping")
    return EXIT_OK
