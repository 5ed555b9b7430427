"""The fault demo (``v6-ib demo``): every fault is injected, detected and recovered, measured."""

from __future__ import annotations

import re

import pytest

from v6.cli import main
from v6.commands.demo import format_table
from v6.testing.demo import DEMO_CLIENT_IDS, DemoTimings, FaultResult, run_demo

FAULTS = [
    "stall (silent gateway)",
    "drop (FIN)",
    "gateway down",
    "1100 then 1101",
    "client id in use (326)",
    "fill during an outage",
    "farm flap (2103 -> 2104)",
    "silent stream",
]


async def test_demo_recovers_from_every_fault() -> None:
    timings = DemoTimings().scaled(0.5)
    health_labels: list[str] = []
    started: list[int] = []
    report = await run_demo(
        timings,
        on_start=lambda manager, gateway: started.append(gateway.port),
        on_health=lambda label, health: health_labels.append(label),
    )
    assert [row.fault for row in report.rows] == FAULTS
    failed = [row for row in report.rows if not row.ok]
    assert not failed, format_table(report.rows)
    assert report.subscriptions_at_end == 1  # no leaked or missing stream
    assert report.ok
    assert started
    assert health_labels[0] == "after connecting"
    assert len(health_labels) == 9
    assert report.live_order_filled  # the market order before the faults, told once

    rows = {row.fault: row for row in report.rows}
    stall = rows["stall (silent gateway)"]
    assert stall.detected_ms is not None
    assert stall.lasted_ms is not None
    # Found by a probe timing out (heartbeat_timeout after it was sent), not by a socket event;
    # half of it as the bound, as a probe sent just before the stall may be the one that fails.
    assert timings.heartbeat_timeout * 1000 / 2 <= stall.detected_ms <= stall.lasted_ms
    outage = rows["gateway down"]
    assert outage.lasted_ms is not None
    assert outage.lasted_ms >= timings.outage_hold * 1000
    assert outage.detected_ms is not None
    assert outage.detected_ms < outage.lasted_ms
    # Recovery can only follow its detection; ticks only follow recovery.
    for row in report.rows:
        assert row.recovered_ms is not None
        assert row.ticks_ms is not None
        assert 0 <= row.recovered_ms <= row.ticks_ms
    assert f"now client id {DEMO_CLIENT_IDS[1]}" in rows["client id in use (326)"].note
    fill = rows["fill during an outage"]
    assert fill.verified
    assert "on_fill calls [1]" in fill.note  # once, for the one execution made while down
    assert "Filled 10/10, same object: True" in fill.note
    assert "no reconnect" in rows["farm flap (2103 -> 2104)"].note
    silent = rows["silent stream"]
    assert silent.detected_ms is not None  # found by staleness: stale_after after its last tick
    assert silent.detected_ms <= timings.stale_after * 1000 * 1.5
    assert report.seconds < 60


def test_table_reports_what_did_not_happen() -> None:
    rows = [
        FaultResult("drop (FIN)", 0.0, 1.2, 35.0, 36.4),
        FaultResult("stall (silent gateway)", 1003.0, 496.0, None, None, "gave up"),
    ]
    lines = format_table(rows).splitlines()
    cells = {line.split("  ")[0]: re.split(r"\s{2,}", line.strip()) for line in lines[2:4]}
    assert cells["drop (FIN)"] == ["drop (FIN)", "0.0", "1.2", "35", "yes, 36 ms"]
    assert cells["stall (silent gateway)"] == [
        "stall (silent gateway)",
        "1003",
        "496",
        "-",
        "no",
        "gave up",
    ]
    assert [r.ok for r in rows] == [True, False]
    # A recovered step whose own check failed (e.g. a fill told twice) is not ok.
    assert not FaultResult("fill during an outage", 1.0, 1.0, 1.0, 1.0, verified=False).ok


def test_scaled_timings() -> None:
    base = DemoTimings()
    fast = base.scaled(0.5)
    assert fast.heartbeat_interval == base.heartbeat_interval * 0.5
    assert fast.tick_rate == base.tick_rate / 0.5
    assert fast.fault_timeout == base.fault_timeout  # safety margins are not scaled
    with pytest.raises(ValueError, match="factor"):
        base.scaled(0)


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    assert "--scale FACTOR" in capsys.readouterr().out
