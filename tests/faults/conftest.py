"""The fault matrix's fixture and pytest hooks (the harness itself is tests/faults/harness.py).

``V6_WRITE_FAULTS=1`` (set by ``make faults``) writes FAULTS.md at the repository root from the
observations when the whole matrix ran; ordinary test runs leave the tree alone.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Generator

import pytest

from tests.faults.harness import (
    OBSERVATIONS,
    ROOT,
    RUNS,
    SECTIONS,
    Harness,
    Observation,
    registered,
    render_faults,
)
from v6.connection import ConnectionState
from v6.testing import FakeGateway

S = ConnectionState


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    fault = request.node.get_closest_marker("fault")
    assert fault is not None, "mark the test with @pytest.mark.fault(name)"
    name = fault.args[0]
    assert registered(name), f"{name!r} is in no module's ROWS"
    run = request.node.callspec.params.get("run", 0)
    observation = Observation(fault=name, run=run)
    OBSERVATIONS.append(observation)
    options = request.node.get_closest_marker("gateway")
    async with FakeGateway(port=0, **(options.kwargs if options else {})) as gateway:
        h = Harness(gateway, observation)
        yield h
        if h.manager is not None and h.manager.state is not S.STOPPED:
            await h.manager.stop()  # the test failed before finish()
        for holder in h.holders:
            holder.disconnect()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(name): the fault-matrix row this test measures")
    config.addinivalue_line("markers", "gateway(**options): FakeGateway options for `harness`")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        rows = getattr(module, "ROWS", None)
        if rows is not None and item.get_closest_marker("fault") is not None:
            SECTIONS.setdefault(module.SECTION, {}).update(rows)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    h = getattr(item, "funcargs", {}).get("harness")
    if isinstance(h, Harness) and report.when in ("call", "teardown"):
        if report.when == "call":
            h.obs.passed = report.passed
        elif report.failed:
            h.obs.passed = False
        known = hasattr(report, "wasxfail")  # an expected failure: a known defect
        if (report.failed or known) and not h.obs.outcome:
            crash = getattr(report.longrepr, "reprcrash", None)
            text = crash.message if crash is not None else str(report.longrepr).strip()
            label = "FAILED (known defect, xfail)" if known else "FAILED"
            h.obs.outcome = f"{label}: " + (text.splitlines() or [""])[0][:160]
    return report


_STARTED = time.monotonic()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("V6_WRITE_FAULTS") != "1" or not OBSERVATIONS:
        return
    runs = Counter(o.fault for o in OBSERVATIONS)
    missing = [f for rows in SECTIONS.values() for f in rows if runs[f] < len(RUNS)]
    if missing:
        print(f"\nFAULTS.md not written: the matrix did not run fully ({missing})")
        return
    path = ROOT / "FAULTS.md"
    path.write_text(render_faults(OBSERVATIONS, time.monotonic() - _STARTED))
    print(f"\nwrote {path}")
