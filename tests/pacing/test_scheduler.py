"""The scheduler's lanes over the pure budget, on an injected clock (the timer is read, not
waited for: each test advances the clock and pumps)."""

from __future__ import annotations

from v6.connection.lanes import Lane
from v6.pacing.budget import Budget, Cost
from v6.pacing.scheduler import Scheduler
from v6.protocol.pacing import HistoricalQuery, PacingLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(limits: PacingLimits | None = None) -> tuple[Scheduler, Clock, list[str]]:
    clock = Clock()
    budget = Budget(limits or PacingLimits(messages_per_second=5), message_guard=0.0,
                    window_guard=0.0, urgent_reserve=1, bulk_reserve=0, burst=2)  # fmt: skip
    scheduler = Scheduler(budget, clock)
    return scheduler, clock, []


def offer(scheduler: Scheduler, sent: list[str], name: str, cost: Cost) -> None:
    scheduler.offer(cost, lambda: sent.append(name))


def hist(req_id: int, contract: str = "1") -> Cost:
    q = HistoricalQuery(contract, "SMART", "TRADES", "5 secs", "60 S", str(req_id), True, False)
    return Cost(Lane.BULK, req_id, historical=q)


async def test_sync_goes_at_once_until_the_rate_is_spent_then_at_its_slots() -> None:
    scheduler, clock, sent = make()  # 5/s - 1 urgent reserve = 4 for others
    for i in range(6):
        offer(scheduler, sent, f"s{i}", Cost(Lane.SYNC))
    assert sent == ["s0", "s1", "s2", "s3"]
    assert scheduler.queued()["sync"] == 2
    assert scheduler.next_slot() == clock.now + 1.0
    clock.now += 1.0
    scheduler.pump()
    assert sent == [f"s{i}" for i in range(6)]
    assert scheduler.stats.waited[Lane.SYNC] == 2


async def test_bulk_goes_in_half_a_window_then_one_per_spacing() -> None:
    scheduler, clock, sent = make()  # 4 per second for the other lanes: 2, then one per 0.25 s
    for i in range(4):
        offer(scheduler, sent, f"b{i}", Cost(Lane.BULK))
    assert sent == ["b0", "b1"]
    assert scheduler.next_slot() == clock.now + 0.25
    clock.now += 0.25
    scheduler.pump()
    assert sent == ["b0", "b1", "b2"]


async def test_an_order_overtakes_a_saturated_backfill() -> None:
    scheduler, clock, sent = make()
    for i in range(10):
        offer(scheduler, sent, f"b{i}", Cost(Lane.BULK))
    offer(scheduler, sent, "order", Cost(Lane.URGENT))
    assert sent[-1] == "order"  # the reserve: no wait at all
    offer(scheduler, sent, "sync", Cost(Lane.SYNC))  # behind nothing of its lane: at once
    offer(scheduler, sent, "sync 2", Cost(Lane.SYNC))  # the window (4 + 1 reserved) is full
    assert sent == ["b0", "b1", "order", "sync"]
    clock.now += 1.0
    scheduler.pump()
    assert sent[4] == "sync 2"  # the first freed slot goes to the earlier lane


async def test_a_request_held_by_its_contract_does_not_hold_the_next_one() -> None:
    scheduler, clock, sent = make(PacingLimits(same_contract=1, messages_per_second=None))
    offer(scheduler, sent, "a1", hist(1, "A"))
    offer(scheduler, sent, "a2", hist(2, "A"))  # A's window: held 2 s
    offer(scheduler, sent, "b1", hist(3, "B"))  # not held behind a2
    assert sent == ["a1", "b1"]
    clock.now += 2.0
    scheduler.pump()
    assert sent == ["a1", "b1", "a2"]


async def test_a_cancel_of_a_waiting_request_withdraws_both() -> None:
    scheduler, clock, sent = make(PacingLimits(same_contract=1, messages_per_second=None))
    offer(scheduler, sent, "a1", hist(1))
    offer(scheduler, sent, "a2", hist(2))
    offer(scheduler, sent, "cancel a2", Cost(Lane.URGENT, ends=2))
    clock.now += 5.0
    scheduler.pump()
    assert sent == ["a1"]
    assert scheduler.stats.withdrawn == 1


async def test_an_ended_request_frees_its_slot_at_once() -> None:
    scheduler, _, sent = make(PacingLimits(open_historical=1, same_contract=None,
                                           messages_per_second=None))  # fmt: skip
    offer(scheduler, sent, "a", hist(1))
    offer(scheduler, sent, "b", hist(2, "B"))
    assert sent == ["a"]
    assert scheduler.next_slot() is None  # nothing to wake for but the end of "a"
    scheduler.request_ended(1)
    assert sent == ["a", "b"]


async def test_a_closed_sockets_waiting_messages_are_dropped() -> None:
    scheduler, clock, sent = make()
    for i in range(6):
        offer(scheduler, sent, f"b{i}", Cost(Lane.BULK))
    scheduler.session_ended()
    assert scheduler.stats.dropped == 4
    assert scheduler.next_slot() is None
    clock.now += 1.0
    offer(scheduler, sent, "next session", Cost(Lane.STREAMS))
    assert sent == ["b0", "b1", "next session"]


async def test_the_short_way_spends_the_same_budget_as_go() -> None:
    scheduler, clock, sent = make()  # 4 per second for SYNC, 5 for URGENT
    assert [scheduler.go_plain(Lane.SYNC) for _ in range(5)] == [True] * 4 + [False]
    assert scheduler.go_plain(Lane.URGENT)  # the reserve
    assert not scheduler.go_plain(Lane.URGENT)
    assert scheduler.stats.sent[Lane.SYNC] == 4
    clock.now += 1.0
    offer(scheduler, sent, "b0", Cost(Lane.BULK))
    offer(scheduler, sent, "b1", Cost(Lane.BULK))
    offer(scheduler, sent, "b2", Cost(Lane.BULK))  # waits for its token
    assert not scheduler.go_plain(Lane.SYNC)  # something waits: the long way, in its turn
    clock.now += 1.0
    scheduler.pump()
    assert sent == ["b0", "b1", "b2"]
    scheduler.budget.pause(until=clock.now + 1.0)  # an error 100
    assert not scheduler.go_plain(Lane.SYNC)
    assert scheduler.go_plain(Lane.URGENT)
