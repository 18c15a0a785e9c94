"""Shop figures for admins (/stats): subscribers, sales per window, what arrived, the outbox.

Every statement is bounded by what is open or recent, not by the history: sales are read
through the ``(status, paid_at)`` index for the window only, their deposits by invoice id, and
the outbox and unmatched deposits are counted up to :data:`~payments.ops.counting.COUNT_CAP`.

Money is summed exactly: prices and deposit amounts are stored as text and added up here as
Decimals (never a database float). Rows are grouped in SQL first, so a window of thousands of
paid invoices reads a handful of (plan, price) rows. An invoice counts in a window when it
turned paid inside it and is still paid (one an admin later marked invalid no longer counts).

Telegram Stars are counted beside crypto, never mixed into its figures: the charges Telegram
made within the window (first payments and renewals, read through the ``paid_at`` index of
``star_payments`` in one grouped statement), and of those the ones refunded since. Stars are
whole numbers, summed as integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.clock import DAY_MS, HOUR_MS
from payments.delivery import outbox as ob
from payments.ops.counting import capped_count, fixed
from payments.storage import Database
from payments.storage.schema import deposits, invoices, outbox, star_payments, subscriptions
from payments.subscriptions.periods import ACTIVE

WINDOWS: dict[str, int] = {"24h": 24 * HOUR_MS, "30d": 30 * DAY_MS}  # name -> length
IDS_PER_STATEMENT = 500  # invoices whose deposits one statement sums


@dataclass(frozen=True)
class StarsWindow:
    """Telegram Stars charges made within the window, and those of them refunded since."""

    payments: int
    stars: int  # received: every charge of the window, refunded or not
    refunds: int
    refunded_stars: int

    @property
    def kept(self) -> int:
        """What the shop keeps of the window's Stars (received minus refunded)."""
        return self.stars - self.refunded_stars


@dataclass(frozen=True)
class WindowStats:
    """Invoices that turned paid within the window (and are still paid)."""

    paid_invoices: int
    usd_total: Decimal
    usd_by_plan: dict[str, Decimal]  # plan_id -> sum of price_usd
    count_by_plan: dict[str, int]  # plan_id -> paid invoices
    # currency -> what actually arrived for them: counted deposits attached to those invoices
    coin_by_currency: dict[str, Decimal]
    stars: StarsWindow  # Telegram Stars, beside crypto


@dataclass(frozen=True)
class ShopStats:
    now_ms: int
    active_subscribers: int  # distinct customers with an active subscription not yet ended
    windows: dict[str, WindowStats]  # "24h", "30d"
    outbox: dict[str, int]  # messages per outbox status (up to COUNT_CAP + 1: "more")
    unmatched_deposits: int  # waiting in the admin queue (up to COUNT_CAP + 1: "more")


async def shop_stats(db: Database, *, now_ms: int) -> ShopStats:
    async with db.read() as conn:
        active = (
            await conn.execute(
                select(func.count(func.distinct(subscriptions.c.customer_id))).where(
                    subscriptions.c.status == ACTIVE, subscriptions.c.ends_at > now_ms
                )
            )
        ).scalar_one()
        windows = {name: await _window(conn, now_ms - length) for name, length in WINDOWS.items()}
        unmatched = await capped_count(
            conn, deposits, deposits.c.disposition == fixed(st.DEP_UNMATCHED)
        )
        messages = {
            status: await capped_count(conn, outbox, outbox.c.status == fixed(status))
            for status in ob.STATUSES
        }
    return ShopStats(
        now_ms=now_ms,
        active_subscribers=int(active),
        windows=windows,
        outbox=messages,
        unmatched_deposits=unmatched,
    )


async def _window(conn: AsyncConnection, since_ms: int) -> WindowStats:
    paid = (invoices.c.status == fixed(st.PAID), invoices.c.paid_at >= since_ms)
    sales = await conn.execute(
        select(invoices.c.plan_id, invoices.c.price_usd, func.count().label("n"))
        .where(*paid)
        .group_by(invoices.c.plan_id, invoices.c.price_usd)
    )
    usd_by_plan: dict[str, Decimal] = {}
    count_by_plan: dict[str, int] = {}
    for row in sales:
        count = int(row.n)
        usd_by_plan[row.plan_id] = usd_by_plan.get(row.plan_id, Decimal(0)) + (
            Decimal(row.price_usd) * count
        )
        count_by_plan[row.plan_id] = count_by_plan.get(row.plan_id, 0) + count

    # what arrived for them: their deposits looked up by invoice id (an index lookup each), not
    # a join a planner may answer by reading every deposit ever made; which deposits count is
    # decided here, so that no other condition tempts a planner into another index
    ids = list(
        (await conn.execute(select(invoices.c.id).where(*paid).order_by(invoices.c.id))).scalars()
    )
    coins: dict[str, Decimal] = {}
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        arrived = await conn.execute(
            select(
                deposits.c.currency,
                deposits.c.amount,
                deposits.c.disposition,
                deposits.c.match_kind,
                func.count().label("n"),
            )
            .where(deposits.c.invoice_id.in_(ids[start : start + IDS_PER_STATEMENT]))
            .group_by(
                deposits.c.currency,
                deposits.c.amount,
                deposits.c.disposition,
                deposits.c.match_kind,
            )
        )
        for row in arrived:
            if row.disposition == st.DEP_ATTACHED and row.match_kind in st.COUNTED_KINDS:
                coins[row.currency] = coins.get(row.currency, Decimal(0)) + (
                    Decimal(row.amount) * int(row.n)
                )
    return WindowStats(
        stars=await _stars_window(conn, since_ms),
        paid_invoices=sum(count_by_plan.values()),
        usd_total=sum(usd_by_plan.values(), Decimal(0)),
        usd_by_plan=usd_by_plan,
        count_by_plan=count_by_plan,
        coin_by_currency=coins,
    )


async def _stars_window(conn: AsyncConnection, since_ms: int) -> StarsWindow:
    """One statement on the ``paid_at`` index: the window's charges, grouped by refunded."""
    refunded = star_payments.c.refunded_at.is_not(None).label("refunded")
    rows = await conn.execute(
        select(
            refunded,
            func.count().label("n"),
            func.coalesce(func.sum(star_payments.c.stars), 0).label("stars"),
        )
        .where(star_payments.c.paid_at >= since_ms)
        .group_by(refunded)
    )
    count = stars = refunds = refunded_stars = 0
    for row in rows:
        count += int(row.n)
        stars += int(row.stars)
        if row.refunded:
            refunds += int(row.n)
            refunded_stars += int(row.stars)
    return StarsWindow(count, stars, refunds, refunded_stars)
