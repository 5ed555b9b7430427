"""Fixtures for the restart-handling tests: a real FakeGateway on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from v6.testing import FakeGateway


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(port=0) as gw:
        yield gw
