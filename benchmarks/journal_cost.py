"""Journal cost: wall time per delivered fill through ``FillLedger`` on an on-disk ``Journal``.

One fill = classify the execution id (in-memory reads), mark it handed out (one ``BEGIN IMMEDIATE``
... ``COMMIT`` transaction, WAL mode, ``synchronous=NORMAL``) and, once its ``on_fill`` handlers
returned, acknowledge it (one more transaction); then its commission report (one transaction).
Measured per call with ``time.perf_counter`` on a journal in a temporary directory that already
holds ``PRELOAD`` fills (a busy trading day), so lookups are not on an empty table. The target
(issues 8 and 19): <= 200 us median per delivered fill, acknowledgement included.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks import common
from benchmarks.common import Result, row
from v6.orders.journal import Journal
from v6.orders.ledger import FillLedger

NAME = "journal_cost"
TARGET_US = 200.0
PRELOAD = 10_000


def _measure(path: Path, fills: int) -> dict[str, list[float]]:
    with Journal(path) as journal:
        for n in range(PRELOAD):
            journal.record_delivery(f"{n:08x}.6568f4a4.01.01", f"{n:08x}.6568f4a4.01", 1, n)
        ledger: FillLedger[str] = FillLedger(journal)
        fill_s: list[float] = []
        commission_s: list[float] = []
        duplicate_s: list[float] = []
        for n in range(fills):
            exec_id = f"{PRELOAD + n:08x}.6568f4a4.01.01"
            started = time.perf_counter()
            decision = ledger.execution(exec_id, float(n))  # handed out...
            ledger.acknowledge(exec_id)  # ...and acknowledged after its handlers returned
            fill_s.append(time.perf_counter() - started)
            assert decision.deliver
            started = time.perf_counter()
            ledger.commission(exec_id, "report")
            commission_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert not ledger.execution(exec_id, float(n)).deliver
            duplicate_s.append(time.perf_counter() - started)
    return {"fill": fill_s, "commission": commission_s, "duplicate": duplicate_s}


def run(quick: bool) -> Result:
    """Journal cost per delivered fill (sqlite WAL, synchronous=NORMAL)."""
    fills = 300 if quick else 3000
    with tempfile.TemporaryDirectory() as directory:
        samples = _measure(Path(directory) / "journal.sqlite", fills)
    fill_median = common.median(samples["fill"]) * 1e6
    return {
        "name": NAME,
        "title": "11. Journal cost per delivered fill",
        "command": "python -m benchmarks.journal_cost",
        "params": {"fills": fills, "preloaded fills": PRELOAD},
        "rows": [
            row(
                "deliver a fill (classify + hand-out + acknowledge: 2 transactions)",
                samples["fill"],
                unit="us",
                scale=1e6,
                target=f"<= {TARGET_US:.0f} us median",
                met=fill_median <= TARGET_US,
            ),
            row("deliver its commission report", samples["commission"], unit="us", scale=1e6),
            row("reject a duplicate (reads only)", samples["duplicate"], unit="us", scale=1e6),
        ],
        "notes": [
            "A temporary directory on this machine's disk; WAL, synchronous=NORMAL, so a COMMIT "
            "appends to the WAL without fsync (a process crash loses nothing; a power loss may "
            "lose the last transactions).",
            f"The journal holds {PRELOAD:,} delivered fills before timing starts.",
        ],
    }


if __name__ == "__main__":
    common.main(run)
