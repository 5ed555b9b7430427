"""``v6-ib check``: connect once, probe once, print one JSON line, exit 0 / 1 / 2.

Made for a Docker ``HEALTHCHECK`` or a systemd probe against a real IB Gateway::

    v6-ib check --port 4002 --timeout 5 && echo healthy

* stdout carries exactly one line: ``connection_health()`` of a throw-away manager, plus
  ``probe_rtt_seconds`` and ``check_seconds``; logs go to stderr (WARNING, ``-v`` for more).
* exit 0: connected, API ready and the probe (``reqCurrentTime``) answered; 1: anything else
  (refused, stalled, client id in use, probe unanswered); 2: bad usage or configuration.
* a server on the port that answers the API hello with bytes that are not TWS's version frame
  (a web server, say) is reported as ``not a TWS API endpoint``, apart from a gateway that stalls.
* it uses its own client id (:data:`DEFAULT_CHECK_CLIENT_ID`), never the application's, makes a
  single attempt (``max_retries=0``) and finishes within about ``--timeout`` seconds even when the
  gateway accepts the socket and never answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping
from typing import Any, Final

from v6.commands import (
    Commands,
    add_endpoint_arguments,
    add_verbosity_argument,
    configure_logging,
    endpoint_overrides,
    positive_float,
)

#: The check's own client id, far from the small ids applications use, so a probe never
#: takes (or is refused) the application's session. Two checks at once: give one --client-id.
DEFAULT_CHECK_CLIENT_ID: Final = 999
#: Seconds for the whole check (connect + probe); Docker's HEALTHCHECK --timeout should exceed it.
DEFAULT_CHECK_TIMEOUT: Final = 5.0

#: Bytes of the server's first answer kept to tell a TWS from another server.
ANSWER_BYTES: Final = 64

EXIT_HEALTHY: Final = 0
EXIT_UNHEALTHY: Final = 1
EXIT_USAGE: Final = 2


def add_check_command(commands: Commands) -> None:
    """Add ``v6-ib check``."""
    parser = commands.add_parser(
        "check",
        help="connect, probe once, print one JSON health line; exit 0 healthy, 1 not, 2 usage",
        description=(
            "Connect to TWS / IB Gateway with a dedicated client id, send one probe "
            "(reqCurrentTime) and print connection_health() as one JSON line on stdout. "
            "Exit status: 0 healthy, 1 unhealthy (down, stalled, refused, id in use), "
            "2 bad usage or configuration. Suitable for a Docker HEALTHCHECK or a systemd probe."
        ),
    )
    add_endpoint_arguments(parser)
    parser.add_argument(
        "--client-id",
        type=int,
        default=DEFAULT_CHECK_CLIENT_ID,
        help="client id of the probe; never the application's (default: %(default)s; "
        "$IB_CLIENT_ID is ignored on purpose)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_CHECK_TIMEOUT,
        help="seconds for the whole check, connect and probe (default: %(default)s)",
    )
    add_verbosity_argument(parser, "WARNING")
    parser.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    """CLI entry: runs :func:`check` in its own event loop and prints the JSON line."""
    configure_logging(args.verbose, "WARNING")
    from v6.errors import ConfigError

    try:
        report = asyncio.run(
            check(
                timeout=args.timeout,
                client_id=args.client_id,
                **endpoint_overrides(args),
            )
        )
    except ConfigError as exc:
        print(f"v6-ib check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report, sort_keys=True), flush=True)
    return EXIT_HEALTHY if report["healthy"] else EXIT_UNHEALTHY


async def check(
    *,
    timeout: float = DEFAULT_CHECK_TIMEOUT,
    client_id: int = DEFAULT_CHECK_CLIENT_ID,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Connect once, probe once, disconnect; return the health report.

    ``overrides`` (``host``, ``port``, ...) win over ``IB_*`` variables from ``environ`` (default
    ``os.environ``). Raises :class:`v6.errors.ConfigError` for invalid settings; every connection
    problem is reported in the result (``healthy: false``, ``error``), never raised.
    """
    from loguru import logger

    from v6.manager import IBConnectionManager

    loop = asyncio.get_running_loop()
    started = loop.time()
    manager = IBConnectionManager.from_env(
        environ,
        **overrides,
        client_id=client_id,
        max_retries=0,
        connect_timeout=timeout,
        heartbeat_timeout=timeout,
        readonly=True,
    )
    error: str | None = None
    rtt: float | None = None
    answer = _first_bytes(manager.ib)
    try:
        async with asyncio.timeout(timeout):
            await manager.connect()
            sent = time.monotonic()
            await manager.ib.reqCurrentTimeAsync()
            rtt = time.monotonic() - sent
    except ConnectionError as exc:  # v6.errors.IBConnectionError (ConnectTimeout too), ib_async's
        error = f"{type(exc).__name__}: {exc}"
    except TimeoutError:  # the whole check's deadline
        stage = "probe" if manager.is_connected else "connect"
        error = f"no answer within {timeout}s ({stage})"
    if error is not None and not_tws(bytes(answer)):
        error = f"not a TWS API endpoint: it answered the API hello with {bytes(answer[:40])!r}"
    if error is not None:
        logger.warning("Check failed: {}", error)
    health = await manager.connection_health()
    await manager.stop()
    health["probe_rtt_seconds"] = None if rtt is None else round(rtt, 6)
    health["healthy"] = bool(error is None and health["healthy"])
    health["error"] = error
    health["check_seconds"] = round(loop.time() - started, 6)
    return health


def _first_bytes(ib: Any) -> bytearray:
    """The first :data:`ANSWER_BYTES` the server sends, as they arrive (ib_async's socket
    events; ib_async itself would wait for a 1 GiB frame after a web server's ``HTTP``)."""
    kept = bytearray()

    def keep(data: bytes) -> None:
        kept.extend(data[: ANSWER_BYTES - len(kept)])

    ib.client.conn.hasData += keep
    return kept


def not_tws(answer: bytes) -> bool:
    """True if ``answer`` (the first bytes after the API hello) cannot start TWS's version frame
    ``<length><version>\\0<time>\\0``; False if it can, or if nothing (or too little) came."""
    from v6.errors import ProtocolError
    from v6.protocol.framing import FrameBuffer, parse_server_hello

    try:
        frames = FrameBuffer().feed(answer)
        if frames:
            parse_server_hello(frames[0])
    except ProtocolError:
        return True
    return False
