"""Cost of one deposit poll against the number of open invoices and of new deposits.

The real payments core and the real ccxt client poll the fake OKX over loopback HTTP, on SQLite
(and PostgreSQL when TEST_DATABASE_URL is set). For each size it reports the OKX requests of the
poll (deposit-history pages), its wall time, the CPU time of this process (the fake OKX runs in
a thread of the same process, so its CPU is included, and so is aiosqlite's thread), the rows the
poll's statements returned (SQLAlchemy cursor events), and the invoices it settled. ccxt's
throttle is off: throttle waits are OKX's rate limit, not our cost, and are reported separately
(ccxt paces the asset endpoints at about 0.18 s a request).

Half of the new deposits pay an open invoice exactly and half are amounts nobody ordered, except
in the rows marked "10 pay", where only 10 of them settle an invoice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from payments.clock import MINUTE_MS
from payments.storage import Database
from tests.shop import BULK_ADDRESS as ADDRESS
from tests.shop import Shop, insert_open_invoices, open_shop

HISTORY = "/api/v5/asset/deposit-history"
THROTTLE_S_PER_REQUEST = 1 / 5.5  # ccxt's pacing of the asset endpoints
SIZES = (10, 1_000, 10_000, 100_000)
DEPOSITS = (10, 1_000)


@dataclass
class PollCost:
    backend: str
    invoices: int
    deposits: int
    paying: int
    requests: int  # deposit-history pages
    all_requests: int
    wall_s: float
    cpu_s: float
    rows_read: int
    statements: int
    paid: int

    @property
    def throttle_s(self) -> float:
        return self.all_requests * THROTTLE_S_PER_REQUEST


class _RowCounter:
    """Rows returned by the statements run while ``on`` (the async drivers buffer them)."""

    def __init__(self, db: Database) -> None:
        self.on = False
        self.rows = 0
        self.statements = 0
        event.listen(db.engine.sync_engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.on:
            self.statements += 1
            buffered = getattr(cursor, "_rows", None)
            self.rows += len(buffered) if buffered is not None else 0


async def one(url: str, backend: str, invoices: int, deposits: int, paying: int) -> PollCost:
    db = Database.from_url(url)
    await db.migrate()
    counter = _RowCounter(db)
    try:
        async with open_shop(db) as shop:
            made = await insert_open_invoices(db, invoices, now_ms=shop.clock.now_ms())
            await shop.poll()
            _add_deposits(shop, made, deposits, paying)
            shop.okx.reset_counts()
            counter.on = True
            cpu, wall = time.process_time(), time.perf_counter()
            report = await shop.poll()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            counter.on = False
            return PollCost(
                backend=backend,
                invoices=invoices,
                deposits=deposits,
                paying=paying,
                requests=shop.okx.count(HISTORY),
                all_requests=shop.okx.count(),
                wall_s=wall,
                cpu_s=cpu,
                rows_read=counter.rows,
                statements=counter.statements,
                paid=len(report.processed.paid),
            )
    finally:
        await db.close()


def _add_deposits(shop: Shop, made: list[tuple[str, int]], count: int, paying: int) -> None:
    """``paying`` deposits pay an invoice exactly; the rest are amounts nobody ordered."""
    start = shop.clock.now_ms()
    payers = made[: min(paying, count)]
    for n, (_, units) in enumerate(payers):
        amount = Decimal(units).scaleb(-8).quantize(Decimal("0.0001"))
        shop.okx.add_deposit("USDT", "USDT-TRC20", amount, to=ADDRESS, ts=start + n)
    for n in range(count - len(payers)):
        shop.okx.add_deposit("USDT", "USDT-TRC20", f"{500 + n}.5", ts=start + len(payers) + n)
    shop.clock.advance(MINUTE_MS)


def cases(
    sizes: tuple[int, ...], deposit_counts: tuple[int, ...], extra: bool
) -> list[tuple[int, int, int]]:
    """(invoices, deposits, paying): every size x deposit count, half paying (at most every
    invoice); ``extra`` adds 10,000 invoices + 1,000 deposits of which only 10 pay."""
    out = [(n, d, min(d // 2, n)) for n in sizes for d in deposit_counts]
    if extra:
        out.append((10_000, 1_000, 10))
    return out


async def run(
    sizes: tuple[int, ...] = SIZES, deposit_counts: tuple[int, ...] = DEPOSITS, extra: bool = True
) -> tuple[list[PollCost], list[str]]:
    from bench.contention import _database

    backends = ["sqlite"]
    notes = []
    if os.environ.get("TEST_DATABASE_URL"):
        backends.append("postgresql")
    else:
        notes.append("PostgreSQL skipped: TEST_DATABASE_URL is not set.")
    results = []
    for backend in backends:
        for invoices, deposits, paying in cases(sizes, deposit_counts, extra):
            async with _database(backend) as url:
                result = await one(url, backend, invoices, deposits, paying)
            results.append(result)
            print(_row(result), file=sys.stderr, flush=True)  # progress
    return results, notes


HEADER = (
    "| db | open invoices | new deposits | paying | history requests | wall s | CPU s "
    "| rows read | statements | paid | throttle s (apart) |"
)


def _row(r: PollCost) -> str:
    return (
        f"| {r.backend} | {r.invoices:,} | {r.deposits:,} | {r.paying:,} | {r.requests} | "
        f"{r.wall_s:.3f} | {r.cpu_s:.3f} | {r.rows_read:,} | {r.statements:,} | "
        f"{r.paid:,} | {r.throttle_s:.1f} |"
    )


def section(quick: bool) -> str:
    """The markdown section: one row per poll measured."""
    if quick:
        results, notes = asyncio.run(run((3, 30), (4,), extra=False))
    else:
        results, notes = asyncio.run(run())
    lines = [
        "## Poll cost vs. scale",
        "",
        "One deposit poll (real ccxt against the fake OKX, throttle off; CPU of the whole "
        "process, fake OKX and database threads included). Rows read: rows returned by the "
        "poll's statements.",
        "",
        HEADER,
        "| " + " | ".join(["---"] * 11) + " |",
        *(_row(r) for r in results),
    ]
    goal = [r for r in results if (r.invoices, r.deposits) == (10_000, 1_000)]
    if goal:
        lines += ["", "Goal (10,000 open invoices + 1,000 new deposits, under 0.5 s CPU):"]
        for r in goal:
            verdict = "met" if r.cpu_s < 0.5 else "missed"
            lines.append(f"- {r.backend}, {r.paying} paying: {r.cpu_s:.2f} s CPU, {verdict}")
        for backend in sorted({r.backend for r in goal}):
            few = [r for r in goal if r.backend == backend and r.paying == 10]
            many = [r for r in goal if r.backend == backend and r.paying > 10]
            if few and many and many[0].paid > few[0].paid:
                each = (many[0].cpu_s - few[0].cpu_s) / (many[0].paid - few[0].paid)
                lines.append(f"- {backend}: each invoice settled adds {each * 1000:.1f} ms CPU")
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 and 30 invoices, 4 deposits")
    args = parser.parse_args(argv)
    print(section(args.quick))


if __name__ == "__main__":
    main()
