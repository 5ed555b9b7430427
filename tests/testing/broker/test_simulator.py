"""The simulated broker: pure, with an injected clock (no sockets, no sleeping)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import WallClock
from v6.errors import ConfigError
from v6.protocol.codec import ContractSpec
from v6.protocol.orders_messages import commission_report, exec_details, open_order, order_status
from v6.protocol.orders_requests import ExecutionFilter, PlaceOrder
from v6.testing.broker import (
    Broker,
    CommissionReportEvent,
    ErrorEvent,
    ExecDetailsEvent,
    OpenOrderEvent,
    OrderStatusEvent,
)

NY = ZoneInfo("America/New_York")
AAPL = ContractSpec(con_id=265598, symbol="AAPL", sec_type="STK", exchange="SMART", currency="USD")
MSFT = ContractSpec(con_id=272093, symbol="MSFT", sec_type="STK", exchange="SMART", currency="USD")
EXEC_ID = re.compile(r"[0-9a-f]{8}\.[0-9a-f]{8}\.01\.01")


def morning() -> WallClock:
    return WallClock(datetime(2024, 1, 2, 10, 0, tzinfo=NY))


def make_broker(**kwargs: object) -> Broker:
    broker = Broker(clock=morning(), seed=7, **kwargs)  # type: ignore[arg-type]
    broker.set_quote(AAPL.con_id, 100.00, 100.02)
    broker.set_quote(MSFT.con_id, 300.00, 300.05)
    return broker


def order(
    order_id: int, order_type: str = "MKT", action: str = "BUY", quantity: float = 10, **kw: object
) -> PlaceOrder:
    fields: dict[str, object] = {"contract": AAPL, "tif": "DAY", "account": "DU111"}
    fields.update(kw)
    return PlaceOrder(order_id=order_id, action=action, total_quantity=quantity,
                      order_type=order_type, **fields)  # type: ignore[arg-type]  # fmt: skip


def kinds(events: list[object]) -> list[str]:
    return [type(e).__name__.removesuffix("Event") for e in events]


def statuses(events: list[object]) -> list[tuple[str, float, float]]:
    return [
        (e.status.status, e.status.filled, e.status.remaining)
        for e in events if isinstance(e, OrderStatusEvent)
    ]  # fmt: skip


def errors(events: list[object]) -> list[tuple[int, int, int]]:
    return [(e.client_id, e.req_id, e.code) for e in events if isinstance(e, ErrorEvent)]


# -- configuration ---------------------------------------------------------------------------------


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError, match="fill_size"):
        Broker(clock=morning(), fill_size=0)
    with pytest.raises(ConfigError, match="next_order_id"):
        Broker(clock=morning(), next_order_id=0)


# -- orders and fills ------------------------------------------------------------------------------


def test_market_buy_fills_at_the_ask_with_events_in_order() -> None:
    broker = make_broker()
    broker.place(3, order(5, order_ref="ref-5"))
    events = broker.drain_events()
    assert kinds(events) == ["OpenOrder", "OrderStatus", "ExecDetails", "CommissionReport",
                             "OpenOrder", "OrderStatus"]  # fmt: skip
    assert statuses(events) == [("Submitted", 0, 10), ("Filled", 10, 0)]
    execution = next(e.execution for e in events if isinstance(e, ExecDetailsEvent))
    assert (execution.price, execution.shares, execution.side) == (100.02, 10, "BOT")
    assert EXEC_ID.fullmatch(execution.exec_id)
    assert (execution.order_ref, execution.account, execution.client_id) == ("ref-5", "DU111", 3)
    commission = next(e.commission for e in events if isinstance(e, CommissionReportEvent))
    assert commission.commission == 1.0  # 10 * 0.005 is below the 1.00 minimum
    perm_ids = {e.order.perm_id for e in events if isinstance(e, OpenOrderEvent)}
    assert perm_ids == {broker.orders[0].perm_id}
    assert all(e.client_id == 3 for e in events)
    assert broker.next_order_id == 6


def test_every_event_encodes() -> None:
    broker = make_broker()
    broker.place(1, order(1, quantity=250))
    for event in broker.drain_events():
        if isinstance(event, OpenOrderEvent):
            assert open_order(event.order, event.status)
        elif isinstance(event, OrderStatusEvent):
            assert order_status(event.status)
        elif isinstance(event, ExecDetailsEvent):
            assert exec_details(-1, event.execution)
        elif isinstance(event, CommissionReportEvent):
            assert commission_report(event.commission)


def test_sell_fills_at_the_bid_and_large_orders_fill_in_fill_size_pieces() -> None:
    broker = make_broker(fill_size=100)
    broker.place(1, order(1, action="SELL", quantity=250))
    broker.set_quote(AAPL.con_id, 100.00, 100.02)  # a matching pass on this contract
    broker.step()
    events = broker.drain_events()
    fills = [e.execution for e in events if isinstance(e, ExecDetailsEvent)]
    assert [(f.shares, f.cum_qty, f.side) for f in fills] == [
        (100, 100, "SLD"), (100, 200, "SLD"), (50, 250, "SLD"),
    ]  # fmt: skip
    assert fills[0].price == 100.00
    assert statuses(events)[-1] == ("Filled", 250, 0)
    assert len({f.exec_id for f in fills}) == 3
    assert broker.completed_orders()[0].filled == 250


def test_limit_waits_for_the_quote_to_cross() -> None:
    broker = make_broker()
    broker.place(1, order(1, "LMT", lmt_price=99.50))
    assert statuses(broker.drain_events()) == [("Submitted", 0, 10)]
    broker.set_quote(AAPL.con_id, 99.40, 99.45)
    events = broker.drain_events()
    assert statuses(events) == [("Filled", 10, 0)]
    assert next(e.execution.price for e in events if isinstance(e, ExecDetailsEvent)) == 99.45


def test_stop_is_presubmitted_until_triggered_then_fills_like_market() -> None:
    broker = make_broker()
    broker.place(1, order(1, "STP", action="SELL", aux_price=99.00))
    assert statuses(broker.drain_events()) == [("PreSubmitted", 0, 10)]
    broker.set_quote(AAPL.con_id, 99.10, 99.12)
    assert broker.drain_events() == []
    broker.set_quote(AAPL.con_id, 98.90, 98.95)
    events = broker.drain_events()
    assert statuses(events) == [("Filled", 10, 0)]
    assert next(e.execution.price for e in events if isinstance(e, ExecDetailsEvent)) == 98.90


def test_untransmitted_order_stays_inactive_until_transmitted() -> None:
    broker = make_broker()
    broker.place(1, order(1, transmit=False))
    broker.step()
    assert statuses(broker.drain_events()) == [("Inactive", 0, 10)]
    with pytest.raises(ValueError, match="Inactive"):
        broker.fill_order(1)
    broker.place(1, order(1, transmit=True))
    assert statuses(broker.drain_events())[-1] == ("Filled", 10, 0)


def test_modify_keeps_perm_id_and_a_different_order_on_the_same_id_is_103() -> None:
    broker = make_broker()
    broker.place(2, order(4, "LMT", lmt_price=90.00, order_ref="a"))
    perm_id = broker.orders[0].perm_id
    broker.place(2, order(4, "LMT", lmt_price=91.00, quantity=20, order_ref="b"))
    events = broker.drain_events()
    modified = [e.order for e in events if isinstance(e, OpenOrderEvent)][-1]
    assert (modified.lmt_price, modified.total_quantity, modified.perm_id) == (91.0, 20, perm_id)
    broker.place(2, order(4, "LMT", action="SELL", lmt_price=91.00))
    broker.place(2, order(5, contract=MSFT))
    broker.place(2, order(5))  # order 5 is filled: its id cannot be reused
    assert errors(broker.drain_events()) == [(2, 4, 103), (2, 5, 103)]
    assert len(broker.orders) == 2


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (order(1, "TRAIL"), 201),
        (order(1, quantity=0), 201),
        (order(1, "LMT"), 201),  # no limit price
        (order(1, "LMT", lmt_price=100.005), 110),
        (order(1, "STP", aux_price=99.001), 110),
        (order(1, tif="FOK"), 201),
    ],
)
def test_rejections(request_: PlaceOrder, code: int) -> None:
    broker = make_broker()
    broker.place(1, request_)
    events = broker.drain_events()
    assert errors(events) == [(1, 1, code)]
    assert len(events) == 1
    assert broker.orders == ()
    if code == 201:
        assert isinstance(events[0], ErrorEvent)
        assert events[0].text.startswith("Order rejected - reason:")


def test_cancel_rules() -> None:
    broker = make_broker()
    broker.place(1, order(1, "LMT", lmt_price=90.00))
    broker.place(1, order(2))  # fills at once
    broker.drain_events()
    broker.cancel(2, 1)  # another client: not its order
    broker.cancel(1, 99)
    broker.cancel(1, 2)
    assert errors(broker.drain_events()) == [(2, 1, 10147), (1, 99, 10147), (1, 2, 10148)]
    broker.cancel(1, 1)
    events = broker.drain_events()
    assert statuses(events) == [("Cancelled", 0, 10)]
    assert errors(events) == [(1, 1, 202)]


def test_client_zero_binds_after_auto_open_orders() -> None:
    broker = make_broker()
    broker.place(5, order(1, "LMT", lmt_price=90.00))
    broker.cancel(0, 1)
    assert errors(broker.drain_events()) == [(0, 1, 10147)]
    broker.set_auto_open_orders(0, True)
    broker.place(5, order(2, "LMT", lmt_price=90.00))
    assert {e.client_id for e in broker.drain_events()} == {0, 5}
    broker.cancel(0, 1)
    assert statuses(broker.drain_events()) == [("Cancelled", 0, 10)] * 2
    assert [r.order_id for r in broker.open_orders(5)] == [2]
    assert [r.order_id for r in broker.open_orders(0)] == [2]


def test_global_cancel_cancels_every_working_order() -> None:
    broker = make_broker()
    broker.place(1, order(1, "LMT", lmt_price=90.00))
    broker.place(2, order(1, "STP", aux_price=120.00))
    broker.global_cancel()
    assert broker.open_orders() == []
    assert [r.status for r in broker.completed_orders()] == ["Cancelled", "Cancelled"]


def test_fill_order_forces_a_partial_fill_and_checks_its_arguments() -> None:
    broker = make_broker()
    broker.place(1, order(1, "LMT", lmt_price=90.00, quantity=100))
    broker.place(2, order(1, "LMT", lmt_price=90.00, quantity=100))
    with pytest.raises(LookupError, match="client_id"):
        broker.fill_order(1)
    exec_id = broker.fill_order(1, 30, 90.0, client_id=1)
    record = next(r for r in broker.orders if r.client_id == 1)
    assert (record.status, record.filled, record.remaining) == ("Submitted", 30, 70)
    assert broker.executions[-1].exec_id == exec_id
    with pytest.raises(ValueError, match="quantity"):
        broker.fill_order(1, 71, client_id=1)
    with pytest.raises(LookupError):
        broker.fill_order(42)


def test_correction_keeps_the_stem_and_moves_positions() -> None:
    broker = make_broker()
    broker.place(1, order(1, quantity=10))
    first = broker.executions[0].exec_id
    corrected = broker.correct_execution(first, shares=8, price=100.00)
    assert corrected == first.removesuffix(".01") + ".02"
    again = broker.correct_execution(corrected, price=100.01)
    assert again == first.removesuffix(".01") + ".03"
    (position,) = broker.positions()
    assert (position.quantity, position.avg_cost) == (8, 100.01)
    latest = broker.correct_execution(first, shares=5)  # from an old revision: replaces the latest
    assert latest == first.removesuffix(".01") + ".04"
    assert broker.positions()[0].quantity == 5
    with pytest.raises(LookupError):
        broker.correct_execution("nope")


def test_a_correction_refunds_the_original_s_commission() -> None:
    broker = make_broker(min_commission=0.0, commission_per_share=0.01)
    start = broker.cash
    broker.place(1, order(1, quantity=100))  # 100 @ 100.02, commission 1.00
    first = broker.executions[0].exec_id
    assert broker.cash == pytest.approx(start - 100 * 100.02 - 1.00)
    corrected = broker.correct_execution(first, shares=60)  # commission 0.60 in its place
    assert broker.commission(corrected).commission == pytest.approx(0.60)
    assert broker.cash == pytest.approx(start - 60 * 100.02 - 0.60)


def test_at_the_close_day_orders_expire_and_a_restart_forgets_done_ones() -> None:
    broker = make_broker()
    broker.place(1, order(1, "LMT", lmt_price=1.00))  # DAY, works
    broker.place(1, order(2, "LMT", lmt_price=1.00, tif="GTC"))
    broker.drain_events()
    assert broker.end_trading_day() == [1]
    assert statuses(broker.drain_events()) == [("Cancelled", 0, 10)]  # no 202: nobody asked
    assert [r.order_id for r in broker.completed_orders()] == [1]
    broker.end_trading_day(restart=True)
    assert broker.completed_orders() == []
    assert [r.order_id for r in broker.open_orders()] == [2]


def test_positions_cash_and_net_liquidation_follow_fills() -> None:
    broker = make_broker()
    broker.place(1, order(1, quantity=100))  # buy 100 @ 100.02, commission 1.00 (0.50 < min)
    broker.place(1, order(2, action="SELL", quantity=40))  # sell 40 @ 100.00
    (position,) = broker.positions()
    assert position.quantity == 60
    assert position.avg_cost == pytest.approx(100.02)
    assert position.realized_pnl == pytest.approx(40 * (100.00 - 100.02))
    assert broker.cash == pytest.approx(100_000 - 100 * 100.02 + 40 * 100.00 - 2.0)
    values = {v.key: float(v.value) for v in broker.account_values()}
    assert values["TotalCashValue"] == pytest.approx(broker.cash, abs=0.01)
    assert values["NetLiquidation"] == pytest.approx(broker.cash + 60 * 100.01, abs=0.01)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 400),
                          st.sampled_from([AAPL, MSFT]), st.integers(0, 3)),
                min_size=1, max_size=15))  # fmt: skip
def test_positions_equal_the_sum_of_signed_fills(
    trades: list[tuple[str, int, ContractSpec, int]],
) -> None:
    broker = make_broker(fill_size=150)
    for order_id, (action, quantity, contract, steps) in enumerate(trades, start=1):
        broker.place(1, order(order_id, action=action, quantity=quantity, contract=contract))
        for _ in range(steps):
            broker.step()
    expected: dict[int, float] = {}
    for e in broker.executions:
        sign = 1 if e.side == "BOT" else -1
        expected[e.contract.con_id] = expected.get(e.contract.con_id, 0) + sign * e.shares
    held = {p.con_id: p.quantity for p in broker.positions()}
    assert held == {k: v for k, v in expected.items() if v}
    quotes_ok = all(broker.quote(c).bid < broker.quote(c).ask for c in (AAPL.con_id, MSFT.con_id))
    assert quotes_ok


# -- queries ---------------------------------------------------------------------------------------


def test_executions_filtered_by_every_field() -> None:
    clock = morning()
    broker = Broker(clock=clock, seed=1)
    broker.set_quote(AAPL.con_id, 100.00, 100.02)
    broker.set_quote(MSFT.con_id, 300.00, 300.05)
    broker.place(1, order(1))
    clock.now += timedelta(hours=1)  # 11:00 New York
    broker.place(2, order(1, action="SELL", contract=MSFT, account="DU222"))
    broker.place(1, order(2, action="SELL"))

    def ids(requester: int, **kw: object) -> list[tuple[int, int]]:
        flt = ExecutionFilter(**kw)  # type: ignore[arg-type]
        return [(e.client_id, e.order_id) for e, _ in broker.executions_for(requester, flt)]

    assert ids(1) == [(1, 1), (1, 2)]
    assert ids(0) == [(1, 1), (2, 1), (1, 2)]
    assert ids(0, client_id=2) == [(2, 1)]
    assert ids(0, acct_code="du222") == [(2, 1)]
    assert ids(0, symbol="AAPL", side="SELL") == [(1, 2)]
    assert ids(0, sec_type="STK", exchange="ISLAND") == [(1, 1), (2, 1), (1, 2)]
    assert ids(0, exchange="NYSE") == []
    assert ids(0, time="20240102 10:30:00") == [(2, 1), (1, 2)]
    assert ids(0, time="20240102-15:30:00 UTC") == [(2, 1), (1, 2)]
    assert ids(0, time="20240102 11:30:00") == []
    with pytest.raises(ValueError, match="yyyymmdd"):
        ids(0, time="yesterday")
    clock.now += timedelta(days=1)
    assert ids(0) == []  # only the day's executions


def test_rollback_lowers_next_order_id() -> None:
    broker = make_broker(next_order_id=10)
    broker.place(1, order(15, "LMT", lmt_price=90.00))
    assert broker.next_order_id == 16
    assert broker.rollback(4) == 12
    assert broker.rollback(100) == 1
    with pytest.raises(ConfigError, match="rollback"):
        broker.rollback(-1)
