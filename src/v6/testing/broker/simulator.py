"""The simulated broker that "lives at IB": orders, fills, executions, positions and cash.

Pure and deterministic: an injected clock, a seeded :class:`~v6.testing.broker.quotes.QuoteBook`,
no sockets, no asyncio. It outlives any gateway socket (stop / start / restart keep it), and every
state change queues typed events (:mod:`v6.testing.broker.events`) addressed to a client id; the
gateway drains them with :meth:`Broker.drain_events` and sends each to that client if connected.

Rules (a small, documented subset of TWS):

* order ids are per client id; placing an existing ``(client, order id)`` modifies it (same
  contract and action), otherwise error 103; client 0 after ``reqAutoOpenOrders(True)`` may also
  cancel / modify other clients' orders and receives a copy of their order events;
* ``MKT`` fills at the ask (buy) or the bid (sell); ``LMT`` when that touch price reaches the limit;
  ``STP`` triggers when it reaches the stop and then fills like ``MKT``; each matching pass fills
  at most ``fill_size`` (partial fills), at placement and then at every :meth:`Broker.step`;
* ``transmit=False`` keeps an order ``Inactive`` until it is placed again with ``transmit=True``;
* commission is ``commission_per_share`` per share, at least ``min_commission`` per execution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Final

from v6.errors import ConfigError
from v6.protocol.codes import (
    TEXT_DUPLICATE_ORDER_ID,
    TEXT_ORDER_CANCELLED,
    TEXT_PRICE_NOT_ON_TICK,
    ErrorCode,
    cancel_finished_text,
    cancel_unknown_text,
    rejected_text,
)
from v6.protocol.orders_messages import CommissionSpec, ExecutionSpec
from v6.protocol.orders_requests import ExecutionFilter, PlaceOrder
from v6.testing.broker.accounts import DEFAULT_ACCOUNTS, AccountValue, Position
from v6.testing.broker.events import (
    BrokerEvent,
    CommissionReportEvent,
    ErrorEvent,
    ExecDetailsEvent,
    OpenOrderEvent,
    OrderStatusEvent,
)
from v6.testing.broker.execution_filter import execution_matches, parse_filter_time
from v6.testing.broker.ledger import Ledger
from v6.testing.broker.orders import (
    TRANSITIONS,
    OrderRecord,
    OrderState,
    initial_state,
    order_spec,
    reject_reason,
)
from v6.testing.broker.quotes import (
    DEFAULT_SEED,
    DEFAULT_TICK_SIZE,
    Quote,
    QuoteBook,
    instrument_id,
)

DEFAULT_FILL_SIZE: Final = 100.0
DEFAULT_COMMISSION_PER_SHARE: Final = 0.005
DEFAULT_MIN_COMMISSION: Final = 1.0
DEFAULT_STARTING_CASH: Final = 100_000.0
DEFAULT_FIRST_PERM_ID: Final = 1_000_000_001
DEFAULT_EXEC_EXCHANGE: Final = "ISLAND"
EXEC_ID_STEM: Final = 0x0000E0D5
"""First part of every execution id (``0000e0d5.<hex counter>.01.01``)."""


class Broker:
    """See the module docstring. ``clock`` returns the current timezone-aware time."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        seed: int = DEFAULT_SEED,
        fill_size: float = DEFAULT_FILL_SIZE,
        account: str = DEFAULT_ACCOUNTS[0],
        commission_per_share: float = DEFAULT_COMMISSION_PER_SHARE,
        min_commission: float = DEFAULT_MIN_COMMISSION,
        starting_cash: float = DEFAULT_STARTING_CASH,
        next_order_id: int = 1,
        tick_size: float = DEFAULT_TICK_SIZE,
    ) -> None:
        if not fill_size > 0:
            raise ConfigError(f"fill_size: must be > 0, got {fill_size!r}")
        if commission_per_share < 0 or min_commission < 0:
            raise ConfigError("commission_per_share / min_commission: must be >= 0")
        if next_order_id < 1:
            raise ConfigError(f"next_order_id: must be >= 1, got {next_order_id}")
        self.quotes = QuoteBook(seed, tick_size)
        self.fill_size = fill_size
        self.account = account
        self.commission_per_share = commission_per_share
        self.min_commission = min_commission
        self.next_order_id = next_order_id
        self.auto_bind = False
        """Client 0 called ``reqAutoOpenOrders(True)``: it sees and may change every order."""
        self.ledger = Ledger(starting_cash)
        self._clock = clock
        self._orders: dict[tuple[int, int], OrderRecord] = {}
        self._forgotten: set[tuple[int, int]] = set()  # done orders TWS no longer reports
        self._executions: list[ExecutionSpec] = []
        self._commissions: dict[str, CommissionSpec] = {}
        self._events: list[BrokerEvent] = []
        self._next_perm_id = DEFAULT_FIRST_PERM_ID
        self._exec_base = int(clock().timestamp())

    # -- inspection ---------------------------------------------------------------------------

    @property
    def orders(self) -> tuple[OrderRecord, ...]:
        return tuple(self._orders.values())

    @property
    def executions(self) -> tuple[ExecutionSpec, ...]:
        """Every execution and correction, in order."""
        return tuple(self._executions)

    def now(self) -> datetime:
        return self._clock()

    def commission(self, exec_id: str) -> CommissionSpec:
        return self._commissions[exec_id]

    def quote(self, con_id: int) -> Quote:
        return self.quotes.quote(con_id)

    def drain_events(self) -> list[BrokerEvent]:
        """Events queued since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # -- market ----------------------------------------------------------------------------------

    def step(self) -> None:
        """Advance every quote one step and match every working order."""
        self.quotes.step()
        self._match_all(self._orders.values())

    def set_quote(self, con_id: int, bid: float, ask: float) -> Quote:
        """Pin a quote; orders on that contract match against it at once."""
        quote = self.quotes.set_quote(con_id, bid, ask)
        self._match_all(r for r in self._orders.values() if self._instrument(r) == con_id)
        return quote

    # -- order requests --------------------------------------------------------------------------

    def place(self, client_id: int, request: PlaceOrder) -> None:
        """A placeOrder from ``client_id``: new order, modification, or an error event."""
        existing = self._find(client_id, request.order_id)
        if existing is not None:
            self._modify(client_id, existing, request)
            return
        if not self._acceptable(client_id, request):
            return
        perm_id, self._next_perm_id = self._next_perm_id, self._next_perm_id + 1
        spec = order_spec(request, client_id, perm_id, request.account or self.account)
        record = OrderRecord(spec, initial_state(request))
        self._orders[(client_id, request.order_id)] = record
        self.next_order_id = max(self.next_order_id, request.order_id + 1)
        self._announce(record)
        self._match(record)

    def cancel(self, client_id: int, order_id: int) -> None:
        record = self._find(client_id, order_id)
        if record is None:
            self._error(client_id, order_id, ErrorCode.CANCEL_UNKNOWN_ORDER,
                        cancel_unknown_text(order_id))  # fmt: skip
        elif record.state.done:
            self._error(client_id, order_id, ErrorCode.CANCEL_FINISHED_ORDER,
                        cancel_finished_text(order_id, record.status))  # fmt: skip
        else:
            self._cancel(record)

    def global_cancel(self) -> None:
        for record in [r for r in self._orders.values() if not r.state.done]:
            self._cancel(record)

    def set_auto_open_orders(self, client_id: int, enable: bool) -> None:
        """reqAutoOpenOrders: only client id 0 binds other clients' orders (TWS ignores others)."""
        if client_id == 0:
            self.auto_bind = enable

    def rollback(self, n: int) -> int:
        """A restarted gateway's ``nextValidId`` comes back ``n`` lower (at least 1)."""
        if n < 0:
            raise ConfigError(f"rollback_order_ids: must be >= 0, got {n}")
        self.next_order_id = max(1, self.next_order_id - n)
        return self.next_order_id

    # -- queries ---------------------------------------------------------------------------------

    def open_orders(self, client_id: int | None = None) -> list[OrderRecord]:
        """Working orders of ``client_id``; every client's for client 0 or ``None``."""
        return [
            r for r in self._orders.values()
            if not r.state.done and (not client_id or r.client_id == client_id)
        ]  # fmt: skip

    def completed_orders(self) -> list[OrderRecord]:
        return [r for k, r in self._orders.items() if r.state.done and k not in self._forgotten]

    def end_trading_day(self, *, restart: bool = False) -> list[int]:
        """Working DAY orders expire (Cancelled, as at TWS's close); ``restart``: its nightly
        restart follows, done orders are reported nowhere after it. Returns the expired ids."""
        expired = [r for r in self._orders.values() if not r.state.done and r.spec.tif == "DAY"]
        for record in expired:
            self._cancel(record, notify=False)
        if restart:
            self._forgotten.update(k for k, r in self._orders.items() if r.state.done)
        return [r.order_id for r in expired]

    def executions_for(
        self, client_id: int, flt: ExecutionFilter | None = None
    ) -> list[tuple[ExecutionSpec, CommissionSpec]]:
        """Today's executions (since local midnight) for ``client_id`` (all for client 0) that
        pass ``flt``. Raises :class:`ValueError` for a filter time TWS would not accept."""
        flt = flt or ExecutionFilter()
        now = self._clock()
        zone = now.tzinfo or UTC
        since = datetime.combine(now.date(), time(), zone)
        if flt.time:
            since = max(since, parse_filter_time(flt.time, zone))
        return [
            (e, self._commissions[e.exec_id]) for e in self._executions
            if (not client_id or e.client_id == client_id) and execution_matches(e, flt, since)
        ]  # fmt: skip

    def positions(self) -> tuple[Position, ...]:
        """Non-flat positions, marked at the quote's mid."""
        return self.ledger.positions(self._mid)

    def position(self, execution: ExecutionSpec) -> Position | None:
        """The position an execution changed (flat included), marked at the quote's mid."""
        instrument = instrument_id(execution.contract)
        return self.ledger.position(execution.account, instrument, self._mid(instrument))

    def account_values(self) -> tuple[AccountValue, ...]:
        """Cash, NetLiquidation, GrossPositionValue: the gateway merges them over its state."""
        return self.ledger.account_values(self._mid)

    @property
    def cash(self) -> float:
        return self.ledger.cash

    def _mid(self, instrument: int) -> float:
        return self.quotes.quote(instrument).mid

    # -- fills (also the test controls) ----------------------------------------------------------

    def fill_order(
        self,
        order_id: int,
        quantity: float | None = None,
        price: float | None = None,
        *,
        client_id: int | None = None,
    ) -> str:
        """Fill (part of) a working order now, at ``price`` or the touch; returns the exec id.

        Raises :class:`LookupError` for an unknown or ambiguous order id, :class:`ValueError`
        for a finished or inactive order or a quantity outside ``0 < q <= remaining``."""
        record = self._lookup(order_id, client_id)
        if record.state.done or record.state is OrderState.INACTIVE:
            raise ValueError(f"order {order_id} is {record.status}: it cannot fill")
        shares = record.remaining if quantity is None else quantity
        if not 0 < shares <= record.remaining:
            raise ValueError(f"quantity: must be in (0, {record.remaining}], got {shares}")
        return self._fill(record, shares, self._touch(record) if price is None else price)

    def correct_execution(
        self, exec_id: str, *, shares: float | None = None, price: float | None = None
    ) -> str:
        """A correction, as TWS sends one: same exec id up to the last period, revision + 1.
        It replaces the latest revision of that execution: positions and cash move by the
        difference. Returns the new exec id."""
        if not any(e.exec_id == exec_id for e in self._executions):
            raise LookupError(f"no execution {exec_id!r}")
        stem, _, revision = exec_id.rpartition(".")
        original = next(
            e for e in reversed(self._executions) if e.exec_id.rpartition(".")[0] == stem
        )
        latest = int(original.exec_id.rpartition(".")[2])
        corrected = replace(
            original,
            exec_id=f"{stem}.{latest + 1:0{len(revision)}d}",
            shares=original.shares if shares is None else shares,
            price=original.price if price is None else price,
            time=self._clock(),
        )
        self.ledger.book(replace(original, shares=-original.shares))  # undo the original...
        self.ledger.charge(-self._commissions[original.exec_id].commission)  # ...its commission
        self._record_execution(corrected)
        return corrected.exec_id

    # -- internals -------------------------------------------------------------------------------

    def _find(self, client_id: int, order_id: int) -> OrderRecord | None:
        if (own := self._orders.get((client_id, order_id))) or client_id or not self.auto_bind:
            return own
        bound = [r for r in self._orders.values() if r.order_id == order_id]
        return bound[0] if len(bound) == 1 else None

    def _lookup(self, order_id: int, client_id: int | None) -> OrderRecord:
        if client_id is not None:
            found = (
                [self._orders[(client_id, order_id)]]
                if (client_id, order_id) in self._orders
                else []
            )
        else:
            found = [r for r in self._orders.values() if r.order_id == order_id]
        if len(found) != 1:
            raise LookupError(f"order {order_id}: {len(found)} matches; pass client_id=")
        return found[0]

    def _acceptable(self, client_id: int, request: PlaceOrder) -> bool:
        reason = reject_reason(request)
        if reason:
            self._error(
                client_id, request.order_id, ErrorCode.ORDER_REJECTED, rejected_text(reason)
            )
            return False
        prices = [p for p in (request.lmt_price, request.aux_price) if p is not None]
        if any(self.quotes.to_ticks(p) is None for p in prices):
            self._error(client_id, request.order_id, ErrorCode.PRICE_NOT_ON_TICK,
                        TEXT_PRICE_NOT_ON_TICK)  # fmt: skip
            return False
        return True

    def _modify(self, client_id: int, record: OrderRecord, request: PlaceOrder) -> None:
        same = (
            not record.state.done
            and instrument_id(request.contract) == self._instrument(record)
            and request.action == record.spec.action
        )
        if not same:
            self._error(client_id, request.order_id, ErrorCode.DUPLICATE_ORDER_ID,
                        TEXT_DUPLICATE_ORDER_ID)  # fmt: skip
            return
        if not self._acceptable(client_id, request):
            return
        if request.total_quantity < record.filled:
            reason = "quantity below the filled quantity"
            self._error(
                client_id, request.order_id, ErrorCode.ORDER_REJECTED, rejected_text(reason)
            )
            return
        spec = order_spec(request, record.client_id, record.perm_id, record.spec.account)
        state = record.state
        if state is OrderState.INACTIVE and request.transmit:
            state = initial_state(request)
        self._set(replace(record, spec=spec), state)
        self._announce(self._orders[self._key(record)])
        self._match(self._orders[self._key(record)])

    def _cancel(self, record: OrderRecord, *, notify: bool = True) -> None:
        self._set(record, OrderState.CANCELLED)
        self._announce(self._orders[self._key(record)], open_order=False)
        if notify:  # 202 answers a cancel; an expiry sends the status alone
            self._error(record.client_id, record.order_id, ErrorCode.ORDER_CANCELLED,
                        TEXT_ORDER_CANCELLED)  # fmt: skip

    def _match_all(self, records: Iterable[OrderRecord]) -> None:
        for record in list(records):
            self._match(self._orders[self._key(record)])

    def _match(self, record: OrderRecord) -> None:
        if record.state not in (OrderState.PRE_SUBMITTED, OrderState.SUBMITTED):
            return
        spec, touch = record.spec, self._touch(record)
        buy = spec.action == "BUY"
        if spec.order_type == "LMT":
            assert spec.lmt_price is not None
            if (touch > spec.lmt_price) if buy else (touch < spec.lmt_price):
                return
        elif spec.order_type == "STP" and not record.triggered:
            assert spec.aux_price is not None
            if (touch < spec.aux_price) if buy else (touch > spec.aux_price):
                return
            record = replace(record, triggered=True)
        self._fill(record, min(record.remaining, self.fill_size), touch)

    def _touch(self, record: OrderRecord) -> float:
        quote = self.quotes.quote(self._instrument(record))
        return quote.ask if record.spec.action == "BUY" else quote.bid

    def _fill(self, record: OrderRecord, shares: float, price: float) -> str:
        filled = record.filled + shares
        avg = (record.avg_fill_price * record.filled + price * shares) / filled
        record = replace(record, filled=filled, avg_fill_price=avg, last_fill_price=price)
        state = OrderState.FILLED if record.remaining <= 0 else OrderState.SUBMITTED
        self._set(record, state)
        count = len(self._executions) + 1
        spec = record.spec
        execution = ExecutionSpec(
            exec_id=f"{EXEC_ID_STEM:08x}.{(self._exec_base + count) & 0xFFFFFFFF:08x}.01.01",
            order_id=spec.order_id, client_id=spec.client_id, perm_id=spec.perm_id,
            contract=spec.contract, time=self._clock(), account=spec.account,
            exchange=DEFAULT_EXEC_EXCHANGE, side="BOT" if spec.action == "BUY" else "SLD",
            shares=shares, price=price, cum_qty=filled, avg_price=avg, order_ref=spec.order_ref,
        )  # fmt: skip
        self._record_execution(execution)
        self._announce(self._orders[self._key(record)], open_order=state.done)
        return execution.exec_id

    def _record_execution(self, execution: ExecutionSpec) -> None:
        self._executions.append(execution)
        commission = CommissionSpec(
            execution.exec_id,
            max(self.min_commission, round(abs(execution.shares) * self.commission_per_share, 2)),
            realized_pnl=self.ledger.book(execution),
        )
        self.ledger.charge(commission.commission)
        self._commissions[execution.exec_id] = commission
        for client_id in self._recipients(execution.client_id):
            self._events.append(ExecDetailsEvent(client_id, execution))
            self._events.append(CommissionReportEvent(client_id, commission))

    def _set(self, record: OrderRecord, state: OrderState) -> None:
        if state is not record.state and state not in TRANSITIONS[record.state]:
            raise AssertionError(f"order {record.order_id}: {record.status} -> {state.value}")
        self._orders[self._key(record)] = replace(record, state=state)

    def _announce(self, record: OrderRecord, *, open_order: bool = True) -> None:
        for client_id in self._recipients(record.client_id):
            if open_order:
                self._events.append(OpenOrderEvent(client_id, record.spec, record.status))
            self._events.append(OrderStatusEvent(client_id, record.status_spec()))

    def _recipients(self, owner: int) -> tuple[int, ...]:
        return (owner, 0) if self.auto_bind and owner != 0 else (owner,)

    def _error(self, client_id: int, req_id: int, code: int, text: str) -> None:
        self._events.append(ErrorEvent(client_id, req_id, code, text))

    def _instrument(self, record: OrderRecord) -> int:
        return instrument_id(record.spec.contract)

    @staticmethod
    def _key(record: OrderRecord) -> tuple[int, int]:
        return (record.client_id, record.order_id)
