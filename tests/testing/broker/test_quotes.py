"""Quotes: a seeded random walk per contract, always on the tick grid with bid < ask."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v6.errors import ConfigError
from v6.testing.broker import QuoteBook

AAPL_CON_ID = 265598


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), con_ids=st.lists(st.integers(1, 10**6), min_size=1, max_size=4),
       steps=st.integers(0, 300))  # fmt: skip
def test_bid_is_always_below_ask_and_on_tick(seed: int, con_ids: list[int], steps: int) -> None:
    book = QuoteBook(seed)
    for _ in range(steps):
        for con_id in con_ids:
            quote = book.quote(con_id)
            assert 0 < quote.bid < quote.ask
            assert book.to_ticks(quote.bid) is not None
            assert book.to_ticks(quote.ask) is not None
        book.step()


def test_quotes_are_deterministic_per_seed_and_contract() -> None:
    one, other = QuoteBook(seed=3), QuoteBook(seed=3)
    other.quote(999)  # another contract first: must not change AAPL's walk
    walk_one, walk_other = [], []
    for _ in range(50):
        walk_one.append(one.quote(AAPL_CON_ID))
        walk_other.append(other.quote(AAPL_CON_ID))
        one.step()
        other.step()
    assert walk_one == walk_other
    assert QuoteBook(seed=4).quote(AAPL_CON_ID) != walk_one[0]


@pytest.mark.parametrize(("bid", "ask"), [(10.0, 10.0), (10.02, 10.01), (0.0, 0.01), (10.005, 11)])
def test_set_quote_validates(bid: float, ask: float) -> None:
    with pytest.raises(ConfigError, match="quote"):
        QuoteBook().set_quote(1, bid, ask)
