"""Daily restarts, wired: readiness probing while waiting, known maintenance windows, and the
escalation to IBC (issue 9). The connector asks this object, the pure parts decide:
:class:`~v6.connection.readiness.ReadinessSchedule` (when to probe),
:class:`~v6.connection.maintenance.MaintenanceEscalation` (are failures expected now; has a window
overrun) and :class:`~v6.connection.ibc.IbcEscalation` (is it time to ask IBC for a RESTART).

The rules, with probing on (``readiness_interval`` not None):

* A wait (BACKING_OFF, CIRCUIT_OPEN) probes every ``readiness_interval`` (jittered). A probe that
  answers after the gateway was seen down since the last real attempt ends the wait: the attempt
  starts at once (as the breaker's HALF_OPEN trial when it is open). An answer that says nothing
  new (the gateway answered the hello at the last failed attempt too: a broken start-up sync)
  does not shorten the wait, so the backoff and the breaker still pace the API sessions.
* An attempt after a failed one starts with a probe: if the gateway does not answer the hello,
  the attempt ends there and is recorded as the failure a full attempt would have met (same
  error class and ``connect_attempts`` label; backoff, breaker and ``max_retries`` as before), with
  no client id taken and no API session started. So API sessions during an outage never
  outnumber today's, and a port that accepts but never answers (a socat proxy in front of a
  stopped gateway) gets none. A plan's first attempt (also right after a lost connection) goes
  out at once, as before.
* Inside a maintenance window (or its grace) failures are expected: logged at INFO, not counted
  by the breaker. IBC's RESTART is held back then too: a gateway that is logging in after its
  daily restart may sit accepting-but-silent for a while, and a RESTART would only start it over;
  the stuck clock keeps running, so a gateway still stuck when the grace ends is restarted at once.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from v6.connection import defaults as d
from v6.connection.circuit_breaker import Clock
from v6.connection.ibc import IbcEscalation, IbcReply, send_ibc_command
from v6.connection.maintenance import (
    MaintenanceEscalation,
    MaintenancePhase,
    MaintenanceVerdict,
    utc_now,
)
from v6.connection.readiness import (
    MAX_READINESS_JITTER,
    ProbeOutcome,
    ProbeResult,
    ReadinessSchedule,
    probe_readiness,
)
from v6.connection.settings import ConnectionSettings

if TYPE_CHECKING:
    from loguru import Logger

SleepFunc = Callable[[float], Awaitable[None]]
ProbeFunc = Callable[[str, int, float], Awaitable[ProbeResult]]
IbcFunc = Callable[[str, int, str], Awaitable[IbcReply]]


async def _probe(host: str, port: int, timeout: float) -> ProbeResult:
    return await probe_readiness(host, port, timeout)


async def _send_ibc(host: str, port: int, command: str) -> IbcReply:
    return await send_ibc_command(host, port, command, d.DEFAULT_IBC_TIMEOUT)


class Restarts:
    """Readiness, maintenance and IBC for one connection.

    Seams: ``probe(host, port, timeout)`` (default :func:`probe_readiness`; also the writable
    attribute :attr:`readiness_probe`), ``send_ibc(host, port, command)`` (:attr:`ibc_send`),
    ``clock`` (monotonic), ``wall_clock`` (aware UTC datetimes, for the windows), ``sleep`` and
    ``rng``.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        clock: Clock,
        wall_clock: Callable[[], datetime] = utc_now,
        sleep: SleepFunc,
        rng: random.Random,
        log: Logger,
        probe: ProbeFunc = _probe,
        send_ibc: IbcFunc = _send_ibc,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._log = log
        self.readiness_probe = probe
        self.ibc_send = send_ibc
        self._schedule = ReadinessSchedule(
            settings.readiness_interval or d.DEFAULT_READINESS_INTERVAL,
            min(settings.jitter, MAX_READINESS_JITTER),
            rng,
        )
        self.maintenance = MaintenanceEscalation(
            settings.maintenance_windows, settings.maintenance_grace, wall_clock
        )
        self.ibc = IbcEscalation(settings.ibc_restart_after, clock)
        self.verdict = MaintenanceVerdict(MaintenancePhase.NORMAL)
        #: Probes by outcome, since the manager was made (read by metrics).
        self.probes: Counter[ProbeOutcome] = Counter()
        self._last: ProbeResult | None = None  # latest probe since the last real attempt
        self._seen_down = False  # a probe since the last real attempt found it not ready

    # ------------------------------------------------------------------ maintenance

    def evaluate(self, connected: bool) -> MaintenanceVerdict:
        """Feed the maintenance escalation (on state changes, probes and health reads)."""
        if self._settings.maintenance_windows:
            self.verdict = self.maintenance.evaluate(connected)
        return self.verdict

    def expected(self) -> bool:
        """Are failures expected now (inside a window or its grace)?"""
        return self.evaluate(connected=False).expected

    @property
    def overruns(self) -> int:
        return self.maintenance.escalations

    # -------------------------------------------------------------------- readiness

    @property
    def probing(self) -> bool:
        return self._settings.readiness_interval is not None

    def attempted(self) -> None:
        """A real attempt is starting: what the probes knew is spent."""
        self._last, self._seen_down = None, False

    async def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``, probing if on; True if the gateway came back (wait ended early)."""
        if not self.probing:
            await self._sleep(seconds)
            return False
        end = self._clock() + seconds
        while True:
            now = self._clock()
            next_probe = now + self._interval_delay()
            if next_probe >= end:
                if end > now:
                    await self._sleep(end - now)
                return False
            await self._sleep(next_probe - now)
            result = await self.probe()
            if result.ready and self._seen_down:
                self._log.info("Gateway answers again ({}): attempting now", result)
                return True

    async def ready(self) -> ProbeResult | None:
        """Before a real attempt that follows a failure: the latest answer, or a fresh probe.
        None when probing is off."""
        if not self.probing:
            return None
        if self._last is not None and self._last.ready:
            return self._last
        return await self.probe()

    async def probe(self) -> ProbeResult:
        """Probe once and feed every policy with the result."""
        settings = self._settings
        timeout = min(d.DEFAULT_READINESS_TIMEOUT, settings.connect_timeout)
        result = await self.readiness_probe(settings.host, settings.port, timeout)
        self._last = result
        self.probes[result.outcome] += 1
        self._seen_down = self._seen_down or not result.ready
        expected = self.evaluate(connected=False).expected
        self._log.debug("Readiness probe: {}", result)
        if settings.ibc_command_port is not None and self.ibc.observe(
            result.outcome, allowed=not expected
        ):
            reply = await self.ibc_send(settings.host, settings.ibc_command_port, "RESTART")
            self.ibc.record_reply(reply)
        return result

    def _interval_delay(self) -> float:
        return self._schedule.delay()
