"""pytest plugin (entry point ``v6_fake_gateway``): the ``fake_gateway`` fixture.

Loaded by every pytest run in an environment where v6 is installed, so it imports nothing heavy at
module level and degrades to a skipping fixture when pytest-asyncio is missing.

Usage::

    async def test_connects(fake_gateway):
        ib = IB()
        await ib.connectAsync("127.0.0.1", fake_gateway.port, clientId=1)

The gateway is started on a free port of 127.0.0.1 with default settings and stopped afterwards.
Reconfigure it in the test through its public methods (``stall()``, ``set_latency()``, ...).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from v6.testing.gateway import FakeGateway

try:
    import pytest_asyncio

    _HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    _HAVE_PYTEST_ASYNCIO = False


if _HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def fake_gateway() -> AsyncIterator[FakeGateway]:
        """A started :class:`~v6.testing.FakeGateway` on a free port of 127.0.0.1."""
        from v6.testing.gateway import FakeGateway

        gateway = FakeGateway(port=0)
        await gateway.start()
        try:
            yield gateway
        finally:
            await gateway.stop()

else:  # pragma: no cover

    @pytest.fixture
    def fake_gateway() -> Any:
        """Needs pytest-asyncio; skips without it."""
        pytest.skip("the fake_gateway fixture needs pytest-asyncio")
