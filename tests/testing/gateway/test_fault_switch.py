"""``gw.faults``: the one way to switch a fault on and off, and the shortcuts that go through it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from ib_async import IB, MarketOrder, Stock

from tests.testing.helpers import wait_until
from v6.protocol.orders_messages import OrderStatusSpec
from v6.testing import (
    BrokenHandshake,
    CloseAfterPlaceOrder,
    DropCommissionReports,
    DropExecutions,
    ExecBeforeOpenOrder,
    FakeGateway,
    Fault,
    HoldOrderStatus,
    IgnoreRequests,
    Latency,
    Stall,
)
from v6.testing.broker import BrokerEvent, OrderStatusEvent
from v6.testing.gateway import Faults, HookVerdict

MakeGateway = Callable[..., Awaitable[FakeGateway]]
IBFactory = Callable[[], IB]
AAPL_ID = 265598


class IgnoreOne(Fault):
    """A fault that may be on several times at once: one per message id (its key says so)."""

    def __init__(self, msg_id: int) -> None:
        self.msg_id = msg_id

    @property
    def key(self) -> tuple[object, ...]:
        return (type(self), self.msg_id)

    def on_request(self, msg_id: int) -> HookVerdict:
        return HookVerdict.DROP if msg_id == self.msg_id else HookVerdict.PASS


def status_event(order_id: int) -> OrderStatusEvent:
    return OrderStatusEvent(1, OrderStatusSpec(order_id, "Submitted", 0, 10, 0, 1, 0, 0, 1))


async def test_switch_on_and_off_on_a_running_gateway(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway()
    assert gw.faults.active == ()
    ib = ib_client()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=1, raiseSyncErrors=True)

    gw.faults.switch_on(Stall())
    assert gw.faults.active == (Stall(),)
    assert gw.stalled
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.2)

    gw.faults.switch_off(Stall)
    assert gw.faults.active == ()
    assert not gw.stalled
    assert await asyncio.wait_for(ib.reqCurrentTimeAsync(), 1)


async def test_switching_off_releases_what_the_fault_held() -> None:
    released: list[BrokerEvent] = []
    faults = Faults(on_release=released.extend)
    faults.switch_on(HoldOrderStatus())
    assert faults.on_events([status_event(7)]) == []
    faults.switch_off(HoldOrderStatus)
    assert released == [status_event(7), status_event(7)]  # late, and twice
    assert faults.on_events([status_event(8)]) == [status_event(8)]


def test_switching_on_twice_or_off_twice_changes_nothing() -> None:
    changes: list[str] = []
    released: list[BrokerEvent] = []
    faults = Faults(on_change=lambda: changes.append(repr(faults)), on_release=released.extend)
    faults.switch_on(HoldOrderStatus())
    faults.on_events([status_event(7)])
    faults.switch_on(HoldOrderStatus())  # equal to the active one: it keeps what it holds
    faults.switch_on(Latency(0.5))
    faults.switch_on(Latency(0.5))
    assert faults.active == (HoldOrderStatus(), Latency(0.5))
    assert changes == ["[HoldOrderStatus(held=0)]", "[HoldOrderStatus(held=1), Latency(0.5)]"]
    faults.switch_off(HoldOrderStatus)
    faults.switch_off(HoldOrderStatus)
    assert released == [status_event(7), status_event(7)]
    assert len(changes) == 3


def test_a_fault_with_new_parameters_replaces_the_active_one() -> None:
    faults = Faults()
    faults.switch_on(IgnoreRequests({49}))
    faults.switch_on(IgnoreRequests({8}))
    assert faults.active == (IgnoreRequests({8}),)
    assert faults.on_request(49) is HookVerdict.PASS
    faults.switch_off(IgnoreRequests({1}))  # a fault: the active one with its key goes
    assert faults.active == ()


def test_a_fault_keyed_by_target_is_on_once_per_target() -> None:
    faults = Faults()
    faults.switch_on(IgnoreOne(49))
    faults.switch_on(IgnoreOne(8))
    assert faults.active == (IgnoreOne(49), IgnoreOne(8))
    assert faults.get(IgnoreOne) == IgnoreOne(49)
    faults.switch_off(IgnoreOne(49))
    assert faults.on_request(49) is HookVerdict.PASS
    assert faults.on_request(8) is HookVerdict.DROP
    faults.switch_on(IgnoreOne(49))
    faults.switch_off(IgnoreOne)  # a class: every one of them
    assert faults.active == ()


Shortcut = Callable[[FakeGateway], None]
SHORTCUTS: list[tuple[str, Shortcut, Shortcut | None, Fault]] = [
    ("stall", FakeGateway.stall, FakeGateway.unstall, Stall()),
    ("latency", lambda gw: gw.set_latency(0.25), None, Latency(0.25)),
    ("handshake", lambda gw: gw.handshake_fault("close"), lambda gw: gw.handshake_fault(None),
     BrokenHandshake("close")),
    ("ignore", lambda gw: gw.ignore_requests({49}), None, IgnoreRequests({49})),
    ("hold status", FakeGateway.hold_order_status, lambda gw: gw.hold_order_status(False),
     HoldOrderStatus()),
    ("drop reports", FakeGateway.drop_commission_reports,
     lambda gw: gw.drop_commission_reports(False), DropCommissionReports()),
    ("drop executions", FakeGateway.drop_executions, lambda gw: gw.drop_executions(False),
     DropExecutions()),
    ("exec first", FakeGateway.exec_before_open_order, lambda gw: gw.exec_before_open_order(False),
     ExecBeforeOpenOrder()),
    ("close after place", FakeGateway.close_after_place_order,
     lambda gw: gw.close_after_place_order(False), CloseAfterPlaceOrder()),
]  # fmt: skip


@pytest.mark.parametrize(("on", "off", "fault"), [s[1:] for s in SHORTCUTS],
                         ids=[s[0] for s in SHORTCUTS])  # fmt: skip
def test_every_fault_method_is_a_shortcut_to_the_switch(
    monkeypatch: pytest.MonkeyPatch,
    on: Callable[[FakeGateway], None],
    off: Callable[[FakeGateway], None] | None,
    fault: Fault,
) -> None:
    gw = FakeGateway()
    calls: list[tuple[str, object]] = []
    switch_on, switch_off = gw.faults.switch_on, gw.faults.switch_off

    def spy_on(f: Fault) -> None:
        calls.append(("on", f))
        switch_on(f)

    def spy_off(f: type[Fault] | Fault) -> None:
        calls.append(("off", f))
        switch_off(f)

    monkeypatch.setattr(gw.faults, "switch_on", spy_on)
    monkeypatch.setattr(gw.faults, "switch_off", spy_off)
    on(gw)
    assert calls == [("on", fault)]
    assert gw.faults.active == (fault,)
    if off is not None:
        off(gw)
        assert calls[1][0] == "off"
        assert gw.faults.active == ()


def test_the_latency_argument_switches_latency_on() -> None:
    assert FakeGateway().faults.active == ()
    assert FakeGateway(latency=0.2).faults.active == (Latency(0.2),)
    assert FakeGateway(latency=0.2).latency == 0.2


@pytest.mark.parametrize(
    ("argument", "error", "message"),
    [
        (Stall, TypeError, r"not a class: Stall\(\) switches it on"),
        ("stall", TypeError, r"takes a Fault \(e.g. Stall\(\)\), got 'stall'"),
        (None, TypeError, "got None"),
        (Fault(), ValueError, "base class"),
    ],
)
def test_switch_on_refuses_what_is_not_a_fault(
    argument: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        FakeGateway().faults.switch_on(argument)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argument", "error", "message"),
    [
        ("stall", TypeError, r"takes a Fault class or a fault \(e.g. Stall\), got 'stall'"),
        (int, TypeError, "got <class 'int'>"),
        (Fault, ValueError, "names no fault"),
    ],
)
def test_switch_off_refuses_what_is_not_a_fault(
    argument: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        FakeGateway().faults.switch_off(argument)  # type: ignore[arg-type]


async def test_switching_hold_order_status_off_delivers_the_held_statuses(
    make_gateway: MakeGateway, ib_client: IBFactory
) -> None:
    gw = await make_gateway(market_interval=None)
    gw.set_quote(AAPL_ID, 100.00, 100.02)
    ib = ib_client()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=1, raiseSyncErrors=True)
    gw.faults.switch_on(HoldOrderStatus())
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD", conId=AAPL_ID), MarketOrder("BUY", 1))
    await wait_until(lambda: len(trade.fills) == 1, what="fill")
    assert trade.orderStatus.status == "PendingSubmit"  # its orderStatus messages are held
    gw.faults.switch_off(HoldOrderStatus)
    await wait_until(trade.isDone, what="the held statuses")
    assert trade.orderStatus.status == "Filled"
