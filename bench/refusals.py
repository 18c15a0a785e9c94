"""Refused invoice creations: what a burst of them costs everyone else.

Every unique amount of one price is held (a tiny offset cap, no wider range), then ``BURST``
customers ask for that price at once, each refused ("busy"), while one more customer buys
something else. Reported per backend: that customer's wait during the burst as a ratio to the
same purchase alone in this run, the statements and CPU per refused creation, and how many
capacity checks the burst started. The calls are the ones the bot and the JSON API make
(``payments.invoices.create``, and ``check_capacity_soon`` on "busy"), on one ``Payments`` as in
the bot process, against the fake OKX over loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from bench.contention import _database
from payments.config import PaymentSettings
from payments.errors import NoFreeAmount
from payments.storage import Database
from tests.shop import Shop, open_shop

BURST = 1_000
TWO_AMOUNTS = Decimal("0.001")  # 0.001 % of $29: 29.0001 and 29.0002


@dataclass
class Burst:
    backend: str
    refused: int
    alone_s: float  # the other customer's purchase with nothing else going on (median)
    during_s: float  # the same purchase while the burst runs
    statements: int  # statements the burst ran (all of them)
    cpu_s: float  # CPU of this process during the burst
    capacity_checks: int

    @property
    def ratio(self) -> float:
        return self.during_s / self.alone_s if self.alone_s else 0.0


class _Statements:
    def __init__(self, db: Database) -> None:
        self.on = False
        self.count = 0
        event.listen(db.engine.sync_engine, "after_cursor_execute", self._after)

    def _after(self, *args: Any) -> None:
        if self.on:
            self.count += 1


async def _other_purchase(shop: Shop, customer: int) -> float:
    start = time.perf_counter()
    invoice = await shop.buy(customer, "enterprise")
    took = time.perf_counter() - start
    await shop.payments.invoices.cancel(invoice.id, customer_id=customer)
    return took


async def _refused(shop: Shop, customer: int) -> bool:
    try:
        await shop.buy(customer)
    except NoFreeAmount:
        shop.payments.check_capacity_soon()  # as the bot and the API do on "busy"
        return True
    return False


async def run_backend(url: str, backend: str, burst: int) -> Burst:
    settings = PaymentSettings(
        offset_cap_percent=TWO_AMOUNTS,
        offset_cap_max_percent=TWO_AMOUNTS,
        unpaid_amount_budget_percent=Decimal(100),
    )
    db = Database.from_url(url)
    await db.migrate()
    statements = _Statements(db)
    try:
        async with open_shop(db, settings) as shop:
            await shop.buy(1)
            await shop.buy(2)  # both amounts of the price are held now
            alone = statistics.median([await _other_purchase(shop, 100 + n) for n in range(5)])
            statements.on = True
            cpu = time.process_time()
            tasks = [asyncio.ensure_future(_refused(shop, 10_000 + n)) for n in range(burst)]
            checks: set[asyncio.Task[Any]] = set()
            watcher = asyncio.ensure_future(_watch_checks(checks))
            await asyncio.sleep(0)  # the burst is under way
            during = await _other_purchase(shop, 200)
            refused = sum(await asyncio.gather(*tasks))
            cpu = time.process_time() - cpu
            statements.on = False
            watcher.cancel()
            await asyncio.gather(*checks, return_exceptions=True)
    finally:
        await db.close()
    return Burst(backend, refused, alone, during, statements.count, cpu, len(checks))


async def _watch_checks(seen: set[asyncio.Task[Any]]) -> None:
    """Every capacity check task alive while the burst runs."""
    while True:
        seen.update(t for t in asyncio.all_tasks() if t.get_name() == "capacity-check")
        await asyncio.sleep(0)


async def run(burst: int) -> tuple[list[Burst], list[str]]:
    backends = ["sqlite"]
    notes = []
    if os.environ.get("TEST_DATABASE_URL"):
        backends.append("postgresql")
    else:
        notes.append("PostgreSQL skipped: TEST_DATABASE_URL is not set.")
    results = []
    for backend in backends:
        async with _database(backend) as url:
            results.append(await run_backend(url, backend, burst))
    return results, notes


def section(quick: bool) -> str:
    burst = 50 if quick else BURST
    results, notes = asyncio.run(run(burst))
    lines = [
        "## Refused creations",
        "",
        f"{burst:,} customers at once ask for a price whose every unique amount is held; one "
        "more buys another plan meanwhile. `x alone` is that purchase's wait during the burst "
        "over the same purchase with nothing else going on, in this run.",
        "",
        "| db | refused | purchase alone (s) | during the burst (s) | x alone "
        "| statements / refusal | CPU ms / refusal | capacity checks started |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        per = max(r.refused, 1)
        lines.append(
            f"| {r.backend} | {r.refused:,} | {r.alone_s:.3f} | {r.during_s:.3f} | "
            f"{r.ratio:.1f} | {r.statements / per:.1f} | {1000 * r.cpu_s / per:.2f} | "
            f"{r.capacity_checks} |"
        )
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 refusals")
    args = parser.parse_args(argv)
    print(section(args.quick))


if __name__ == "__main__":
    main()
