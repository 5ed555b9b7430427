"""The ``v6-ib`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Runner = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v6-ib",
        description="Tools for the v6 Interactive Brokers connection layer.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from v6.commands.check import add_check_command
    from v6.commands.demo import add_demo_command
    from v6.commands.watch import add_watch_command
    from v6.testing.cli import add_gateway_command

    add_check_command(commands)
    add_watch_command(commands)
    add_demo_command(commands)
    add_gateway_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Runner = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
