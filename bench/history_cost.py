"""What a year of history costs the admin views (/stats, /webhooks) and the daily prune.

A shop's history is written straight into the database, day by day: paid invoices with their
deposits, three sent messages each, two merchant events each delivered to a webhook URL (one
attempt), a few unrelated deposits, and a week-long outage of a second URL within the last month
(its deliveries given up after 80 attempts each, so every history has more failed deliveries
than a count reads). Three histories per backend:

- **30 days** (the baseline): only the last month, what the admin views are about;
- **a year, unpruned**: 365 days, nothing deleted (RETENTION_DAYS=0);
- **a year, pruned**: the same year after the prune with RETENTION_DAYS=90.

For each, the median wall time of the data queries behind /stats (``shop_stats``) and
/webhooks (``overview`` of both URLs), as a ratio to the baseline measured in the same run; and,
for comparison, the full counts these views used to make (every message and delivery per
status). No timed assertion anywhere: the figures are ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bench.contention import _database
from payments.clock import DAY_MS, HOUR_MS
from payments.delivery.webhooks.monitor import overview
from payments.ops.reports import shop_stats
from payments.ops.retention import PruneReport, prune
from payments.storage import Database, schema

NOW = 1_800_000_000_000
LIVE = "https://merchant.example/hooks"
DEAD = "https://old-backend.example/hooks"
ATTEMPTS_DEAD = 80  # three days of retries with backoff
RETENTION_DAYS = 90
CUSTOMERS = 1_000
BATCH = 5_000


@dataclass(frozen=True)
class Size:
    paid_per_day: int
    unrelated_per_day: int
    outage_days: int
    year_days: int
    baseline_days: int
    repeats: int


FULL = Size(
    paid_per_day=100,
    unrelated_per_day=10,
    outage_days=7,
    year_days=365,
    baseline_days=30,
    repeats=25,
)
QUICK = Size(
    paid_per_day=3, unrelated_per_day=1, outage_days=2, year_days=120, baseline_days=30, repeats=2
)


VIEWS = ("stats", "webhooks", "full")  # /stats, /webhooks, the former full counts


@dataclass
class Measured:
    backend: str
    history: str
    rows: dict[str, int]  # table -> rows
    seconds: dict[str, float]  # view -> median wall time
    ratios: dict[str, float]  # view -> median of each round's time / the baseline's in it
    prune: PruneReport | None = None
    prune_s: float = 0.0

    def ratio(self, view: str) -> float:
        return self.ratios[view]


# --- filling ---------------------------------------------------------------------------------


def _invoice(invoice_id: str, customer: int, at: int) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "customer_id": customer,
        "plan_id": "pro" if customer % 3 else "basic",
        "days": 30,
        "price_usd": "29" if customer % 3 else "9",
        "currency": "USDT",
        "network": "TRC20",
        "chain": "USDT-TRC20",
        "address": "TXbenchaddress",
        "tag": None,
        "rate": "1",
        "scale": 8,
        "step": "0.0001",
        "base_units": 2_900_000_000,
        "amount_units": 2_900_000_000,
        "topup_units": None,
        "status": "paid",
        "exceptions": "",
        "frozen": False,
        "created_at": at - 10 * 60_000,
        "expires_at": at + HOUR_MS,
        "monitor_until": at + 25 * HOUR_MS,
        "paid_at": at,
        "closed_at": at,
        "updated_at": at,
        "version": 2,
    }


def _deposit(dep_id: str, at: int, invoice_id: str | None) -> dict[str, Any]:
    record = {"depId": dep_id, "amt": "29.0001", "ccy": "USDT", "chain": "USDT-TRC20"}
    record |= {"txId": f"0x{dep_id}", "ts": str(at), "state": "2", "to": "TXbenchaddress"}
    return {
        "dep_id": dep_id,
        "currency": "USDT",
        "chain": "USDT-TRC20",
        "amount": "29.0001",
        "amount_units": 2_900_010_000,
        "to_address": "TXbenchaddress",
        "tx_id": f"0x{dep_id}",
        "from_wd_id": "",
        "type": "0",
        "state": "2",
        "ts": at,
        "raw": json.dumps(record, sort_keys=True),
        "first_seen_at": at,
        "updated_at": at,
        "needs_decision": False,
        "disposition": "attached" if invoice_id else "unmatched",
        "invoice_id": invoice_id,
        "match_kind": "exact" if invoice_id else None,
        "matched_amount": "29.0001" if invoice_id else None,
        "matched_state": "2" if invoice_id else None,
        "note": "",
    }


class _Rows:
    """Rows collected per table and inserted in batches (FK order kept by the caller)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.counts: dict[str, int] = {}

    async def add(self, table: str, row: dict[str, Any]) -> None:
        self.pending.setdefault(table, []).append(row)
        if len(self.pending[table]) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        order = [t.name for t in schema.metadata.sorted_tables]
        async with self.db.transaction() as conn:
            for name in order:
                rows = self.pending.pop(name, [])
                if rows:
                    await conn.execute(schema.metadata.tables[name].insert(), rows)
                    self.counts[name] = self.counts.get(name, 0) + len(rows)


async def fill(db: Database, size: Size, days: int) -> None:
    """``days`` of history ending at NOW (see the module docstring)."""
    rows = _Rows(db)
    for customer in range(1, CUSTOMERS + 1):
        await rows.add(
            "customers",
            {
                "id": customer,
                "language": "en",
                "unreachable": False,
                "created_at": NOW - 400 * DAY_MS,
            },
        )
        await rows.add(
            "subscriptions",
            {
                "id": customer,
                "customer_id": customer,
                "plan_id": "pro",
                "started_at": NOW - 400 * DAY_MS,
                "ends_at": NOW + (customer % 60) * DAY_MS - 20 * DAY_MS,
                "status": "active" if customer % 60 >= 20 else "expired",
                "updated_at": NOW - DAY_MS,
            },
        )
    await rows.flush()
    outage = range(10, 10 + size.outage_days)  # days ago: within the last month
    event_id = delivery_id = 0
    for day in range(days, 0, -1):
        start = NOW - day * DAY_MS
        for n in range(size.paid_per_day):
            at = start + n * (DAY_MS // (size.paid_per_day + 1))
            customer = 1 + (day * size.paid_per_day + n) % CUSTOMERS
            invoice_id = f"I{day:03d}{n:05d}"
            await rows.add("invoices", _invoice(invoice_id, customer, at))
            await rows.add("deposits", _deposit(f"D{day:03d}{n:05d}", at, invoice_id))
            for kind in ("invoice", "paid", "reminder"):
                await rows.add(
                    "outbox",
                    {
                        "dedupe_key": f"c:{kind}:{invoice_id}",
                        "audience": "customer",
                        "customer_id": customer,
                        "kind": kind,
                        "payload": json.dumps({"invoice": invoice_id, "amount": "29.0001"}),
                        "status": "sent",
                        "attempts": 1,
                        "next_attempt_at": at,
                        "claimed_until": 0,
                        "created_at": at,
                        "sent_at": at + 1_000,
                    },
                )
            for kind in ("invoice.paid", "subscription.activated"):
                event_id += 1
                await rows.add(
                    "merchant_events",
                    {
                        "id": event_id,
                        "event_key": f"{kind}:{invoice_id}",
                        "public_id": f"evt_{event_id:012x}",
                        "type": kind,
                        "order_key": f"c:{customer}",
                        "payload": json.dumps({"invoice": invoice_id}),
                        "created_at": at,
                    },
                )
                for url in (LIVE, DEAD) if day in outage else (LIVE,):
                    delivery_id += 1
                    failed = url == DEAD
                    await rows.add(
                        "webhook_deliveries",
                        {
                            "id": delivery_id,
                            "event_id": event_id,
                            "url": url,
                            "order_key": f"c:{customer}",
                            "status": "failed" if failed else "delivered",
                            "attempts": ATTEMPTS_DEAD if failed else 1,
                            "next_attempt_at": at,
                            "give_up_at": at + 3 * DAY_MS,
                            "claimed_until": 0,
                            "last_status": None if failed else 200,
                            "last_error": "connection refused" if failed else None,
                            "created_at": at,
                            "delivered_at": None if failed else at + 500,
                        },
                    )
                    for attempt in range(ATTEMPTS_DEAD if failed else 1):
                        await rows.add(
                            "webhook_attempts",
                            {
                                "delivery_id": delivery_id,
                                "attempted_at": at + attempt * HOUR_MS,
                                "status_code": None if failed else 200,
                                "error": "connection refused" if failed else None,
                                "duration_ms": 40,
                            },
                        )
        for n in range(size.unrelated_per_day):
            await rows.add("deposits", _deposit(f"U{day:03d}{n:05d}", start + n * HOUR_MS, None))
    await rows.flush()


# --- measuring -------------------------------------------------------------------------------


async def _full_counts(db: Database) -> None:
    """What the views used to count: every message and delivery, per status."""
    d, o = schema.webhook_deliveries.c, schema.outbox.c
    async with db.read() as conn:
        await conn.execute(select(o.status, func.count()).group_by(o.status))
        for url in (LIVE, DEAD):
            await conn.execute(
                select(d.status, func.count()).where(d.url == url).group_by(d.status)
            )
        await conn.execute(select(func.count()).where(schema.deposits.c.disposition == "unmatched"))


async def _table_rows(db: Database) -> dict[str, int]:
    names = ("invoices", "deposits", "outbox", "webhook_deliveries", "webhook_attempts")
    async with db.read() as conn:
        return {
            name: int(
                (
                    await conn.execute(
                        select(func.count()).select_from(schema.metadata.tables[name])
                    )
                ).scalar_one()
            )
            for name in names
        }


async def _views(db: Database) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def stats() -> None:
        await shop_stats(db, now_ms=NOW)

    async def webhooks() -> None:
        await overview(db, [LIVE, DEAD])

    async def full() -> None:
        await _full_counts(db)

    return {"stats": stats, "webhooks": webhooks, "full": full}


async def _settle(db: Database) -> None:
    """On PostgreSQL, what autovacuum does after a bulk load or a prune: VACUUM ANALYZE."""
    if db.dialect != "postgresql":
        return
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql("VACUUM ANALYZE")


async def compare(base: Database, db: Database, backend: str, history: str, size: Size) -> Measured:
    """Each view on ``db`` and right after it on the baseline ``base`` (so both see the same
    load), ``size.repeats`` rounds after one warm-up round."""
    ours, theirs = await _views(db), await _views(base)
    times: dict[str, list[float]] = {f"{w}:{v}": [] for w in ("db", "base") for v in VIEWS}
    for round_ in range(size.repeats + 1):
        for view in VIEWS:
            for who, calls in (("db", ours), ("base", theirs)):
                started = time.perf_counter()
                await calls[view]()
                if round_:  # the first round warms statement caches and pages
                    times[f"{who}:{view}"].append(time.perf_counter() - started)
    if db is base:  # the baseline itself: one median of every run, ratio 1
        return Measured(
            backend=backend,
            history=history,
            rows=await _table_rows(db),
            seconds={v: statistics.median(times[f"db:{v}"] + times[f"base:{v}"]) for v in VIEWS},
            ratios=dict.fromkeys(VIEWS, 1.0),
        )
    # a ratio per round (the two runs side by side saw the same load), then their median
    return Measured(
        backend=backend,
        history=history,
        rows=await _table_rows(db),
        seconds={v: statistics.median(times[f"db:{v}"]) for v in VIEWS},
        ratios={
            v: statistics.median(
                mine / month
                for mine, month in zip(times[f"db:{v}"], times[f"base:{v}"], strict=True)
            )
            for v in VIEWS
        },
    )


async def run_backend(backend: str, size: Size) -> list[Measured]:
    results = []
    async with _database(backend) as base_url, _database(backend) as year_url:
        base, db = Database.from_url(base_url), Database.from_url(year_url)
        try:
            await base.migrate()
            await db.migrate()
            await fill(base, size, size.baseline_days)
            await _settle(base)
            month = f"{size.baseline_days} days"
            results.append(await compare(base, base, backend, f"{month} (baseline)", size))
            await fill(db, size, size.year_days)
            await _settle(db)
            year = f"{size.year_days} days"
            results.append(await compare(base, db, backend, f"{year}, unpruned", size))
            started = time.perf_counter()
            report = await prune(db, now_ms=NOW, days=RETENTION_DAYS)
            took = time.perf_counter() - started
            await _settle(db)
            pruned = await compare(base, db, backend, f"{year}, pruned to {RETENTION_DAYS}", size)
            pruned.prune, pruned.prune_s = report, took
            results.append(pruned)
        finally:
            await base.close()
            await db.close()
    for result in results:
        print(_row(result), file=sys.stderr, flush=True)  # progress
    return results


async def run(size: Size) -> tuple[list[Measured], list[str]]:
    backends = ["sqlite"]
    notes = []
    if os.environ.get("TEST_DATABASE_URL"):
        backends.append("postgresql")
    else:
        notes.append("PostgreSQL skipped: TEST_DATABASE_URL is not set.")
    results = []
    for backend in backends:
        results += await run_backend(backend, size)
    return results, notes


HEADER = (
    "| db | history | messages | deliveries | attempts | invoices | /stats ms | x | "
    "/webhooks ms | x | full counts ms | x |"
)


def _row(r: Measured) -> str:
    views = "".join(f"| {r.seconds[v] * 1000:.1f} | {r.ratio(v):.2f} " for v in VIEWS)
    return (
        f"| {r.backend} | {r.history} | {r.rows['outbox']:,} | {r.rows['webhook_deliveries']:,} "
        f"| {r.rows['webhook_attempts']:,} | {r.rows['invoices']:,} {views}|"
    )


def section(quick: bool) -> str:
    size = QUICK if quick else FULL
    results, notes = asyncio.run(run(size))
    lines = [
        "## Admin views against a year of history",
        "",
        f"{size.paid_per_day} paid invoices a day (a deposit, three sent messages and two "
        f"delivered webhooks each), {size.unrelated_per_day} unrelated deposits a day, and a "
        f"{size.outage_days}-day outage of a second webhook URL within the last month "
        f"({ATTEMPTS_DEAD} attempts per given-up delivery). Median of {size.repeats} runs of "
        "each view's data queries; x: the median of each round's ratio to the same backend's "
        f"{size.baseline_days}-day history, run right after it in the same round. Full counts: "
        "every message and delivery counted per status, as the views did before their counts "
        "stopped at 1,000. On PostgreSQL each history is vacuumed and analyzed once loaded and "
        "once pruned, as autovacuum would.",
        "",
        HEADER,
        "| " + " | ".join(["---"] * 12) + " |",
    ]
    lines += [_row(r) for r in results]
    pruned = [r for r in results if r.prune is not None]
    if pruned:
        lines += ["", f"The prune of the year's backlog (RETENTION_DAYS={RETENTION_DAYS}):"]
        for r in pruned:
            assert r.prune is not None
            p = r.prune
            lines.append(
                f"- {r.backend}: {r.prune_s:.1f} s, {p.total:,} rows in {p.chunks:,} "
                f"transactions ({p.outbox:,} messages, {p.webhook_attempts:,} attempts, "
                f"{p.webhook_deliveries:,} deliveries, {p.merchant_events:,} events; "
                f"{p.deposit_payloads:,} raw deposit records emptied)"
            )
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


LIMITS = """- **Admin views and history**: /stats and /webhooks read what is open or recent, not the
  history: counts of messages, deliveries and unmatched deposits stop at 1,000 ("1000+"), a
  window's sales are an index range of `(status, paid_at)` and their deposits are looked up by
  invoice id, and the latest webhook problems are the newest entries of `(url, status, id)`.
  Counting every row per status (the former views, the last column) costs about 4.8x at a year.
  Two planner traps had to be avoided: PostgreSQL's generic plan for a prepared `status = $1`
  scanned whole tables looking for a rare status (statuses are now written into the SQL), and
  joining the window's invoices to deposits let PostgreSQL hash every deposit and SQLite walk
  every attached one. Without the prune (RETENTION_DAYS=0) the tables keep growing (about
  seven rows a sale here), which costs disk and the prune's first run, not these views."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few invoices a day")
    args = parser.parse_args(argv)
    print(section(args.quick))


if __name__ == "__main__":
    main()
