"""``v6-ib gateway``: run the fake gateway in the foreground until Ctrl-C / SIGTERM.

``python -m v6.testing.cli gateway ...`` runs the same command without the rest of ``v6-ib``.

Each client connect and disconnect is logged (loguru, stderr). Once listening, one line
``fake gateway listening on <host>:<port>`` goes to stdout (with ``--port 0`` it names the port
picked; with ``--host ""`` every address, one port: ``0.0.0.0:4002, [::]:4002``), so scripts can
wait for it.

It trades like :class:`FakeGateway`: ``--seed`` fixes the quotes' random walk, ``--fill-size``
the largest execution, so any language's TWS API client can place orders against it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import Final

from loguru import logger

from v6.errors import ConfigError
from v6.testing.broker import DEFAULT_ACCOUNTS, DEFAULT_FILL_SIZE, DEFAULT_SEED
from v6.testing.gateway import (
    DEFAULT_HOST,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_PACING_LIMIT,
    DEFAULT_TICK_RATE,
    FakeGateway,
    format_addresses,
)

DEFAULT_CLI_PORT: Final = 4002
"""IB Gateway's paper-trading port, the CLI's default."""


def _accounts(text: str) -> tuple[str, ...]:
    accounts = tuple(a.strip() for a in text.split(",") if a.strip())
    if not accounts:
        raise argparse.ArgumentTypeError("at least one account code is required")
    return accounts


def add_gateway_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gateway`` subcommand to ``v6-ib``."""
    parser = commands.add_parser(
        "gateway",
        help="run a fake TWS / IB Gateway in the foreground",
        description="Serve the TWS API socket protocol until Ctrl-C / SIGTERM.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface (default %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_CLI_PORT,
        help="0 picks a free one (default %(default)s)",
    )
    parser.add_argument(
        "--accounts",
        type=_accounts,
        default=DEFAULT_ACCOUNTS,
        metavar="DU1234567,...",
        help=f"comma-separated account codes (default {','.join(DEFAULT_ACCOUNTS)})",
    )
    parser.add_argument(
        "--tick-rate",
        type=float,
        default=DEFAULT_TICK_RATE,
        help="price updates/s per market-data subscription, 'inf' = as fast as the socket drains "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--pacing-limit",
        type=int,
        default=DEFAULT_PACING_LIMIT,
        help="messages/s per client before error 100; 0 disables (default %(default)s)",
    )
    parser.add_argument(
        "--max-clients",
        type=int,
        default=DEFAULT_MAX_CLIENTS,
        help="simultaneous clients (default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed of the quotes (default %(default)s)"
    )
    parser.add_argument(
        "--fill-size",
        type=float,
        default=DEFAULT_FILL_SIZE,
        help="most shares per execution; larger orders fill in parts (default %(default)s)",
    )
    parser.set_defaults(run=run_gateway)


def run_gateway(args: argparse.Namespace) -> int:
    """Entry point of ``v6-ib gateway``; returns the exit status."""
    try:
        gateway = FakeGateway(
            args.host,
            args.port,
            accounts=args.accounts,
            tick_rate=args.tick_rate,
            pacing_limit=args.pacing_limit or None,
            max_clients=args.max_clients,
            seed=args.seed,
            fill_size=args.fill_size,
        )
    except ConfigError as exc:
        print(f"v6-ib gateway: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(gateway))
    except KeyboardInterrupt:  # platforms without loop signal handlers
        return 0


async def _serve(gateway: FakeGateway) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
    except OSError as exc:
        logger.error("fake gateway: cannot listen on {}:{}: {}", gateway.host, gateway.port, exc)
        return 1
    print(f"fake gateway listening on {format_addresses(gateway.addresses)}", flush=True)
    try:
        await stop.wait()
    finally:
        await gateway.stop()
    return 0


def gateway_main(argv: Sequence[str] | None = None) -> int:
    """``python -m v6.testing.cli gateway ...``: the gateway command on its own."""
    parser = argparse.ArgumentParser(prog="v6-ib")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_gateway_command(commands)
    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(gateway_main())
