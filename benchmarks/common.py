"""Shared pieces of the benchmarks: statistics, result rows, machine facts, quiet logs, and a
FakeGateway in a child process (for CPU figures that must not include the gateway's own work).

Every scenario module exposes ``run(quick: bool) -> dict`` returning a *result*::

    {
        "name": "connect_overhead",          # module name, also the --only key
        "title": "1. Connect overhead",
        "command": "python -m benchmarks.connect_overhead",
        "params": {...},                       # what was set (intervals, trials, ...)
        "rows": [row(...), ...],               # one table: see row()
        "notes": ["...", ...],                 # method, caveats, causes of a missed target
    }

and is runnable alone (``python -m benchmarks.<name> [--quick] [--json]``), which prints the
same Markdown section the runner writes into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
clock = time.perf_counter
"""The clock every latency figure is read from (monotonic, sub-microsecond): the benchmarks'
:class:`~v6.testing.scenario.Timeline` stamps its entries with it."""
POLL_STEP = 0.001
"""How often a benchmark polls a condition (``v6.testing.scenario.wait_until``); never a figure."""

Result = dict[str, Any]


# ------------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


def p95(samples: Sequence[float]) -> float:
    return percentile(samples, 95.0)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def row(
    measure: str,
    samples: Sequence[float],
    *,
    unit: str = "ms",
    scale: float = 1000.0,
    baseline: str = "",
    ratio_value: float | None = None,
    target: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    """One table row: median and p95 of ``samples`` (seconds unless ``scale`` says otherwise,
    shown as ``samples * scale`` in ``unit``), with its baseline, ratio, target and verdict."""
    values = [s * scale for s in samples]
    return {
        "measure": measure,
        "unit": unit,
        "median": median(values),
        "p95": p95(values),
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
        "trials": len(values),
        "baseline": baseline,
        "ratio": ratio_value,
        "target": target,
        "met": met,
    }


def peak_in_window(times: Iterable[float], window: float) -> int:
    """The most events inside any half-open window ``[t, t + window)`` (sliding)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# ------------------------------------------------------------------------------- process facts


_PROCESS = psutil.Process()


def rss_bytes() -> int:
    gc.collect()
    return int(_PROCESS.memory_info().rss)


def open_fds() -> int:
    return int(_PROCESS.num_fds())


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (CLOCK_PROCESS_CPUTIME_ID: ns
    resolution, where psutil's cpu_times() counts 10 ms ticks)."""
    return time.process_time()


def quiet_disk() -> None:
    """Write dirty pages out now (Unix), so that no trial pays for an earlier one's file I/O."""
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()


def live_tasks() -> int:
    """Live asyncio tasks, not counting the caller's."""
    return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])


def quiet_logs(level: str = "ERROR") -> None:
    """Keep loguru (v6, FakeGateway) and ib_async's stdlib logging off the benchmark's path:
    a log line per reconnect would be measured too."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=level)
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    logging.getLogger("ibapi").setLevel(logging.CRITICAL)


def run_async(main: Callable[[], Any]) -> Any:
    """``asyncio.run`` with debug mode off (benchmarks never measure asyncio's debug checks)."""
    quiet_logs()
    return asyncio.run(main(), debug=False)


# ------------------------------------------------------------------------------- machine facts


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def machine_info() -> dict[str, Any]:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "ib_async": metadata.version("ib_async"),
        "commit": (commit + (" (with uncommitted changes)" if dirty else "")) or "unknown",
        "loadavg": os.getloadavg(),
    }


# ------------------------------------------------------------------------------- rendering


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
        return f"{value:.{digits}g}"
    return str(value)


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return ""
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def render(result: Result) -> str:
    """One scenario as a Markdown section (title, command, parameters, table, notes)."""
    out = [f"## {result['title']}", ""]
    if result.get("error"):
        out += [f"**Not measured:** {result['error']}", ""]
    out.append(f"Reproduce alone: `{result['command']}`")
    params = result.get("params") or {}
    if params:
        out += ["", "Parameters: " + ", ".join(f"{k} = {fmt(v)}" for k, v in params.items())]
    rows = result.get("rows") or []
    if rows:
        out += [
            "",
            "| measure | median | p95 | trials | baseline | ratio (median) | target | met? |",
            "|---|---:|---:|---:|---|---:|---|---|",
        ]
        for r in rows:
            unit = f" {r['unit']}" if r["unit"] else ""
            out.append(
                f"| {r['measure']} | {fmt(r['median'])}{unit} | {fmt(r['p95'])}{unit} "
                f"| {r['trials']} | {r['baseline']} | {fmt_ratio(r['ratio'])} | {r['target']} "
                f"| {fmt(r['met'])} |"
            )
    notes = result.get("notes") or []
    if notes:
        out.append("")
        out += [f"- {note}" for note in notes]
    out.append("")
    return "\n".join(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(run: Callable[[bool], Result], argv: Sequence[str] | None = None) -> None:
    """Command line of one scenario module: print its section (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(run.__doc__ or "").strip().split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the raw result as JSON")
    args = parser.parse_args(argv)
    result = run(args.quick)
    if args.json:
        print(json.dumps(_jsonable(result), indent=2))
    else:
        print(render(result))


# ------------------------------------------------------------------------------- gateway process


@contextlib.asynccontextmanager
async def gateway_process(**options: Any) -> AsyncIterator[int]:
    """A FakeGateway in a child Python process; yields its port. Used where this process's CPU
    time must be the client's alone."""
    async with gateway_child(**options) as (port, _):
        yield port


@contextlib.asynccontextmanager
async def gateway_child(log_level: str = "ERROR", **options: Any) -> AsyncIterator[tuple[int, int]]:
    """:func:`gateway_process` yielding ``(port, pid)``; the child logs at ``log_level`` to its
    stderr (inherited at ERROR, discarded otherwise, as a gateway's log file would be)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.common",
        "--serve-gateway",
        json.dumps(options),
        log_level,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=None if log_level == "ERROR" else asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the gateway process exited before reporting its port")
        yield int(line), proc.pid
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()  # EOF on stdin: the child stops its gateway and exits
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _serve_gateway(options: dict[str, Any]) -> None:
    from v6.protocol.pacing import PacingLimits
    from v6.testing import FakeGateway

    if isinstance(options.get("pacing_rules"), dict):  # JSON carries the limits as a dict
        options["pacing_rules"] = PacingLimits(**options["pacing_rules"])
    async with FakeGateway(port=0, **options) as gateway:
        print(gateway.port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--serve-gateway":
        quiet_logs(*sys.argv[3:])
        asyncio.run(_serve_gateway(json.loads(sys.argv[2])))
    else:
        sys.exit("usage: python -m benchmarks.common --serve-gateway '{json options}' [LEVEL]")
