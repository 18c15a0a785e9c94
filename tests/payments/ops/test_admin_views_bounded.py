"""/stats and /webhooks read a bounded part of the history: counts stop at COUNT_CAP ("1000+"),
the latest problems are the newest of an index range, and the sales of a window are the
invoices paid in it. What an admin sees in the fake Telegram, and the rows behind it on both
databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import update

from payments.clock import DAY_MS
from payments.delivery.webhooks.monitor import overview
from payments.invoicing.customers import ensure_customer
from payments.ops.counting import COUNT_CAP
from payments.ops.reports import shop_stats
from payments.storage import Database, schema
from tests.botkit import ADMIN, BotWorld
from tests.helpers_db import add_invoice

URL = "http://127.0.0.1:9/hook"  # nothing listens: nothing here is due to be sent anyway
SECRET = "merchant-secret-0123456789"
MANY = COUNT_CAP + 500
STOPPED = COUNT_CAP + 1  # what a count that stopped at the cap returns


def _message(n: int, status: str, at: int) -> dict[str, Any]:
    return {
        "dedupe_key": f"m{n}",
        "audience": "customer",
        "customer_id": 1,
        "kind": "paid",
        "payload": "{}",
        "status": status,
        "attempts": 1,
        "next_attempt_at": at + 365 * DAY_MS,
        "claimed_until": 0,
        "created_at": at,
        "sent_at": at if status == "sent" else None,
    }


def _unmatched(n: int, at: int) -> dict[str, Any]:
    return {
        "dep_id": f"dep{n}",
        "currency": "USDT",
        "chain": "USDT-TRC20",
        "amount": "1",
        "amount_units": 100_000_000,
        "to_address": "",
        "tx_id": f"tx{n}",
        "from_wd_id": "",
        "type": "0",
        "state": "2",
        "ts": at,
        "raw": "{}",
        "first_seen_at": at,
        "updated_at": at,
        "needs_decision": False,
        "disposition": "unmatched",
        "note": "",
    }


async def _history(db: Database, at: int) -> list[int]:
    """More than COUNT_CAP sent messages, unmatched deposits and delivered webhooks, two
    failed deliveries (one old, one new) and one pending after a failure; returns the ids of
    the problems, newest first."""
    async with db.transaction() as conn:
        await conn.execute(
            schema.outbox.insert(),
            [_message(n, "sent", at) for n in range(MANY)] + [_message(MANY, "pending", at)],
        )
        await conn.execute(schema.deposits.insert(), [_unmatched(n, at) for n in range(MANY)])
        await conn.execute(
            schema.merchant_events.insert(),
            [
                {
                    "id": n,
                    "event_key": f"k{n}",
                    "public_id": f"evt_{n}",
                    "type": "invoice.paid",
                    "order_key": f"c:{n}",
                    "payload": "{}",
                    "created_at": at,
                }
                for n in range(1, MANY + 4)
            ],
        )
        statuses = {1: "failed", MANY + 2: "pending", MANY + 3: "failed"}
        await conn.execute(
            schema.webhook_deliveries.insert(),
            [
                {
                    "id": n,
                    "event_id": n,
                    "url": URL,
                    "order_key": f"c:{n}",
                    "status": statuses.get(n, "delivered"),
                    "attempts": 3 if n in statuses else 1,
                    "next_attempt_at": at + 365 * DAY_MS,
                    "give_up_at": at + 365 * DAY_MS,
                    "claimed_until": 0,
                    "last_status": 500 if n in statuses else 200,
                    "created_at": at,
                    "delivered_at": None if n in statuses else at,
                }
                for n in range(1, MANY + 4)
            ],
        )
    return [MANY + 3, MANY + 2, 1]


async def test_the_counts_stop_at_the_cap_and_the_problems_are_the_newest(db: Database) -> None:
    now = 1_790_000_000_000
    problems = await _history(db, now - DAY_MS)
    stats = await shop_stats(db, now_ms=now)
    # each count read at most COUNT_CAP + 1 rows, however many there are
    assert stats.outbox == {"pending": 1, "sent": STOPPED, "failed": 0, "unreachable": 0}
    assert stats.unmatched_deposits == STOPPED
    [url] = await overview(db, [URL])
    assert (url.delivered, url.pending, url.failed) == (STOPPED, 1, 2)
    assert [p.delivery_id for p in url.problems] == problems
    [url] = await overview(db, [URL], limit=2)
    assert [p.delivery_id for p in url.problems] == problems[:2]


async def test_a_window_counts_the_invoices_paid_in_it(db: Database) -> None:
    now = 1_790_000_000_000
    async with db.transaction() as conn:
        for invoice_id, paid_days_ago in (("A", 0.5), ("B", 10), ("C", 40), ("D", 400)):
            await add_invoice(conn, invoice_id)
            await conn.execute(
                update(schema.invoices)
                .where(schema.invoices.c.id == invoice_id)
                .values(status="paid", paid_at=now - int(paid_days_ago * DAY_MS))
            )
    stats = await shop_stats(db, now_ms=now)
    assert stats.windows["24h"].paid_invoices == 1
    assert stats.windows["30d"].paid_invoices == 2


async def test_admins_read_1000_plus_where_a_count_stopped(tmp_path: Path) -> None:
    env = {"MERCHANT_WEBHOOK_URLS": URL, "MERCHANT_WEBHOOK_SECRET": SECRET}
    async with BotWorld.open(tmp_path, env=env) as world:
        async with world.database() as db:
            await db.migrate()
            await _history(db, world.clock.now_ms() - DAY_MS)
        async with world.running():
            admin = world.customer(ADMIN)
            stats = (await admin.send("/stats", expect="Stats")).plain
            assert f"Unmatched deposits: {COUNT_CAP}+" in stats
            assert f"sent {COUNT_CAP}+" in stats and "pending 1" in stats
            listing = (await admin.send("/webhooks", expect="Webhooks")).plain
            assert f"{COUNT_CAP}+ delivered · 1 pending · 2 failed" in listing
            assert listing.index(f"#{MANY + 3} ") < listing.index(f"#{MANY + 2} ")
            assert listing.index(f"#{MANY + 2} ") < listing.index("#1 ")


async def test_a_window_counts_the_stars_charged_in_it_and_those_refunded_since(
    db: Database,
) -> None:
    now = 1_790_000_000_000
    async with db.transaction() as conn:
        await ensure_customer(conn, 7, now - 500 * DAY_MS, "en")
        await conn.execute(
            schema.star_invoices.insert().values(
                id="ORDER001",
                customer_id=7,
                plan_id="pro",
                days=30,
                stars=1500,
                recurring=True,
                status="paid",
                link=None,
                first_charge_id="c0",
                renewal_off=False,
                created_at=now - 500 * DAY_MS,
                expires_at=now,
                paid_at=now,
                updated_at=now,
            )
        )
        charges = (("c0", 0.5, None), ("c1", 0.9, now), ("c2", 10, now), ("c3", 40, None))
        for n, (charge_id, paid_days_ago, refunded_at) in enumerate(charges):
            paid_at = now - int(paid_days_ago * DAY_MS)
            await conn.execute(
                schema.star_payments.insert().values(
                    charge_id=charge_id,
                    id=f"XTR{n}",
                    invoice_id="ORDER001",
                    customer_id=7,
                    plan_id="pro",
                    days=30,
                    stars=1000 + n,
                    renewal=n > 0,
                    subscription_ends_at=None,
                    paid_at=paid_at,
                    recorded_at=paid_at,
                    source="update",
                    refunded_at=refunded_at,
                    refund_source=None if refunded_at is None else "admin",
                )
            )
    stats = await shop_stats(db, now_ms=now)
    day, month = stats.windows["24h"], stats.windows["30d"]
    assert (day.stars.payments, day.stars.stars, day.stars.refunds) == (2, 2001, 1)
    assert (day.stars.refunded_stars, day.stars.kept) == (1001, 1000)
    assert (month.stars.payments, month.stars.stars, month.stars.refunds) == (3, 3003, 2)
    assert (month.stars.refunded_stars, month.stars.kept) == (2003, 1000)
    assert day.paid_invoices == month.paid_invoices == 0  # crypto counts crypto only
