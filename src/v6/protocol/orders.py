"""Order messages of the TWS API at server version 178, both directions: one import for the
gateway. Requests live in :mod:`v6.protocol.orders_requests`, encoders in
:mod:`v6.protocol.orders_messages` (split to keep each module to one job and a readable size)."""

from v6.errors import MalformedOrder
from v6.protocol.orders_messages import (
    CommissionSpec,
    ExecutionSpec,
    OrderSpec,
    OrderStatusSpec,
    commission_report,
    completed_order,
    exec_details,
    open_order,
    order_bound,
    order_status,
)
from v6.protocol.orders_requests import (
    ORDER_REQUEST_PARSERS,
    ORDER_SERVER_VERSION,
    CancelOrder,
    ExecutionFilter,
    OrderRequest,
    PlaceOrder,
    ReqExecutions,
    ReqGlobalCancel,
    parse_cancel_order,
    parse_place_order,
)

__all__ = [
    "ORDER_REQUEST_PARSERS",
    "ORDER_SERVER_VERSION",
    "CancelOrder",
    "CommissionSpec",
    "ExecutionFilter",
    "ExecutionSpec",
    "MalformedOrder",
    "OrderRequest",
    "OrderSpec",
    "OrderStatusSpec",
    "PlaceOrder",
    "ReqExecutions",
    "ReqGlobalCancel",
    "commission_report",
    "completed_order",
    "exec_details",
    "open_order",
    "order_bound",
    "order_status",
    "parse_cancel_order",
    "parse_place_order",
]
