"""What is true of one connection only: made when an attempt starts, dropped at teardown.

Keeping it in one object means nothing has to be reset by hand when a connection ends: the next
attempt simply gets a fresh :class:`Session`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from v6.connection.system_messages import Farms


@dataclass
class Session:
    #: clock() of the first cut-off notice (1100 / 2110) still unresolved, else None.
    degraded_since: float | None = None
    farms: Farms = field(default_factory=Farms)
    #: Why the connection ended, when the link reported the loss (the watcher returns it).
    lost_reason: str | None = None
