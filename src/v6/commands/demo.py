"""``v6-ib demo`` (what ``make demo`` runs): five faults against an embedded fake gateway.

The scenario itself is :func:`v6.testing.demo.run_demo` (on the scenario harness,
:mod:`v6.testing.scenario`); this module draws the live view (the status line
on a terminal, one log line per state transition, ``connection_health()`` at key points) and the
final table. Exit 0 when every fault was detected and recovered with ticks flowing again, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from v6.commands import (
    DEFAULT_REFRESH_INTERVAL,
    Commands,
    StatusLine,
    add_verbosity_argument,
    configure_logging,
    positive_float,
)
from v6.connection.listeners import cancel_and_wait

if TYPE_CHECKING:
    from v6.manager import IBConnectionManager
    from v6.testing import FakeGateway
    from v6.testing.demo import DemoReport, FaultResult

#: Interval multiplier of ``--scale``: 1 is the demo as designed (about 15 s).
DEFAULT_SCALE: Final = 1.0

EXIT_ALL_RECOVERED: Final = 0
EXIT_NOT_RECOVERED: Final = 1


def add_demo_command(commands: Commands) -> None:
    """Add ``v6-ib demo``."""
    parser = commands.add_parser(
        "demo",
        help="inject five faults into an embedded fake gateway and measure the recovery",
        description=(
            "Start a fake gateway and a supervised connection with a market-data stream, then "
            "inject: a stall, a dropped socket, the gateway down for a while, 1100 then 1101, "
            "and a client id taken by another client. Prints a live view and a table of measured "
            "detection and recovery times. Exit 0 if every fault was recovered, else 1."
        ),
    )
    parser.add_argument(
        "--scale",
        type=positive_float,
        default=DEFAULT_SCALE,
        metavar="FACTOR",
        help="multiply every interval (0.5: twice as fast, less margin on a busy machine; "
        "default: %(default)s)",
    )
    add_verbosity_argument(parser, "INFO")
    parser.set_defaults(run=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    """CLI entry: runs the demo in its own event loop."""
    try:
        report = asyncio.run(_demo(args.scale, args.verbose))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_NOT_RECOVERED
    except (TimeoutError, ConnectionError) as exc:  # the first connect never happened
        print(f"v6-ib demo: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_NOT_RECOVERED
    return EXIT_ALL_RECOVERED if report.ok else EXIT_NOT_RECOVERED


async def _demo(scale: float, verbosity: int) -> DemoReport:
    from v6.testing.demo import DemoTimings, run_demo

    views: list[StatusLine] = []
    refresher: list[asyncio.Task[None]] = []

    def sink(message: Any) -> None:
        if views:
            views[0].sink(message)
        else:
            sys.stderr.write(str(message))
            sys.stderr.flush()

    # The fake gateway logs every socket at INFO: shown from -v on.
    configure_logging(verbosity, "INFO", sink=sink, quiet_modules=("v6.testing",))

    def on_start(manager: IBConnectionManager, gateway: FakeGateway) -> None:
        view = StatusLine(manager, interval=DEFAULT_REFRESH_INTERVAL)
        views.append(view)
        if view.tty:  # elsewhere the transition log lines are the live view
            refresher.append(asyncio.create_task(view.run(), name="v6-ib-demo-status"))

    def on_health(label: str, health: Mapping[str, Any]) -> None:
        text = f"connection_health() {label}: {json.dumps(health, sort_keys=True)}"
        if views:
            views[0].print(text)
        else:
            print(text, flush=True)

    timings = DemoTimings().scaled(scale)
    try:
        report = await run_demo(timings, on_start=on_start, on_health=on_health)
    finally:
        for task in refresher:
            await cancel_and_wait(task)
        for view in views:
            if view.tty:
                await view.refresh()  # the manager has stopped: say so, not the last state
            view.close()
    print()
    print(format_table(report.rows))
    print()
    subscriptions = report.subscriptions_at_end
    print(
        f"market-data streams open at the gateway at the end: {subscriptions} "
        f"({'as expected' if subscriptions == 1 else 'expected 1'}); "
        f"demo took {report.seconds:.1f} s"
    )
    live = "filled, on_fill told once" if report.live_order_filled else "NOT reported filled"
    print(f"market order before the faults: {live}")
    verdict = "every fault recovered" if report.ok else "NOT every fault recovered"
    print(f"result: {verdict}", flush=True)
    return report


_HEADERS: Final = (
    "fault",
    "lasted (ms)",
    "detected after (ms)",
    "recovered after (ms)",
    "ticks resumed",
    "note",
)


def format_table(rows: Iterable[FaultResult]) -> str:
    """The result table, plain text, with a legend of what each column measures."""
    from v6.testing.demo import cell

    body = [
        (
            r.fault,
            cell(r.lasted_ms),
            cell(r.detected_ms),
            cell(r.recovered_ms),
            "no" if r.ticks_ms is None else f"yes, {cell(r.ticks_ms)} ms",
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(_HEADERS)]
    right = {1, 2, 3}

    def line(cells: Iterable[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(_HEADERS), line("-" * w for w in widths)]
    out += [line(b) for b in body]
    out.append("")
    out.append(
        "detected after: from injecting the fault. recovered after / ticks resumed: from the"
    )
    out.append("end of the fault (unstall, restart, 1101; the injection for drop and client id).")
    return "\n".join(out)
