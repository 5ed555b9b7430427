"""Fixtures of the order tests (helpers are in tests/orders/trading.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.orders.trading import AAPL_ID
from v6.testing import FakeGateway


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    """A trading FakeGateway with a frozen market: orders work until the test fills them."""
    async with FakeGateway(port=0, market_interval=None) as gw:
        gw.set_quote(AAPL_ID, 100.00, 100.02)
        yield gw
