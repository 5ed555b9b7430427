"""Construction-time checks for the restart-handling settings (ConfigError names field and range).

Small functions shared by :class:`~v6.connection.settings.ConnectionSettings` and the pure
restart-handling objects that check their own arguments.
"""

from __future__ import annotations

from v6.validation import require_int, require_range


def require_readiness_interval(value: float) -> None:
    """``readiness_interval`` in (0, inf)."""
    require_range("readiness_interval", value, low=0.0, low_open=True)


def require_readiness_timeout(value: float) -> None:
    """``readiness_timeout`` in (0, inf)."""
    require_range("readiness_timeout", value, low=0.0, low_open=True)


def require_ibc_command_port(value: int | None) -> None:
    """``ibc_command_port`` is None (IBC escalation off) or in [1, 65535]."""
    if value is not None:
        require_int("ibc_command_port", value, low=1, high=65535)


def require_ibc_restart_after(value: float) -> None:
    """``ibc_restart_after`` in (0, inf)."""
    require_range("ibc_restart_after", value, low=0.0, low_open=True)


def require_maintenance_grace(value: float) -> None:
    """``maintenance_grace`` in [0, inf)."""
    require_range("maintenance_grace", value, low=0.0)
