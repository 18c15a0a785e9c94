"""Invoice creation under contention: allocations per second with 1, 10 and 100 customers at once.

Every customer makes the same choice (plan "pro", USDT on TRC20), so every creation competes for
the same unique amounts on the same deposit address: the worst case for the allocator. The call
is the one the bot's checkout makes (``payments.invoices.create``), on one ``Payments`` as in the
bot process, against the fake OKX over loopback, on SQLite and on PostgreSQL
(TEST_DATABASE_URL; skipped with a note when it is unset). Each level starts from an empty
database. Afterwards no two open invoices may share an (address, amount) pair, and the only
errors allowed are the designed refusals (no free amount left).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from payments.errors import InvoiceError
from payments.storage import Database
from payments.storage.schema import invoices
from tests.shop import Shop, open_shop

LEVELS = (1, 10, 100)


@dataclass
class Level:
    backend: str
    customers: int
    created: int = 0
    seconds: float = 0.0
    refusals: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0

    @property
    def per_second(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


async def _duplicates(db: Database) -> int:
    """(address, amount) pairs held by more than one invoice."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(invoices.c.address, invoices.c.amount_units)
            .group_by(invoices.c.address, invoices.c.amount_units)
            .having(func.count() > 1)
        )
        return len(rows.all())


async def _customer_loop(shop: Shop, worker: int, stride: int, each: int, level: Level) -> None:
    for n in range(each):
        customer = 1_000_000 + worker + n * stride
        try:
            await shop.buy(customer)
        except InvoiceError as exc:  # designed refusals: the customer is told why
            level.refusals[type(exc).__name__] += 1
        except Exception as exc:  # anything else is a bug
            level.errors[type(exc).__name__] += 1
        else:
            level.created += 1


async def run_level(url: str, backend: str, customers: int, total: int) -> Level:
    """``total`` creations by ``customers`` concurrent customers (each a new customer id)."""
    level = Level(backend, customers)
    db = Database.from_url(url)
    await db.migrate()
    try:
        async with open_shop(db) as shop:
            each = max(1, total // customers)
            start = time.perf_counter()
            await asyncio.gather(
                *(_customer_loop(shop, w, customers, each, level) for w in range(customers))
            )
            level.seconds = time.perf_counter() - start
        level.duplicates = await _duplicates(db)
    finally:
        await db.close()
    return level


@asynccontextmanager
async def _database(backend: str) -> AsyncIterator[str]:
    """A fresh database URL: a temporary SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'contention.sqlite3'}"
        return
    import asyncpg

    server = os.environ["TEST_DATABASE_URL"]
    admin_url = make_url(server).set(drivername="postgresql").render_as_string(False)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    try:
        yield str(make_url(server).set(database=name).render_as_string(False))
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


async def run(total: int, levels: tuple[int, ...] = LEVELS) -> tuple[list[Level], list[str]]:
    """Every level on every backend available; notes for the ones skipped."""
    backends = ["sqlite"]
    notes = []
    if os.environ.get("TEST_DATABASE_URL"):
        backends.append("postgresql")
    else:
        notes.append("PostgreSQL skipped: TEST_DATABASE_URL is not set.")
    results = []
    for backend in backends:
        for customers in levels:
            async with _database(backend) as url:
                results.append(await run_level(url, backend, customers, total))
    return results, notes


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items())) or "0"


def section(quick: bool) -> str:
    """The markdown section: allocations per second per backend and concurrency."""
    total = 20 if quick else 1000
    results, notes = asyncio.run(run(total))
    lines = [
        "## Invoice creation under contention",
        "",
        f"{total:,} invoices per row, every customer choosing the same plan, coin and network "
        "(one address, one amount space); `x 1 customer` compares with the same backend's "
        "single-customer rate in this run.",
        "",
        "| db | customers | invoices | seconds | allocations/s | x 1 customer "
        "| duplicate pairs | refusals | other errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    single = {r.backend: r.per_second for r in results if r.customers == 1}
    for r in results:
        ratio = r.per_second / single[r.backend] if single.get(r.backend) else 0.0
        lines.append(
            f"| {r.backend} | {r.customers} | {r.created:,} | {r.seconds:.2f} | "
            f"{r.per_second:.0f} | {ratio:.2f} | {r.duplicates} | {_counts(r.refusals)} | "
            f"{_counts(r.errors)} |"
        )
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 invoices per level")
    args = parser.parse_args(argv)
    print(section(args.quick))


if __name__ == "__main__":
    main()
