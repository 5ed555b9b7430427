"""reconcile(): table tests on plain data, and its agreement with the ledger that applies it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v6.orders.journal import Journal
from v6.orders.ledger import FillKind, FillLedger
from v6.orders.reconcile import (
    GatewayReport,
    PlacedOrder,
    ReportedExecution,
    ReportedOrder,
    reconcile,
)

SESSION = 2
A = PlacedOrder("v6-s-1", client_id=1, order_id=10, session=1, perm_id=555, status="Submitted")
B = PlacedOrder("v6-s-2", client_id=1, order_id=11, session=1, unacknowledged=True)
C = PlacedOrder("v6-s-3", client_id=1, order_id=12, session=SESSION, status="PendingSubmit")


def order(placed: PlacedOrder, status: str, **changes: object) -> ReportedOrder:
    base = ReportedOrder(
        perm_id=placed.perm_id or 900 + placed.order_id,
        client_id=placed.client_id,
        order_id=placed.order_id,
        order_ref=placed.order_ref,
        status=status,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def execution(
    exec_id: str, placed: PlacedOrder | None = None, time: float = 1.0
) -> ReportedExecution:
    if placed is None:
        return ReportedExecution(exec_id, 777, 1, 99, "", time)
    perm = placed.perm_id or 900 + placed.order_id
    return ReportedExecution(
        exec_id, perm, placed.client_id, placed.order_id, placed.order_ref, time
    )


@pytest.mark.parametrize(
    "flags",
    [
        {"open_orders_complete": False},
        {"completed_orders_complete": False},
        {"executions_complete": False},
    ],
)
def test_incomplete_sync_decides_nothing(flags: dict[str, bool]) -> None:
    report = GatewayReport(SESSION, executions=[execution("e.01", A)], **flags)
    result = reconcile([A, B], report, Journal(None))
    assert not result.complete
    assert len(result.missing) == 1
    assert result.fills == ()
    assert result.absent == ()
    assert result.statuses == ()


def test_complete_empty_sync_proves_unknown_orders_absent() -> None:
    result = reconcile([A, B], GatewayReport(SESSION), Journal(None))
    assert result.complete
    assert result.absent == ("v6-s-2",)
    assert result.vanished == ("v6-s-1",)
    assert result.fills == ()


def test_matching_by_perm_id_then_order_ref_then_session_order_id() -> None:
    report = GatewayReport(
        SESSION,
        open_orders=[
            order(A, "Submitted", order_ref="", order_id=0),  # only the permId matches
            order(B, "Submitted", client_id=5, order_id=0),  # only the orderRef matches
            order(C, "Submitted", order_ref=""),  # only (client, order id) of this session
        ],
    )
    result = reconcile([A, B, C], report, Journal(None))
    assert result.found == {"v6-s-1": "perm_id", "v6-s-2": "order_ref", "v6-s-3": "order_id"}
    assert result.absent == ()
    assert {s.placed for s in result.statuses} == {"v6-s-2", "v6-s-3"}  # A unchanged


def test_order_id_of_an_earlier_session_does_not_match() -> None:
    stranger = order(B, "Submitted", order_ref="", perm_id=4242)  # B's ids, but session 1
    result = reconcile([B], GatewayReport(SESSION, open_orders=[stranger]), Journal(None))
    assert result.found == {}
    assert result.absent == ("v6-s-2",)


def test_ambiguous_order_ref_is_not_used() -> None:
    twin = replace(C, order_ref=B.order_ref, unacknowledged=True, session=1, order_id=13)
    reported = order(B, "Submitted", order_id=50, client_id=9)
    result = reconcile([B, twin], GatewayReport(SESSION, open_orders=[reported]), Journal(None))
    assert result.found == {}


def test_unknown_order_found_by_execution_order_ref() -> None:
    fill = execution("e.01", B)._replace(perm_id=31337, order_id=0, client_id=4)
    result = reconcile([B], GatewayReport(SESSION, executions=[fill]), Journal(None))
    assert result.found == {"v6-s-2": "order_ref"}
    assert result.absent == ()
    assert [f.placed for f in result.fills] == ["v6-s-2"]


def test_completed_status_wins_over_open() -> None:
    report = GatewayReport(
        SESSION,
        open_orders=[order(A, "Submitted")],
        completed_orders=[order(A, "Filled", filled=100.0)],
    )
    (status,) = reconcile([A], report, Journal(None)).statuses
    assert (status.status, status.filled) == ("Filled", 100.0)


def test_fills_skip_delivered_and_order_corrections() -> None:
    journal = Journal(None)
    journal.record_delivery("a.01", "a", 1, 1.0)
    report = GatewayReport(
        SESSION,
        executions=[
            execution("b.02", A, time=5.0),
            execution("a.01", A, time=1.0),  # delivered before
            execution("a.02", A, time=1.5),  # corrects a delivered fill
            execution("b.01", A, time=5.0),  # both versions missed: original first
            execution("b.01", A, time=5.0),  # repeated in the same report
            execution("z.01", None, time=3.0),  # not the application's order
        ],
    )
    result = reconcile([A], report, journal)
    got = [
        (f.execution.exec_id, f.verdict.kind, f.verdict.replaces, f.placed) for f in result.fills
    ]
    assert got == [
        ("a.02", FillKind.CORRECTION, "a.01", "v6-s-1"),
        ("z.01", FillKind.NEW, None, None),
        ("b.01", FillKind.NEW, None, "v6-s-1"),
        ("b.02", FillKind.CORRECTION, "b.01", "v6-s-1"),
    ]


def test_commissions_only_for_known_undelivered_reports() -> None:
    journal = Journal(None)
    journal.record_delivery("a.01", "a", 1, 1.0)
    journal.record_delivery("c.01", "c", 1, 1.0)
    journal.record_commission("c.01")
    report = GatewayReport(
        SESSION,
        executions=[execution("b.01", A)],
        commission_exec_ids=["a.01", "b.01", "c.01", "x.01", "a.01"],
    )
    assert reconcile([A], report, journal).commissions == ("a.01", "b.01")


# ----------------------------------------------------------------- property: reconcile + ledger


@settings(max_examples=60, deadline=None)
@given(
    versions=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=10),
    live=st.data(),
)
def test_reconcile_then_ledger_delivers_every_execution_once(
    versions: list[int], live: st.DataObject
) -> None:
    executions = [
        execution(f"{s:04x}.{v:02x}", A, time=float(s))
        for s, k in enumerate(versions)
        for v in range(1, k + 1)
    ]
    journal = Journal(None)
    ledger: FillLedger[str] = FillLedger(journal)
    delivered: list[str] = []
    # Some executions were announced live before the drop (each stem's versions in order).
    for s, k in enumerate(versions):
        for v in range(1, live.draw(st.integers(min_value=1, max_value=k + 1))):
            exec_id = f"{s:04x}.{v:02x}"
            if ledger.execution(exec_id, float(s)).deliver:
                delivered.append(exec_id)
    shuffled = live.draw(st.permutations(executions + executions[:3]))
    result = reconcile([A], GatewayReport(SESSION, executions=shuffled), journal)
    for fill in result.fills:
        decision = ledger.execution(fill.execution.exec_id, fill.execution.time, recovered=True)
        assert decision.verdict == fill.verdict  # the ledger agrees with the plan
        delivered.append(fill.execution.exec_id)
    assert sorted(delivered) == sorted(e.exec_id for e in executions)
    assert reconcile([A], GatewayReport(SESSION, executions=shuffled), journal).fills == ()
