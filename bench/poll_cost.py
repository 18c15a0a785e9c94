"""Cost of one deposit poll against the number of open invoices and of new deposits.

The real payments core and the real ccxt client poll the fake OKX over loopback HTTP, on SQLite
(and PostgreSQL when TEST_DATABASE_URL is set). For each size it prints the OKX requests of the
poll (deposit-history pages), its wall time and the CPU time of this process (the fake OKX runs
in a thread of the same process, so its CPU is included), with ccxt's throttle off: throttle
waits are OKX's rate limit, not our cost, and are reported separately (about 0.18 s a request).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from payments.clock import MINUTE_MS
from payments.storage import Database
from tests.shop import Shop, bulk_invoices, open_shop

HISTORY = "/api/v5/asset/deposit-history"
THROTTLE_S_PER_REQUEST = 1 / 5.5  # ccxt's pacing of the asset endpoints


async def one(url: str, invoices: int, deposits: int) -> dict[str, float]:
    db = Database.from_url(url)
    await db.migrate()
    try:
        async with open_shop(db) as shop:
            made = await bulk_invoices(shop, invoices)
            await shop.poll()
            _add_deposits(shop, made, deposits)
            shop.okx.reset_counts()
            cpu, wall = time.process_time(), time.perf_counter()
            report = await shop.poll()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            return {
                "requests": shop.okx.count(HISTORY),
                "wall_s": wall,
                "cpu_s": cpu,
                "paid": len(report.processed.paid),
                "throttle_s": shop.okx.count() * THROTTLE_S_PER_REQUEST,
            }
    finally:
        await db.close()


def _add_deposits(shop: Shop, made: list[tuple[str, int]], count: int) -> None:
    """Half the deposits pay an invoice exactly, half are amounts nobody ordered."""
    start = shop.clock.now_ms()
    paying = made[: count // 2]
    for n, (_, units) in enumerate(paying):
        amount = Decimal(units).scaleb(-8).quantize(Decimal("0.0001"))
        shop.okx.add_deposit("USDT", "USDT-TRC20", amount, to="TBulkAddress", ts=start + n)
    for n in range(count - len(paying)):
        shop.okx.add_deposit("USDT", "USDT-TRC20", f"{500 + n}.5", ts=start + len(paying) + n)
    shop.clock.advance(MINUTE_MS)


async def run(sizes: list[int], deposit_counts: list[int]) -> None:
    print(
        f"{'db':<10} {'invoices':>9} {'deposits':>9} {'requests':>9} {'wall s':>8} "
        f"{'cpu s':>7} {'paid':>6} {'throttle s':>10}"
    )
    backend = "sqlite"
    for invoices in sizes:
        for deposits in deposit_counts:
            with tempfile.TemporaryDirectory() as tmp:
                r = await one(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", invoices, deposits)
            print(
                f"{backend:<10} {invoices:>9,} {deposits:>9,} {int(r['requests']):>9} "
                f"{r['wall_s']:>8.3f} {r['cpu_s']:>7.3f} {int(r['paid']):>6} "
                f"{r['throttle_s']:>10.1f}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", default="10,1000,10000,100000")
    parser.add_argument("--deposits", default="10,1000")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.invoices.split(",")]
    deposits = [int(x) for x in args.deposits.split(",")]
    asyncio.run(run(sizes, deposits))


if __name__ == "__main__":
    main()
