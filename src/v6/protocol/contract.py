"""The contract fields every request, order and position message carries (shared by both
directions, so that the request and message modules do not import each other)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The twelve contract fields every request and position message carries, in wire order
    (``exchange`` is ``primaryExchange``'s neighbour; portfolio messages omit ``exchange``)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
