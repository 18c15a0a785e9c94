"""What a million settled invoices and two million deposits cost the poll and the admin views.

PostgreSQL only (TEST_DATABASE_URL's server; SQLite is not what a shop of that size runs on). Three
throw-away databases with random names are created there and dropped after:

- **empty history** (the baseline): only the shop's live state;
- **a big history**: the same live state plus ``invoices`` settled invoices (paid in two
  deposits each, so twice as many deposits), their customers and subscriptions, written with
  ``INSERT ... SELECT generate_series`` in a few statements (no Python row building).
- **the big history and abandoned invoices**: the same, plus ``abandoned`` invoices that expired
  unpaid (they stay in the statuses that may still receive money).

The live state is the same in both: open invoices with their reserved amounts on a pool of
addresses the history used too, new deposits waiting for a decision (half pay an open invoice
exactly, half are near an amount on one of the addresses), a few unmatched deposits, a few sales
in the last day. The history ends before /stats' 30-day window: it is history, not this month's
sales.

Timed (median of each round's ratio to the baseline, the two run side by side in each round):
the poll's reads (what the poller reads to know which deposits to re-read, the deposits waiting
for a decision and the snapshot the matcher decides them against, the expiry's due invoices),
/pending (``AdminService.pending``), /stats (``shop_stats``) and /user (``AdminService.user``
and the Stars payments the handler shows) of a customer with history. Every statement they run
is then explained with ``EXPLAIN (ANALYZE, BUFFERS)`` on the big history. No timed assertion
anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from bench.contention import _database
from payments.catalog import load_catalog
from payments.clock import DAY_MS, HOUR_MS, ManualClock
from payments.config import PaymentSettings
from payments.deposits.decide import match_rules
from payments.deposits.expiry import expire_invoices
from payments.deposits.poll import _unfinished_before, _unfinished_since
from payments.deposits.snapshot import load_pending, load_snapshot, pending_currencies
from payments.ops.admin import AdminService
from payments.ops.reports import shop_stats
from payments.stars.rail import StarsRail
from payments.storage import Database

NOW = 1_800_000_000_000
ADDRESSES = 20  # the pool: every address served thousands of invoices over the years
CUSTOMERS = 100_000
USER = 4_242  # the customer /user looks up: about ten invoices in the history
OPEN = 200  # live pending invoices
NEW = 20  # live deposits waiting for a decision
UNMATCHED = 10


@dataclass(frozen=True)
class Size:
    invoices: int
    abandoned: int
    repeats: int


FULL = Size(invoices=1_000_000, abandoned=250_000, repeats=15)
QUICK = Size(invoices=2_000, abandoned=500, repeats=2)

VIEWS = ("poll", "pending", "stats", "user")


@dataclass
class Result:
    invoices: int = 0
    deposits: int = 0
    fill_s: float = 0.0
    base_s: dict[str, float] = field(default_factory=dict)
    big_s: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    plans: list[tuple[str, str, list[str]]] = field(default_factory=list)  # view, sql, plan
    # the same history with abandoned (expired, never paid) invoices added
    abandoned_s: dict[str, float] = field(default_factory=dict)
    abandoned_ratios: dict[str, float] = field(default_factory=dict)
    abandoned_plans: list[tuple[str, str, list[str]]] = field(default_factory=list)


# --- filling ---------------------------------------------------------------------------------

_INVOICE_COLUMNS = (
    "id, customer_id, plan_id, days, price_usd, currency, network, chain, address, tag, rate, "
    "scale, step, base_units, amount_units, topup_units, status, exceptions, frozen, "
    "created_at, expires_at, monitor_until, paid_at, closed_at, updated_at, version"
)
_DEPOSIT_COLUMNS = (
    "dep_id, currency, chain, amount, amount_units, to_address, tx_id, from_wd_id, type, state, "
    "ts, raw, first_seen_at, updated_at, needs_decision, disposition, invoice_id, match_kind, "
    "matched_amount, matched_state, candidate_invoice_id, note, vanished_at"
)


def _address(expr: str) -> str:
    return f"'TPool' || lpad(({expr} % {ADDRESSES})::text, 4, '0')"


def live_state() -> list[str]:
    """The shop's present: the same in both databases."""
    recent = NOW - 2 * HOUR_MS
    return [
        f"INSERT INTO customers (id, language, unreachable, created_at) "
        f"SELECT n, 'en', false, {NOW - 400 * DAY_MS} FROM generate_series(1, {CUSTOMERS}) n",
        # open invoices: 29 USDT + a unique offset, on the pool's addresses
        f"INSERT INTO invoices ({_INVOICE_COLUMNS}) SELECT 'L' || lpad(n::text, 7, '0'), n, "
        "'pro', 30, '29', 'USDT', 'TRC20', 'USDT-TRC20', "
        f"{_address('n')}, NULL, '1', 8, '0.0001', 2900000000, 2900000000 + n * 10000, NULL, "
        f"'pending', '', false, {recent} + n, {recent} + n + {HOUR_MS}, "
        f"{recent} + n + {25 * HOUR_MS}, NULL, NULL, {recent} + n, 0 "
        f"FROM generate_series(1, {OPEN}) n",
        "INSERT INTO reservations (currency, amount_units, invoice_id, kind, address, taken_at, "
        f"held_until) SELECT 'USDT', 2900000000 + n * 10000, 'L' || lpad(n::text, 7, '0'), "
        f"'main', {_address('n')}, {recent}, {recent} + {25 * HOUR_MS} "
        f"FROM generate_series(1, {OPEN}) n",
        # a few sales in the last day
        f"INSERT INTO invoices ({_INVOICE_COLUMNS}) SELECT 'S' || lpad(n::text, 7, '0'), n, "
        "'pro', 30, '29', 'USDT', 'TRC20', 'USDT-TRC20', "
        f"{_address('n')}, NULL, '1', 8, '0.0001', 2900000000, 2900000000 + n * 10000, NULL, "
        f"'paid', '', false, {NOW - DAY_MS // 2} + n, {NOW} + n, {NOW} + n, "
        f"{NOW - DAY_MS // 2} + n, {NOW - DAY_MS // 2} + n, {NOW - DAY_MS // 2} + n, 2 "
        "FROM generate_series(1, 30) n",
        # waiting for a decision: even ones pay an open invoice exactly, odd ones are near a
        # price on its address (the inexact path: candidates by amount and by address)
        f"INSERT INTO deposits ({_DEPOSIT_COLUMNS}) SELECT 'N' || n, 'USDT', 'USDT-TRC20', "
        "CASE WHEN n % 2 = 0 THEN (29 + n * 0.0001)::numeric(20,4)::text ELSE '28.5' END, "
        "CASE WHEN n % 2 = 0 THEN 2900000000 + n * 10000 ELSE 2850000000 END, "
        f"{_address('n')}, '0xN' || n, '', '4', '2', {NOW - 60_000} + n, '{{}}', {NOW}, {NOW}, "
        f"true, 'new', NULL, NULL, NULL, NULL, NULL, '', NULL FROM generate_series(1, {NEW}) n",
        f"INSERT INTO deposits ({_DEPOSIT_COLUMNS}) SELECT 'U' || n, 'USDT', 'USDT-TRC20', "
        f"'3.3', 330000000, {_address('n')}, '0xU' || n, '', '4', '2', {NOW - DAY_MS} + n, "
        f"'{{}}', {NOW - DAY_MS}, {NOW - DAY_MS}, false, 'unmatched', NULL, NULL, NULL, NULL, "
        f"NULL, 'no_invoice', NULL FROM generate_series(1, {UNMATCHED}) n",
    ]


def history(size: Size) -> list[str]:
    """``size.invoices`` settled invoices over the three years before /stats' month, each paid
    in two deposits (a partial, then the rest), and a subscription per customer, ended."""
    n = size.invoices
    end = NOW - 31 * DAY_MS
    step = max(1, 3 * 365 * DAY_MS // n)
    at = f"({end} - ({n} - n) * {step}::bigint)"
    return [
        f"INSERT INTO invoices ({_INVOICE_COLUMNS}) SELECT 'H' || lpad(n::text, 8, '0'), "
        f"1 + n % {CUSTOMERS}, CASE WHEN n % 3 = 0 THEN 'basic' ELSE 'pro' END, 30, "
        "CASE WHEN n % 3 = 0 THEN '9' ELSE '29' END, 'USDT', 'TRC20', 'USDT-TRC20', "
        f"{_address('n')}, NULL, '1', 8, '0.0001', "
        "CASE WHEN n % 3 = 0 THEN 900000000 ELSE 2900000000 END, "
        "CASE WHEN n % 3 = 0 THEN 900000000 ELSE 2900000000 END + (n % 5000) * 10000, NULL, "
        f"'paid', '', false, {at} - 600000, {at} + {HOUR_MS}, {at} + {25 * HOUR_MS}, "
        f"{at}, {at}, {at}, 3 FROM generate_series(1, {n}) n",
        f"INSERT INTO deposits ({_DEPOSIT_COLUMNS}) SELECT 'H' || n || part, 'USDT', "
        "'USDT-TRC20', CASE WHEN part = 'a' THEN '10' ELSE '19.0001' END, "
        "CASE WHEN part = 'a' THEN 1000000000 ELSE 1900010000 END, "
        f"{_address('n')}, '0xH' || n || part, '', '4', '2', "
        f"{at} - CASE WHEN part = 'a' THEN 60000 ELSE 0 END, "
        '\'{"depId": "H\' || n || part || \'", "state": "2"}\', '
        f"{at}, {at}, false, 'attached', 'H' || lpad(n::text, 8, '0'), "
        "CASE WHEN part = 'a' THEN 'partial' ELSE 'topup' END, "
        "CASE WHEN part = 'a' THEN '10' ELSE '19.0001' END, '2', NULL, '', NULL "
        f"FROM generate_series(1, {n}) n, (VALUES ('a'), ('b')) parts(part)",
        "INSERT INTO subscriptions (customer_id, plan_id, started_at, ends_at, status, "
        f"updated_at) SELECT c, 'pro', {end - 60 * DAY_MS}, {end - 30 * DAY_MS}, 'expired', "
        f"{end - 30 * DAY_MS} FROM generate_series(1, LEAST({n}, {CUSTOMERS})) c",
    ]


def abandoned(size: Size) -> list[str]:
    """``size.abandoned`` invoices never paid and expired long ago (a customer who changed his
    mind), on the same addresses and prices as the history."""
    n = size.abandoned
    end = NOW - 31 * DAY_MS
    step = max(1, 3 * 365 * DAY_MS // max(n, 1))
    at = f"({end} - ({n} - n) * {step}::bigint)"
    return [
        f"INSERT INTO invoices ({_INVOICE_COLUMNS}) SELECT 'A' || lpad(n::text, 8, '0'), "
        f"1 + n % {CUSTOMERS}, CASE WHEN n % 3 = 0 THEN 'basic' ELSE 'pro' END, 30, "
        "CASE WHEN n % 3 = 0 THEN '9' ELSE '29' END, 'USDT', 'TRC20', 'USDT-TRC20', "
        f"{_address('n')}, NULL, '1', 8, '0.0001', "
        "CASE WHEN n % 3 = 0 THEN 900000000 ELSE 2900000000 END, "
        "CASE WHEN n % 3 = 0 THEN 900000000 ELSE 2900000000 END + (n % 5000) * 10000, NULL, "
        f"'expired', '', false, {at}, {at} + {HOUR_MS}, {at} + {25 * HOUR_MS}, "
        f"NULL, {at} + {HOUR_MS}, {at} + {HOUR_MS}, 1 FROM generate_series(1, {n}) n",
    ]


async def _run_sql(db: Database, statements: list[str]) -> None:
    async with db.transaction() as conn:
        for sql in statements:
            await conn.exec_driver_sql(sql)


async def _settle(db: Database) -> None:
    """What autovacuum does after a bulk load: VACUUM ANALYZE."""
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql("VACUUM ANALYZE")


async def _count(db: Database, table: str) -> int:
    async with db.read() as conn:
        return int((await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one())


# --- the views -------------------------------------------------------------------------------


def views(db: Database) -> dict[str, Callable[[], Awaitable[Any]]]:
    settings = PaymentSettings()
    catalog = load_catalog()
    rules = match_rules(settings, catalog)
    clock = ManualClock(NOW)
    admin = AdminService(db, clock, catalog, settings, rules)
    stars = StarsRail(db, catalog, clock, order_ttl_ms=settings.ttl_ms)

    async def poll() -> None:
        since = NOW - settings.poll_overlap_ms
        window = NOW - 7 * DAY_MS
        async with db.read() as conn:
            await _unfinished_before(conn, since, window, settings.refresh_batch)
            await _unfinished_since(conn, since)
            await pending_currencies(conn)
            batch = await load_pending(conn, 100)
            await load_snapshot(conn, batch, rules)
        # nothing is due yet: the expiry's read, and no write
        await expire_invoices(db, clock, settings, polled_until=NOW - 2 * HOUR_MS)

    async def pending() -> None:
        await admin.pending(limit=10, offset=0)

    async def stats() -> None:
        await shop_stats(db, now_ms=NOW)

    async def user() -> None:
        await admin.user(USER)
        await stars.payments_of(USER, limit=10)

    return {"poll": poll, "pending": pending, "stats": stats, "user": user}


class _Statements:
    """The statements run (and their parameters) while ``on``."""

    def __init__(self, db: Database) -> None:
        self.on = False
        self.seen: list[tuple[str, Any]] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if self.on:
            self.seen.append((statement, params))


async def explain(db: Database, statement: str, params: Any) -> list[str]:
    async with db.read() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        rows = await driver.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *(params or ()))
    return [r[0] for r in rows]


# a plan that reads the history: a sequential scan of it, or any step that handles thousands of
# rows (the live state is a few hundred)
SCANS = re.compile(r"Seq Scan on (invoices|deposits)|actual time=\S+ rows=\d{4,}")


def scans_history(plan: list[str]) -> bool:
    return any(SCANS.search(line) for line in plan)


async def _compare(
    base: Database, big: Database, repeats: int
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Each view on ``big`` and right after it on ``base``, ``repeats`` rounds after a warm-up:
    the medians of both and the median of each round's ratio."""
    ours, theirs = views(big), views(base)
    times: dict[str, list[float]] = {f"{w}:{v}": [] for w in ("big", "base") for v in VIEWS}
    for round_ in range(repeats + 1):
        for view in VIEWS:
            for who, calls in (("big", ours), ("base", theirs)):
                t0 = time.perf_counter()
                await calls[view]()
                if round_:  # the first round warms caches
                    times[f"{who}:{view}"].append(time.perf_counter() - t0)
    medians = {v: statistics.median(times[f"big:{v}"]) for v in VIEWS}
    base_medians = {v: statistics.median(times[f"base:{v}"]) for v in VIEWS}
    ratios = {
        v: statistics.median(
            a / b for a, b in zip(times[f"big:{v}"], times[f"base:{v}"], strict=True)
        )
        for v in VIEWS
    }
    return medians, base_medians, ratios


async def _plans(db: Database) -> list[tuple[str, str, list[str]]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT the views run on ``db``."""
    calls, recorder, plans = views(db), _Statements(db), []
    for view in VIEWS:
        recorder.on, recorder.seen = True, []
        await calls[view]()
        recorder.on = False
        for statement, params in recorder.seen:
            if statement.lstrip().upper().startswith("SELECT"):
                plans.append((view, statement, await explain(db, statement, params)))
    return plans


async def run(size: Size) -> Result:
    result = Result()
    async with (
        _database("postgresql") as base_url,
        _database("postgresql") as big_url,
        _database("postgresql") as lost_url,
    ):
        base, big, lost = (Database.from_url(u) for u in (base_url, big_url, lost_url))
        try:
            for db in (base, big, lost):
                await db.migrate()
            await _run_sql(base, live_state())
            started = time.perf_counter()
            await _run_sql(big, live_state() + history(size))
            await _settle(big)
            result.fill_s = time.perf_counter() - started
            await _settle(base)
            result.invoices = await _count(big, "invoices")
            result.deposits = await _count(big, "deposits")
            result.big_s, result.base_s, result.ratios = await _compare(base, big, size.repeats)
            result.plans = await _plans(big)
            await big.close()  # its server memory back before the next load
            await _run_sql(lost, live_state() + history(size) + abandoned(size))
            await _settle(lost)
            result.abandoned_s, _, result.abandoned_ratios = await _compare(
                base, lost, size.repeats
            )
            result.abandoned_plans = await _plans(lost)
        finally:
            for db in (base, big, lost):
                await db.close()
    return result


LABELS = {
    "poll": "a deposit poll's reads",
    "pending": "/pending",
    "stats": "/stats",
    "user": "/user",
}


def _short_sql(sql: str) -> str:
    one = " ".join(sql.split())
    one = re.sub(r"SELECT .*? FROM", "SELECT ... FROM", one, count=1)
    return one if len(one) <= 220 else one[:217] + "..."


def _plan_summary(plan: list[str]) -> str:
    """The plan's node lines with their actual rows, and its execution time."""
    keep = [
        line.rstrip()
        for line in plan
        if "->" in line or line == plan[0] or line.startswith("Execution Time")
    ]
    return "\n".join(keep[:14])


def section(quick: bool) -> str:
    size = QUICK if quick else FULL
    lines = ["## Cost at a million invoices", ""]
    if not os.environ.get("TEST_DATABASE_URL"):
        return "\n".join([*lines, "PostgreSQL skipped: TEST_DATABASE_URL is not set."]) + "\n"
    r = asyncio.run(run(size))
    lines += [
        f"PostgreSQL, {r.invoices:,} invoices and {r.deposits:,} deposits (the history: "
        f"{size.invoices:,} settled invoices paid in two deposits each, older than /stats' "
        "month, on the same pool of addresses as the open invoices) against the same live "
        f"state alone ({OPEN} open invoices, {NEW} deposits waiting for a decision, "
        f"{UNMATCHED} unmatched). History loaded with INSERT ... SELECT generate_series and "
        f"vacuumed in {r.fill_s:.0f} s. Median of {size.repeats} rounds; x: the median of "
        "each round's ratio to the empty history, run right after it.",
        "",
        f"| view | empty history ms | big history ms | x | + {size.abandoned:,} abandoned ms | x |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in VIEWS:
        lines.append(
            f"| {LABELS[v]} | {r.base_s[v] * 1000:.1f} | {r.big_s[v] * 1000:.1f} "
            f"| {r.ratios[v]:.2f} | {r.abandoned_s[v] * 1000:,.1f} | {r.abandoned_ratios[v]:.2f} |"
        )
    lines += ["", "EXPLAIN (ANALYZE, BUFFERS) of every statement on the big history:", ""]
    for view, sql, plan in r.plans:
        flag = " **scans the history**" if scans_history(plan) else ""
        lines += [f"- {LABELS[view]}: `{_short_sql(sql)}`{flag}", "", "  ```"]
        lines += [f"  {line}" for line in _plan_summary(plan).splitlines()]
        lines += ["  ```", ""]
    lost = [(v, sql, plan) for v, sql, plan in r.abandoned_plans if scans_history(plan)]
    lines += [
        f"With {size.abandoned:,} abandoned invoices added (expired, never paid), the statements "
        "that read them:",
        "",
    ]
    for view, sql, plan in lost or [("", "(none)", [])]:
        lines += [f"- {LABELS.get(view, '')}: `{_short_sql(sql)}`", "", "  ```"]
        lines += [f"  {line}" for line in _plan_summary(plan).splitlines()]
        lines += ["  ```", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few thousand invoices")
    args = parser.parse_args(argv)
    print(section(args.quick))


if __name__ == "__main__":
    main()
