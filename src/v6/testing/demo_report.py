"""The demo's results and settings: :class:`DemoTimings`, one :class:`FaultResult` per fault,
the :class:`DemoReport`, and how a row reads in the log (:func:`describe`)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from v6.testing.scenario import Measured


@dataclass(frozen=True)
class DemoTimings:
    """Every interval of the demo, in seconds. :meth:`scaled` makes a faster or slower copy."""

    heartbeat_interval: float = 0.3
    heartbeat_timeout: float = 0.3
    retry_delay: float = 0.1
    max_delay: float = 1.0
    connect_timeout: float = 1.0
    breaker_timeout: float = 1.0
    #: Price updates per second: slower than 1 / heartbeat_interval, so probes run between ticks.
    tick_rate: float = 2.0
    #: Ticks flow this long between faults.
    settle: float = 0.6
    stall_hold: float = 1.0
    outage_hold: float = 1.5
    cut_off_hold: float = 0.5
    #: A data farm stays broken this long (fault 7).
    farm_hold: float = 0.5
    #: The demo's subscription is judged stale after this long without data (fault 8).
    stale_after: float = 1.0
    #: Not scaled: the least backoff time left when the intruder takes the manager's id (fault 5),
    #: so that the intruder's handshake surely lands first.
    staging_window: float = 0.25
    #: Not scaled: give up waiting for a detection or a recovery after this long.
    fault_timeout: float = 15.0

    def scaled(self, factor: float) -> DemoTimings:
        """A copy with every interval multiplied by ``factor`` (the tick rate divided by it)."""
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor!r}")
        fixed = {"staging_window", "fault_timeout"}
        changes: dict[str, float] = {}
        for f in fields(self):
            if f.name in fixed:
                continue
            value = getattr(self, f.name)
            changes[f.name] = value / factor if f.name == "tick_rate" else value * factor
        return replace(self, **changes)


@dataclass(frozen=True)
class FaultResult:
    """One row of the demo's table; every figure in milliseconds, None when it did not happen."""

    fault: str
    lasted_ms: float | None  # injection to the end of the fault (None: it never ends)
    detected_ms: float | None  # injection to the manager noticing
    recovered_ms: float | None  # end of the fault to CONNECTED again
    ticks_ms: float | None  # end of the fault to the first tick of the re-requested stream
    note: str = ""
    #: What the step checked beyond recovery (e.g. a fill delivered exactly once) held.
    verified: bool = True

    @property
    def ok(self) -> bool:
        return self.verified and None not in (self.detected_ms, self.recovered_ms, self.ticks_ms)


@dataclass(frozen=True)
class DemoReport:
    rows: list[FaultResult]
    #: Market-data streams open at the gateway at the end: 1 unless a resubscription leaked one.
    subscriptions_at_end: int
    seconds: float
    #: The market order placed before the faults was reported filled through on_fill.
    live_order_filled: bool = True

    @property
    def ok(self) -> bool:
        return (
            bool(self.rows)
            and all(r.ok for r in self.rows)
            and self.subscriptions_at_end == 1
            and self.live_order_filled
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def row_of(measured: Measured) -> FaultResult:
    return FaultResult(
        fault=measured.name,
        lasted_ms=measured.lasted * 1000.0,
        detected_ms=_ms(measured.detected_after),
        recovered_ms=_ms(measured.recovered_after),
        ticks_ms=_ms(measured.resumed_after),
        note=measured.note,
    )


def cell(ms: float | None) -> str:
    """A figure in ms as the table and the log show it."""
    if ms is None:
        return "-"
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"  # "0" would read as "not measured"


def describe(row: FaultResult) -> str:
    """One line per fault, for the log."""
    ticks = "no" if row.ticks_ms is None else f"yes, after {cell(row.ticks_ms)} ms"
    return (
        f"{row.fault}: detected after {cell(row.detected_ms)} ms, recovered after "
        f"{cell(row.recovered_ms)} ms, ticks resumed: {ticks}"
    )
