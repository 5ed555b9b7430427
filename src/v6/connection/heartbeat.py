"""Watching one live connection: when to probe a silent gateway, and when a cut-off has lasted
too long. The manager's supervisor awaits :meth:`Heartbeat.watch`, which returns the reason the
connection must be torn down.

Proof of life is any decoded message (the manager calls :meth:`Heartbeat.alive`), so a busy
connection is never probed; a silent one gets one ``reqCurrentTime`` per ``heartbeat_interval``.

Request-aware: when the application has sent a request and nothing at all has come back for
``REQUEST_PROBE_FRACTION * heartbeat_timeout``, a probe goes out at once instead of waiting for the
idle interval, and the connection is declared stalled if still nothing has arrived
``heartbeat_timeout`` after that oldest unanswered request. A slow request alone (a historical
query) is no stall: the probe's answer is a message. A quiet connection is probed as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from v6.connection.circuit_breaker import Clock
from v6.connection.defaults import REQUEST_PROBE_FRACTION
from v6.connection.health import ConnectionStats
from v6.connection.link import Link
from v6.connection.session import Session
from v6.connection.settings import ConnectionSettings
from v6.errors import HeartbeatTimeout

if TYPE_CHECKING:
    from loguru import Logger


class Heartbeat:
    """Last proof of life, last probe round trip, and the watch loop.

    :attr:`settings` is read at every step, so a new ``heartbeat_interval`` applies at once once
    :meth:`wake` is called. ``on_rtt(seconds)`` is called after every answered probe.
    """

    def __init__(
        self,
        link: Link,
        settings: ConnectionSettings,
        clock: Clock,
        stats: ConnectionStats,
        on_rtt: Callable[[float], None],
        log: Logger,
    ) -> None:
        self._link = link
        self.settings = settings
        self._clock = clock
        self._stats = stats
        self._on_rtt = on_rtt
        self._log = log
        self._wake = asyncio.Event()
        self._sleeping_until: float | None = None
        self.last_alive: float | None = None  # clock() of the last proof of life
        self.last_rtt: float | None = None
        link.on_request = self._request_sent

    def alive(self) -> None:
        self.last_alive = self._clock()

    def age(self) -> float | None:
        """Seconds since the last proof of life, or None before the first."""
        return None if self.last_alive is None else self._clock() - self.last_alive

    def wake(self) -> None:
        """Make the watch loop look again now (a state change, a new interval, a loss)."""
        self._wake.set()

    def _request_sent(self) -> None:
        """A request now awaits a reply: wake the loop only if that moves its next look earlier
        (a busy application does not wake it once per request)."""
        since = self._link.awaiting_reply_since
        until = self._sleeping_until
        if since is not None and until is not None and self._request_due(since) < until:
            self.wake()

    def _request_due(self, since: float) -> float:
        return since + REQUEST_PROBE_FRACTION * self.settings.heartbeat_timeout

    async def watch(self, session: Session, is_live: Callable[[], bool]) -> str:
        """Return the reason the live connection of ``session`` must be torn down; raise
        :class:`HeartbeatTimeout` when a probe goes unanswered."""
        while True:
            if not is_live():
                return session.lost_reason or "connection lost"
            now = self._clock()
            due = self._next_due(session, now)
            if isinstance(due, str):
                return due
            if now < due:
                await self._sleep_until_woken(due, now)
                continue
            await self._probe(self._probe_timeout(now))

    def _next_due(self, session: Session, now: float) -> float | str:
        """When to probe next; or, past the cut-off grace, the reason to give up."""
        settings = self.settings
        assert self.last_alive is not None, "watch() runs only after a connect"
        due = self.last_alive + settings.heartbeat_interval
        since = self._link.awaiting_reply_since
        if since is not None:
            due = min(due, self._request_due(since))
        if session.degraded_since is None:
            return due
        grace_end = session.degraded_since + settings.degraded_grace
        if now >= grace_end:
            return f"TWS cut off from IB for more than {settings.degraded_grace}s"
        return min(due, grace_end)

    def _probe_timeout(self, now: float) -> float:
        """heartbeat_timeout, counted from the oldest unanswered request when there is one."""
        timeout = self.settings.heartbeat_timeout
        since = self._link.awaiting_reply_since
        if since is None:
            return timeout
        return max(0.0, min(timeout, since + timeout - now))

    async def _sleep_until_woken(self, due: float, now: float) -> None:
        self._wake.clear()
        self._sleeping_until = due
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel (stop()) that lands
        # just after the wake was set, and stop() then waits forever.
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(due - now):
                    await self._wake.wait()
        finally:
            self._sleeping_until = None

    async def _probe(self, timeout: float) -> None:
        """Ask the gateway for its time; any answer (or any other message) is proof of life.
        ``timeout`` is the time left for any message to arrive."""
        started = self._clock()
        self._stats.probes_sent += 1
        try:
            async with asyncio.timeout(timeout):
                await self._link.probe()
        except TimeoutError:
            self._stats.probes_failed += 1
            waited = self._clock() - (self._link.awaiting_reply_since or started)
            raise HeartbeatTimeout(
                f"heartbeat probe unanswered: no message for {waited:.3g}s after a request"
            ) from None
        except ConnectionError:
            self._stats.probes_failed += 1
            return  # the socket closed under the probe: the loss handler already ran
        self.last_rtt = self._clock() - started
        self.alive()
        self._log.debug("Heartbeat ok, rtt {:.1f} ms", self.last_rtt * 1000)
        self._on_rtt(self.last_rtt)
