"""The plan's module path; the manager lives in :mod:`v6.connection.manager`."""

from v6.connection.manager import ConnectionStats, IBConnectionManager

__all__ = ["ConnectionStats", "IBConnectionManager"]
