"""Trading-state bookkeeping on top of the connection: journal, ledger, ids, reconciliation.

The modules here are pure or sqlite-only; the manager wires them to ib_async (issue 8).
"""

from v6.orders.ids import OrderIdAllocator, OrderRefs
from v6.orders.journal import Journal, PendingOrder
from v6.orders.ledger import CommissionKind, FillKind, FillLedger, FillVerdict, split_exec_id
from v6.orders.reconcile import (
    GatewayReport,
    PlacedOrder,
    Reconciliation,
    ReportedExecution,
    ReportedOrder,
    reconcile,
)

__all__ = [
    "CommissionKind",
    "FillKind",
    "FillLedger",
    "FillVerdict",
    "GatewayReport",
    "Journal",
    "OrderIdAllocator",
    "OrderRefs",
    "PendingOrder",
    "PlacedOrder",
    "Reconciliation",
    "ReportedExecution",
    "ReportedOrder",
    "reconcile",
    "split_exec_id",
]
