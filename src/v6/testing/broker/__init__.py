"""The simulated broker "at IB" that the fake gateway trades against: pure, no sockets, no asyncio.

Its rooms:

* :mod:`.simulator`: :class:`Broker`, orders, fills, executions and corrections, and the events
  they cause, each addressed to a client id;
* :mod:`.orders`: order states, the record kept of each order, placeOrder checks;
* :mod:`.events`: the typed events the broker queues for its clients;
* :mod:`.execution_filter`: reqExecutions' filter;
* :mod:`.ledger`: positions and cash, moved by the fills;
* :mod:`.quotes`: one seeded random-walk quote per contract;
* :mod:`.accounts`: the configured accounts, their values and positions (:class:`AccountState`).

It imports only the standard library, :mod:`v6.protocol` and :mod:`v6.errors`; the gateway
(:mod:`v6.testing.gateway`) uses it, never the other way round.
"""

from v6.testing.broker.accounts import (
    DEFAULT_ACCOUNT_VALUES,
    DEFAULT_ACCOUNTS,
    AccountState,
    AccountValue,
    Position,
)
from v6.testing.broker.events import (
    BrokerEvent,
    CommissionReportEvent,
    ErrorEvent,
    ExecDetailsEvent,
    OpenOrderEvent,
    OrderStatusEvent,
)
from v6.testing.broker.orders import OrderRecord, OrderState
from v6.testing.broker.quotes import DEFAULT_SEED, Quote, QuoteBook, instrument_id
from v6.testing.broker.simulator import (
    DEFAULT_COMMISSION_PER_SHARE,
    DEFAULT_FILL_SIZE,
    DEFAULT_MIN_COMMISSION,
    Broker,
)

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_ACCOUNT_VALUES",
    "DEFAULT_COMMISSION_PER_SHARE",
    "DEFAULT_FILL_SIZE",
    "DEFAULT_MIN_COMMISSION",
    "DEFAULT_SEED",
    "AccountState",
    "AccountValue",
    "Broker",
    "BrokerEvent",
    "CommissionReportEvent",
    "ErrorEvent",
    "ExecDetailsEvent",
    "OpenOrderEvent",
    "OrderRecord",
    "OrderState",
    "OrderStatusEvent",
    "Position",
    "Quote",
    "QuoteBook",
    "instrument_id",
]
