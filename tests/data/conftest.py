"""A started manager without staleness on each test module's own ``gateway`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers import T, fast_settings
from v6.manager import IBConnectionManager
from v6.testing import FakeGateway


@pytest.fixture
async def manager(gateway: FakeGateway) -> AsyncIterator[IBConnectionManager]:
    made = IBConnectionManager(port=gateway.port, stale_after=None, **fast_settings())
    await made.start()
    await made.wait_connected(timeout=40 * T)
    yield made
    await made.stop()
