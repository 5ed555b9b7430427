"""FillLedger: the decision table, commission holding, counters, restart, and a hypothesis run."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v6.errors import ConfigError
from v6.orders.journal import Journal
from v6.orders.ledger import CommissionKind, FillKind, FillLedger, split_exec_id


@pytest.mark.parametrize(
    ("exec_id", "expected"),
    [
        ("0000e0d5.6568f4a4.01.01", ("0000e0d5.6568f4a4.01", 1)),
        ("0000e0d5.6568f4a4.01.0a", ("0000e0d5.6568f4a4.01", 10)),
        ("plain", ("plain", 0)),
        (".01", (".01", 0)),
        ("a.b.zz", ("a.b.zz", 0)),
    ],
)
def test_split_exec_id(exec_id: str, expected: tuple[str, int]) -> None:
    assert split_exec_id(exec_id) == expected


@pytest.mark.parametrize(
    ("seen", "exec_id", "kind", "replaces"),
    [
        ([], "s.01", FillKind.NEW, None),
        (["s.01"], "s.01", FillKind.DUPLICATE, None),
        (["s.01"], "s.02", FillKind.CORRECTION, "s.01"),
        (["s.01", "s.02"], "s.03", FillKind.CORRECTION, "s.02"),
        (["s.02"], "s.01", FillKind.STALE, None),
        (["s.01"], "s.1", FillKind.STALE, None),  # same suffix, other spelling
        (["s.01"], "t.01", FillKind.NEW, None),
    ],
)
def test_decision_table(
    seen: list[str], exec_id: str, kind: FillKind, replaces: str | None
) -> None:
    ledger: FillLedger[str] = FillLedger(Journal(None))
    for earlier in seen:
        assert ledger.execution(earlier, 1.0).deliver
    assert ledger.should_deliver(exec_id) == kind.delivered
    decision = ledger.execution(exec_id, 2.0)
    assert decision.verdict.kind is kind
    assert decision.verdict.replaces == replaces
    assert decision.deliver == kind.delivered


def test_counters() -> None:
    ledger: FillLedger[str] = FillLedger(Journal(None))
    ledger.execution("a.01", 1.0)
    ledger.execution("a.01", 1.0)
    ledger.execution("a.02", 2.0, recovered=True)
    ledger.execution("b.01", 3.0, recovered=True)
    c = ledger.counters
    assert (c.delivered, c.recovered, c.corrections, c.duplicates) == (3, 2, 1, 1)


def test_commission_after_execution_is_delivered_once() -> None:
    ledger: FillLedger[str] = FillLedger(Journal(None))
    ledger.execution("a.01", 1.0)
    assert ledger.commission("a.01", "r1") is CommissionKind.DELIVER
    assert ledger.commission("a.01", "r1 again") is CommissionKind.DUPLICATE
    assert ledger.counters.commissions_delivered == 1


def test_commission_before_execution_is_held_then_released() -> None:
    ledger: FillLedger[str] = FillLedger(Journal(None))
    assert ledger.commission("a.01", "report") is CommissionKind.HOLD
    assert ledger.commission("a.01", "report") is CommissionKind.DUPLICATE
    assert ledger.held_commissions() == ["a.01"]
    decision = ledger.execution("a.01", 1.0)
    assert decision.held_commission == "report"
    assert ledger.held_commissions() == []
    assert ledger.commission("a.01", "report") is CommissionKind.DUPLICATE
    assert ledger.counters.commissions_delivered == 1


def test_held_commissions_are_bounded() -> None:
    ledger: FillLedger[int] = FillLedger(Journal(None), max_held_commissions=3)
    for n in range(5):
        ledger.commission(f"x{n}.01", n)
    assert ledger.held_commissions() == ["x2.01", "x3.01", "x4.01"]
    assert ledger.counters.commissions_evicted == 2
    assert ledger.counters.commissions_held == 3
    assert ledger.execution("x0.01", 1.0).held_commission is None  # evicted, not released


def test_max_held_commissions_is_validated() -> None:
    with pytest.raises(ConfigError, match="max_held_commissions"):
        FillLedger(Journal(None), max_held_commissions=0)


def test_restart_with_journal_never_redelivers_an_acknowledged_fill(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        ledger: FillLedger[str] = FillLedger(journal)
        ledger.execution("a.01", 1.0)
        ledger.commission("a.01", "r")
        ledger.acknowledge("a.01")
    with Journal(path) as journal:
        ledger = FillLedger(journal)
        assert ledger.execution("a.01", 1.0).verdict.kind is FillKind.DUPLICATE
        assert ledger.commission("a.01", "r") is CommissionKind.DUPLICATE
        assert ledger.execution("a.02", 2.0).verdict.kind is FillKind.CORRECTION


def test_a_fill_whose_handlers_never_returned_is_redelivered_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        ledger: FillLedger[str] = FillLedger(journal)
        assert ledger.execution("a.01", 1.0).deliver
        assert not ledger.execution("a.01", 1.0).deliver  # exactly once within the process
        ledger.commission("a.01", "r")  # handed out with it, never acknowledged
    with Journal(path) as journal:
        ledger = FillLedger(journal)
        again = ledger.execution("a.01", 1.0)
        assert again.deliver
        assert again.redelivery
        assert ledger.counters.redelivered == 1
        assert ledger.commission("a.01", "r") is CommissionKind.DELIVER
        ledger.acknowledge("a.01")
    with Journal(path) as journal:
        assert FillLedger(journal).execution("a.01", 1.0).verdict.kind is FillKind.DUPLICATE


# ----------------------------------------------------------------- property: random interleavings

# An execution stream as TWS sends it: stems, each with versions 1..k (corrections in order).
stems = st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=8)


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    versions = draw(stems)
    executions = [f"{s:04x}.{v:02x}" for s, k in enumerate(versions) for v in range(1, k + 1)]
    # Events: each execution at least once, in per-stem version order; duplicates anywhere
    # after the first sight; "restart" events reopen the journal.
    events: list[tuple[str, str]] = []
    queues = [[e for e in executions if e.startswith(f"{s:04x}.")] for s in range(len(versions))]
    seen: list[str] = []
    while any(queues):
        action = draw(st.sampled_from(["next", "dup", "restart"]))
        if action == "next" or not seen:
            chosen = draw(st.sampled_from([q for q in queues if q])).pop(0)
            seen.append(chosen)
            events.append(("exec", chosen))
        elif action == "dup":
            events.append(("exec", draw(st.sampled_from(seen))))
        else:
            events.append(("restart", ""))
    return executions, events


@settings(max_examples=60, deadline=None)
@given(case=interleavings())
def test_each_execution_delivered_exactly_once_across_restarts(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[list[str], list[tuple[str, str]]]
) -> None:
    executions, events = case
    path = tmp_path_factory.mktemp("ledger") / "j.sqlite"
    journal = Journal(path)
    ledger: FillLedger[str] = FillLedger(journal)
    delivered: list[str] = []
    corrections = 0
    try:
        for kind, exec_id in events:
            if kind == "restart":
                journal.close()
                journal = Journal(path)
                ledger = FillLedger(journal)
                continue
            decision = ledger.execution(exec_id, 1.0)
            if decision.deliver:
                ledger.acknowledge(exec_id)  # its handlers returned
                delivered.append(exec_id)
                corrections += decision.verdict.kind is FillKind.CORRECTION
    finally:
        journal.close()
    assert sorted(delivered) == sorted(executions)
    assert corrections == sum(1 for e in executions if not e.endswith(".01"))
