"""Reminders before a subscription ends, and its expiry.

Reminders go out 3 days and 1 day before the end (once per end date, so a renewal gets its own);
at the end the subscription expires and the customer is told once. A subscription Telegram
renews by itself (:mod:`payments.subscriptions.renewals`) gets no reminder, and expires only if
its renewal has not come within a grace after the end. Messages go through the
outbox in the caller's transaction; re-running changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.clock import DAY_MS
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.delivery.webhooks import emit
from payments.storage.schema import subscriptions as subs
from payments.subscriptions.periods import ACTIVE, EXPIRED
from payments.subscriptions.renewals import RENEWAL_GRACE_MS, renews_itself

# the reminder offsets the schema can remember (one "reminded for this end" column each)
_REMINDER_COLUMNS = {3: subs.c.reminded_3d_for, 1: subs.c.reminded_1d_for}


@dataclass(frozen=True)
class ReminderReport:
    reminded: dict[int, int]  # days before the end -> reminders enqueued
    expired: int
    more: bool  # the batch limit was reached: run again

    @property
    def reminders(self) -> int:
        return sum(self.reminded.values())


async def run_reminders_and_expiry(
    conn: AsyncConnection,
    *,
    now_ms: int,
    remind_days: Sequence[int] = (3, 1),
    limit: int = 500,
) -> ReminderReport:
    """Enqueue due reminders and expire ended subscriptions, in the caller's transaction.

    A subscription ending within d days gets the reminder of the SMALLEST such d only (no late
    3-day reminder once inside the last day), once per end date: a renewal moves the end, so the
    new end gets its own reminders. An active subscription whose end has passed becomes expired
    and the customer is told once. Re-running changes nothing. ``remind_days`` may hold 3 and/or
    1 (the schema has a column for each).
    """
    windows = sorted(set(remind_days), reverse=True)
    unknown = [d for d in windows if d not in _REMINDER_COLUMNS]
    if unknown:
        raise ValueError(f"remind_days may only contain {sorted(_REMINDER_COLUMNS)}")
    # (days, lower bound exclusive, upper bound inclusive) of each reminder window
    bounds = [
        (d, now_ms + (windows[i + 1] * DAY_MS if i + 1 < len(windows) else 0), now_ms + d * DAY_MS)
        for i, d in enumerate(windows)
    ]
    renewing = renews_itself(subs.c.customer_id, subs.c.plan_id)
    # ended: now, or once a renewal Telegram should have charged is late past the grace
    due = [
        and_(
            subs.c.ends_at <= now_ms,
            or_(~renewing, subs.c.ends_at <= now_ms - RENEWAL_GRACE_MS),
        )
    ]
    for d, low, high in bounds:
        column = _REMINDER_COLUMNS[d]
        due.append(
            and_(
                subs.c.ends_at > low,
                subs.c.ends_at <= high,
                column.is_distinct_from(subs.c.ends_at),
            )
        )
    rows = (
        await conn.execute(
            select(
                subs.c.id,
                subs.c.customer_id,
                subs.c.plan_id,
                subs.c.ends_at,
                renewing.label("renewing"),
            )
            .where(subs.c.status == ACTIVE, or_(*due))
            .order_by(subs.c.ends_at, subs.c.id)
            .limit(limit)
        )
    ).all()

    reminded = dict.fromkeys(windows, 0)
    expired = 0
    for row in rows:
        still = (subs.c.id == row.id, subs.c.status == ACTIVE, subs.c.ends_at == row.ends_at)
        if row.ends_at <= now_ms:
            result = await conn.execute(
                update(subs)
                .where(*still)
                .values(status=EXPIRED, expired_for=row.ends_at, updated_at=now_ms)
            )
            if int(result.rowcount or 0) != 1:
                continue
            expired_message = msg.SUBSCRIPTION_EXPIRED.message(
                {"plan_id": row.plan_id, "ends_at": row.ends_at},
                key=f"sub:{row.id}:expired:{row.ends_at}",
                customer_id=row.customer_id,
            )
            await enqueue(conn, expired_message, now_ms=now_ms)
            await emit.subscription_expired(
                conn,
                subscription_id=row.id,
                customer_id=row.customer_id,
                plan_id=row.plan_id,
                ends_at=row.ends_at,
                now_ms=now_ms,
            )
            expired += 1
            continue
        d = next(d for d, low, high in bounds if low < row.ends_at <= high)
        column = _REMINDER_COLUMNS[d]
        result = await conn.execute(
            update(subs)
            .where(*still, column.is_distinct_from(row.ends_at))
            .values({column: row.ends_at})
        )
        if int(result.rowcount or 0) != 1 or row.renewing:
            continue  # Telegram renews it: nothing to remind of
        reminder = msg.SUBSCRIPTION_REMINDER.message(
            {"plan_id": row.plan_id, "ends_at": row.ends_at, "days_before": d},
            key=f"sub:{row.id}:remind{d}:{row.ends_at}",
            customer_id=row.customer_id,
        )
        reminded[d] += await enqueue(conn, reminder, now_ms=now_ms)
    return ReminderReport(reminded=reminded, expired=expired, more=len(rows) >= limit)
