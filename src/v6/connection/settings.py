"""Validated connection settings, from arguments or from ``IB_*`` environment variables (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypedDict, Unpack

from v6.connection import defaults as d
from v6.connection.backoff import ExponentialBackoff
from v6.connection.ibc import require_ibc_command_port, require_ibc_restart_after
from v6.connection.maintenance import (
    MaintenanceSchedule,
    MaintenanceWindows,
    require_maintenance_grace,
)
from v6.connection.readiness import require_readiness_interval
from v6.errors import ConfigError
from v6.validation import (
    require_bool,
    require_int,
    require_range,
    require_str,
    show,
)

MAX_CLIENT_ID = 2**31 - 1
NO_WINDOWS = MaintenanceSchedule()
_CLIENT_ID_RULE = "client_id must be an integer or a non-empty list of integers"
#: A failed check on one of these fields may be caused by any of them (the backoff's rule).
_RELATED_FIELDS: dict[str, tuple[str, ...]] = {
    "retry_delay": ("retry_delay", "max_delay"),
    "max_delay": ("retry_delay", "max_delay"),
}


class ConnectionOptions(TypedDict, total=False):
    """The manager's keyword-only connection options (defaults: :class:`ConnectionSettings`)."""

    heartbeat_interval: float
    heartbeat_timeout: float
    connect_timeout: float
    max_delay: float
    jitter: float
    degraded_grace: float
    readonly: bool
    account: str
    readiness_interval: float | None
    maintenance_windows: MaintenanceWindows
    maintenance_grace: float
    ibc_command_port: int | None
    ibc_restart_after: float


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything IBConnectionManager needs to know, checked once at construction."""

    host: str = d.DEFAULT_HOST
    port: int = d.DEFAULT_PORT
    client_ids: tuple[int, ...] = (d.DEFAULT_CLIENT_ID,)
    max_retries: int = d.DEFAULT_MAX_RETRIES
    retry_delay: float = d.DEFAULT_RETRY_DELAY
    heartbeat_interval: float = d.DEFAULT_HEARTBEAT_INTERVAL
    heartbeat_timeout: float = d.DEFAULT_HEARTBEAT_TIMEOUT
    connect_timeout: float = d.DEFAULT_CONNECT_TIMEOUT
    max_delay: float = d.DEFAULT_MAX_DELAY
    jitter: float = d.DEFAULT_JITTER
    degraded_grace: float = d.DEFAULT_DEGRADED_GRACE
    readonly: bool = False
    account: str = ""
    # Daily restarts (issue 9): None turns readiness probing / IBC escalation off.
    readiness_interval: float | None = d.DEFAULT_READINESS_INTERVAL
    maintenance_windows: MaintenanceSchedule = NO_WINDOWS
    maintenance_grace: float = d.DEFAULT_MAINTENANCE_GRACE
    ibc_command_port: int | None = None
    ibc_restart_after: float = d.DEFAULT_IBC_RESTART_AFTER

    def __post_init__(self) -> None:
        _require_host(self.host)
        require_int("port", self.port, low=1, high=65535)
        if not isinstance(self.client_ids, tuple) or not self.client_ids:
            raise ConfigError(f"{_CLIENT_ID_RULE}, got {show(self.client_ids)}")
        for client_id in self.client_ids:
            require_int("client_id", client_id, low=0, high=MAX_CLIENT_ID)
        if len(set(self.client_ids)) != len(self.client_ids):
            raise ConfigError(f"client_id list must not repeat ids, got {list(self.client_ids)}")
        require_int("max_retries", self.max_retries, low=0)
        require_range("heartbeat_interval", self.heartbeat_interval, low=0.0, low_open=True)
        require_range("heartbeat_timeout", self.heartbeat_timeout, low=0.0, low_open=True)
        require_range("connect_timeout", self.connect_timeout, low=0.0, low_open=True)
        require_range("degraded_grace", self.degraded_grace, low=0.0)
        require_bool("readonly", self.readonly)
        require_str("account", self.account, "an IB account id, or '' for the default")
        self.backoff  # noqa: B018 - validates retry_delay, max_delay and jitter
        self._check_restart_settings()

    @classmethod
    def from_arguments(
        cls,
        host: str,
        port: int,
        client_id: int | Sequence[int],
        max_retries: int,
        retry_delay: float,
        **options: Unpack[ConnectionOptions],
    ) -> ConnectionSettings:
        """From the manager's arguments: one client id or a list, windows as text or parsed."""
        values: dict[str, Any] = {
            **options,
            "maintenance_windows": MaintenanceSchedule.parse(options.get("maintenance_windows")),
        }
        return cls(
            host=host, port=port, client_ids=client_id_tuple(client_id), max_retries=max_retries,
            retry_delay=retry_delay, **values,
        )  # fmt: skip

    def _check_restart_settings(self) -> None:
        if self.readiness_interval is not None:
            require_readiness_interval(self.readiness_interval)
        if not isinstance(self.maintenance_windows, MaintenanceSchedule):
            raise ConfigError(
                "maintenance_windows must be a MaintenanceSchedule "
                f"(MaintenanceSchedule.parse(text)), got {self.maintenance_windows!r}"
            )
        require_maintenance_grace(self.maintenance_grace)
        require_ibc_command_port(self.ibc_command_port)
        require_ibc_restart_after(self.ibc_restart_after)

    @property
    def backoff(self) -> ExponentialBackoff:
        return ExponentialBackoff(base=self.retry_delay, cap=self.max_delay, jitter=self.jitter)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], prefix: str = d.ENV_PREFIX, **overrides: Any
    ) -> ConnectionSettings:
        """Read ``<prefix><FIELD>`` variables (``IB_HOST``, ``IB_PORT``, ``IB_CLIENT_ID`` ...).

        ``IB_CLIENT_ID`` may be a comma-separated list. Keyword overrides win over the
        environment. A value that does not parse raises ConfigError naming the variable.
        """
        values: dict[str, Any] = {}
        raws: dict[str, str] = {}  # field -> the variable's text, for error messages
        for field in fields(cls):
            env_name = _env_name(prefix, field.name)
            raw = environ.get(env_name)
            if raw is None or raw.strip() == "":
                continue
            parse = _PARSERS.get(field.name, _parse_float)
            try:
                values[field.name] = parse(raw.strip())
            except ValueError as exc:
                raise ConfigError(f"{env_name}={raw!r}: {exc}") from None
            raws[field.name] = raw.strip()
        values.update(overrides)
        for name in overrides:
            raws.pop(name, None)
        try:
            return cls(**values)
        except ConfigError as exc:
            raise _blame_variables(exc, prefix, raws) from None


def manager_kwargs_from_env(
    environ: Mapping[str, str], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """IBConnectionManager's keyword arguments from ``IB_*`` variables, ``kwargs`` winning;
    keywords that are not settings (``ib``, ``clock`` ...) pass through unchanged."""
    names = {f.name for f in fields(ConnectionSettings)}
    overrides = {k: v for k, v in kwargs.items() if k in names}
    if "client_id" in kwargs:
        overrides["client_ids"] = client_id_tuple(kwargs["client_id"])
    settings = ConnectionSettings.from_env(environ, **overrides)
    extra = {k: v for k, v in kwargs.items() if k not in names and k != "client_id"}
    values = {name: getattr(settings, name) for name in names if name != "client_ids"}
    return {"client_id": settings.client_ids, **values, **extra}


def client_id_tuple(client_id: int | Sequence[int]) -> tuple[int, ...]:
    """One id or a sequence of ids as a tuple (each id is checked by ConnectionSettings)."""
    if isinstance(client_id, int) and not isinstance(client_id, bool):
        return (client_id,)
    if isinstance(client_id, Sequence) and not isinstance(client_id, str | bytes | bytearray):
        return tuple(client_id)
    raise ConfigError(f"{_CLIENT_ID_RULE}, got {show(client_id)}")


def _require_host(host: object) -> None:
    # Spaces and control characters (a NUL, a newline) are never part of a host name.
    clean = isinstance(host, str) and all(c.isprintable() and not c.isspace() for c in host)
    if not host or not clean:
        raise ConfigError(
            "host must be a host name or IP address (no spaces or control characters), "
            f"got {show(host)}"
        )


def _env_name(prefix: str, field: str) -> str:
    return prefix + ("CLIENT_ID" if field == "client_ids" else field.upper())


def _blame_variables(exc: ConfigError, prefix: str, raws: Mapping[str, str]) -> ConfigError:
    """``exc`` (``"<field> must ..."``) prefixed with the variables that set the field, or the
    fields its rule ties it to; unchanged if no variable was involved."""
    field = str(exc).split(" ", 1)[0]
    field = "client_ids" if field == "client_id" else field
    involved = _RELATED_FIELDS.get(field, (field,))
    if not any(name in raws for name in involved):
        return exc
    parts = [
        f"{_env_name(prefix, name)}={raws[name]}"
        if name in raws
        else f"{_env_name(prefix, name)} not set"
        for name in involved
    ]
    return ConfigError(f"{', '.join(parts)}: {exc}")


def _parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None


def _parse_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("must be a number") from None


def parse_client_ids(raw: str) -> tuple[int, ...]:
    """``7`` or ``7,8,9`` -> a tuple of ids; ValueError if a part is not an integer."""
    return tuple(_parse_int(part) for part in raw.split(",") if part.strip())


def _parse_optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``none`` / ``off`` -> None (the feature off), else ``parse(raw)``."""

    def parse_optional(raw: str) -> Any:
        return None if raw.lower() in {"none", "off"} else parse(raw)

    return parse_optional


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": str,
    "account": str,
    "port": _parse_int,
    "max_retries": _parse_int,
    "client_ids": parse_client_ids,
    "readonly": _parse_bool,
    "readiness_interval": _parse_optional(_parse_float),
    "maintenance_windows": MaintenanceSchedule.parse,
    "ibc_command_port": _parse_optional(_parse_int),
}
