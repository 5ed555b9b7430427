"""TWS's ExecutionFilter, as the simulated broker applies it to reqExecutions. Pure."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from v6.protocol.orders_messages import ExecutionSpec
from v6.protocol.orders_requests import ExecutionFilter

_FILTER_TIME_RE: Final = re.compile(r"(\d{8})[ -](\d{2}:\d{2}(?::\d{2})?)(?: (\S+))?")


def parse_filter_time(text: str, default_tz: tzinfo) -> datetime:
    """``yyyymmdd hh:mm:ss`` or ``yyyymmdd-hh:mm:ss`` (seconds optional), then an optional zone
    name; without a zone, in ``default_tz``. Raises :class:`ValueError` for anything else."""
    match = _FILTER_TIME_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"execution filter time {text!r} is not 'yyyymmdd hh:mm:ss'")
    day, clock, zone = match.groups()
    fmt = "%Y%m%d %H:%M:%S" if clock.count(":") == 2 else "%Y%m%d %H:%M"
    naive = datetime.strptime(f"{day} {clock}", fmt)
    return naive.replace(tzinfo=ZoneInfo(zone) if zone else default_tz)


def execution_matches(
    execution: ExecutionSpec, flt: ExecutionFilter, since: datetime | None
) -> bool:
    """TWS's ExecutionFilter: every non-empty field must match (``side`` BUY/SELL vs BOT/SLD)."""
    contract = execution.contract
    side = {"BUY": "BOT", "SELL": "SLD"}.get(flt.side.upper(), flt.side.upper())
    checks = (
        not flt.client_id or execution.client_id == flt.client_id,
        not flt.acct_code or execution.account.upper() == flt.acct_code.upper(),
        not flt.symbol or contract.symbol.upper() == flt.symbol.upper(),
        not flt.sec_type or contract.sec_type.upper() == flt.sec_type.upper(),
        not flt.exchange or execution.exchange.upper() == flt.exchange.upper(),
        not side or execution.side == side,
        since is None or execution.time >= since,
    )
    return all(checks)
