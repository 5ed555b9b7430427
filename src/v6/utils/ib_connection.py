"""The plan's module path; the manager lives in :mod:`v6.manager`."""

from v6.connection.health import ConnectionStats
from v6.manager import IBConnectionManager

__all__ = ["ConnectionStats", "IBConnectionManager"]
