"""An application process that dies inside ``on_fill`` (``os._exit``: no cleanup, no stop()), for
the crash tests: ``python -m tests.orders.crashing_app PORT JOURNAL CLIENT_ID``.

It connects with the journal, places one working BUY 100 limit order, prints ``ready <order id>``
and waits; the test fills the order at the gateway, and the process exits with status 3 from
inside its fill handler, as a process killed there would."""

from __future__ import annotations

import asyncio
import os
import sys

from ib_async import Fill, LimitOrder, Stock, Trade

from v6.manager import IBConnectionManager

AAPL_ID = 265598
CRASHED = 3


async def main(port: int, journal: str, client_id: int) -> None:
    manager = IBConnectionManager(port=port, client_id=client_id, journal=journal,
                                  retry_delay=0.05, jitter=0.0)  # fmt: skip

    def crash(trade: Trade, fill: Fill) -> None:
        os._exit(CRASHED)  # dies inside the handler: the fill was handed out, never returned

    manager.on_fill(crash)
    await manager.connect()
    contract = Stock("AAPL", "SMART", "USD", conId=AAPL_ID)
    submitted = asyncio.Event()
    trade = manager.ib.placeOrder(contract, LimitOrder("BUY", 100, 1.00))
    trade.statusEvent += lambda t: t.orderStatus.status == "Submitted" and submitted.set()
    await submitted.wait()
    print(f"ready {trade.order.orderId}", flush=True)
    await asyncio.sleep(30)  # the test fills the order long before this


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
