"""``v6-ib gateway``: run the fake gateway in the foreground until Ctrl-C / SIGTERM.

``python -m v6.testing.cli gateway ...`` runs the same command without the rest of ``v6-ib``.

Each client connect and disconnect is logged (loguru, stderr). Once listening, one line
``fake gateway listening on <host>:<port>`` goes to stdout (with ``--port 0`` it names the port
picked; with ``--host ""`` every address, one port: ``0.0.0.0:4002, [::]:4002``), so scripts can
wait for it.

It trades like :class:`FakeGateway`: ``--seed`` fixes the quotes' random walk, ``--fill-size``
the largest execution, so any language's TWS API client can place orders against it.

It enforces IB's pacing rules (:mod:`v6.protocol.pacing`) as the library does: IB's defaults,
``--pacing-scale`` to shorten their windows, one option per limit (``N`` or ``off``), and
``--no-ib-pacing`` to enforce none of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from loguru import logger

from v6.errors import ConfigError
from v6.protocol.pacing import PacingLimits
from v6.testing.broker import DEFAULT_ACCOUNTS, DEFAULT_FILL_SIZE, DEFAULT_SEED
from v6.testing.gateway import (
    DEFAULT_HISTORICAL_LATENCY,
    DEFAULT_HOST,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_PACING_LIMIT,
    DEFAULT_PACING_RULES,
    DEFAULT_REALTIME_BAR_INTERVAL,
    DEFAULT_TICK_RATE,
    FakeGateway,
    format_addresses,
)

_N = TypeVar("_N", int, float)
DEFAULT_CLI_PORT: Final = 4002
"""IB Gateway's paper-trading port, the CLI's default."""


def _accounts(text: str) -> tuple[str, ...]:
    accounts = tuple(a.strip() for a in text.split(",") if a.strip())
    if not accounts:
        raise argparse.ArgumentTypeError("at least one account code is required")
    return accounts


_OFF: Final = "off"
#: ``--option`` -> (the PacingLimits field it sets, what it limits); each takes N or "off".
PACING_OPTIONS: Final = {
    "--identical-window": ("identical_window", "seconds in which an identical small-bar "
                           "historical request gets 162"),
    "--same-contract-limit": ("same_contract", "historical requests per contract + exchange + "
                              "tick type in 2 s; the next gets 162"),
    "--historical-limit": ("historical", "historical requests in 10 min (BID_ASK counts 2, bars "
                           ">= 1 min are exempt); the next gets 162"),
    "--open-historical-limit": ("open_historical", "open historical requests; the next gets "
                                "322"),
    "--realtime-bars-limit": ("realtime_bars", "new reqRealTimeBars in 10 min; the next gets "
                              "420"),
    "--market-data-lines": ("market_data_lines", "market-data lines in use; the next request "
                            "gets 101"),
}  # fmt: skip


def _or_off(convert: Callable[[str], _N], what: str) -> Callable[[str], _N | None]:
    """An argparse type: ``off`` (any case) is ``None``, anything else ``convert``-ed."""

    def parse(text: str) -> _N | None:
        if text.strip().lower() == _OFF:
            return None
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} or 'off', got {text!r}") from None

    return parse


def _add_pacing_options(parser: argparse.ArgumentParser) -> None:
    rules = parser.add_argument_group(
        "IB's pacing rules", "enforced over all clients, as by TWS; each limit N or 'off'"
    )
    rules.add_argument("--no-ib-pacing", action="store_true",
                       help="enforce none of IB's pacing rules (error 100 stays: --pacing-limit)")
    rules.add_argument("--pacing-scale", type=float, default=DEFAULT_PACING_RULES.scale,
                       metavar="S", help="multiply every window (15 s, 2 s, 10 min) by S, e.g. "
                       "0.01 turns 10 min into 6 s (default %(default)s)")  # fmt: skip
    for option, (field, limits) in PACING_OPTIONS.items():
        default = getattr(DEFAULT_PACING_RULES, field)
        seconds = field == "identical_window"
        rules.add_argument(option, dest=field, default=default, metavar="S|off" if seconds else
                           "N|off", type=_or_off(float, "seconds") if seconds else
                           _or_off(int, "a count"),
                           help=f"{limits} (default {default})")  # fmt: skip


def pacing_rules_from_args(args: argparse.Namespace) -> PacingLimits | None:
    """The IB pacing rules ``v6-ib gateway`` enforces, from its options. Raises
    ``ConfigError`` for a value out of range."""
    if args.no_ib_pacing:
        return None
    limits = {field: getattr(args, field) for field, _ in PACING_OPTIONS.values()}
    return PacingLimits(scale=args.pacing_scale, **limits)


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
    parser.add_argument(
        "--realtime-bar-interval",
        type=float,
        default=DEFAULT_REALTIME_BAR_INTERVAL,
        metavar="S",
        help="seconds between realtimeBar messages and keepUpToDate updates (default "
        "%(default)s)",
    )
    parser.add_argument(
        "--historical-latency",
        type=float,
        default=DEFAULT_HISTORICAL_LATENCY,
        metavar="S",
        help="seconds before a historical reply; open until then (default %(default)s)",
    )
    _add_pacing_options(parser)
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
            pacing_rules=pacing_rules_from_args(args),
            realtime_bar_interval=args.realtime_bar_interval,
            historical_latency=args.historical_latency,
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


def parse_gateway_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments of ``python -m v6.testing.cli gateway ...``."""
    parser = argparse.ArgumentParser(prog="v6-ib")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_gateway_command(commands)
    return parser.parse_args(argv)


def gateway_main(argv: Sequence[str] | None = None) -> int:
    """``python -m v6.testing.cli gateway ...``: the gateway command on its own."""
    args = parse_gateway_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(gateway_main())
