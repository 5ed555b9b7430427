"""OrderIdAllocator and OrderRefs."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from v6.errors import ConfigError, NotConnected, OrderIdReused
from v6.orders.ids import OrderIdAllocator, OrderRefs


def test_follows_next_valid_id_when_it_is_ahead() -> None:
    ids = OrderIdAllocator()
    ids.observe_next_valid_id(100)
    assert [ids.allocate(), ids.allocate()] == [100, 101]
    ids.observe_next_valid_id(500)
    assert ids.allocate() == 500


def test_never_reuses_an_id_when_next_valid_id_goes_backwards() -> None:
    ids = OrderIdAllocator()
    ids.observe_next_valid_id(100)
    sent = [ids.allocate() for _ in range(5)]
    ids.observe_next_valid_id(90)  # a restarted gateway rolled back
    assert ids.rollbacks == 1
    assert ids.allocate() == max(sent) + 1


def test_seeded_from_the_journal_across_a_restart() -> None:
    ids = OrderIdAllocator(highest_sent=41)
    ids.observe_next_valid_id(1)
    assert ids.next_id() == 42
    assert ids.allocate() == 42
    assert ids.highest_sent == 42


def test_no_id_before_the_gateway_spoke() -> None:
    with pytest.raises(NotConnected):
        OrderIdAllocator(highest_sent=5).allocate()


def test_note_sent_refuses_a_reused_id() -> None:
    ids = OrderIdAllocator()
    ids.note_sent(10)
    with pytest.raises(OrderIdReused, match="10"):
        ids.note_sent(10)
    with pytest.raises(OrderIdReused):
        ids.note_sent(3)
    ids.note_sent(11)
    assert ids.highest_sent == 11


def test_highest_sent_is_validated() -> None:
    with pytest.raises(ConfigError, match="highest_sent"):
        OrderIdAllocator(highest_sent=-1)


@dataclass
class _Order:
    orderRef: str = ""


def test_refs_are_stamped_only_on_orders_without_one() -> None:
    refs = OrderRefs(random.Random(7))
    first, second, mine = _Order(), _Order(), _Order("user-ref")
    assert refs.stamp(first) == f"v6-{refs.session}-1"
    assert refs.stamp(second) == f"v6-{refs.session}-2"
    assert refs.stamp(mine) == "user-ref"
    assert refs.stamp(first) == f"v6-{refs.session}-1"  # already stamped: kept
    assert refs.is_ours(first.orderRef)
    assert not refs.is_ours("user-ref")
    assert len(refs.session) == 6
    assert len(first.orderRef) <= 16


def test_sessions_differ_between_processes() -> None:
    rng = random.Random(1)
    sessions = {OrderRefs(rng).session for _ in range(200)}
    assert len(sessions) == 200
    assert not OrderRefs(random.Random(2), session="abc").is_ours("v6-abcd-1")
