"""Subscriptions: activate, extend, revoke and restore; ``reminders`` reminds and expires.

One subscription per (customer, plan), each with its own end. A credit extends it from
max(now, end) by the plan's days in ONE UPDATE statement, so two payments that settle together
add up (PostgreSQL re-evaluates the expression on the row a concurrent transaction committed).
Every credit is a ``subscription_periods`` row, unique per invoice: crediting an invoice twice
does nothing. A revocation marks its period revoked and replays the remaining ones; crediting
an invoice whose period was revoked (an admin's correction undone, a payment that settles after
all) restores that period as it was credited and replays again, so an undo gives back exactly
the state before it.

Functions here take the caller's connection and never commit: one transaction per decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    String,
    bindparam,
    case,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.clock import DAY_MS
from payments.storage.db import insert_ignore
from payments.storage.schema import subscription_periods as periods
from payments.storage.schema import subscriptions as subs

ACTIVE = "active"
EXPIRED = "expired"

_REVOKE_REASON_MAX = cast(String, periods.c.revoke_reason.type).length or 80


@dataclass(frozen=True)
class Credit:
    subscription_id: int
    period_id: int
    plan_id: str
    starts_at: int
    ends_at: int
    renewed: bool  # the subscription was still running: this period follows on from it
    restored: bool = False  # a revoked period counted again (a correction undone)


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    plan_id: str
    started_at: int  # start of the current uninterrupted run
    ends_at: int
    status: str  # active | expired (an active one may be past its end until the expiry job runs)


@dataclass(frozen=True)
class PeriodView:
    id: int
    subscription_id: int
    plan_id: str
    invoice_id: str | None
    source: str
    days: int
    credited_at: int
    starts_at: int
    ends_at: int
    revoked_at: int | None
    revoke_reason: str | None


# --- pure helpers ----------------------------------------------------------------------------


def replay_schedule(credits: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """(starts_at, ends_at) of each (credited_at, days), in credited order (stable)."""
    out: list[tuple[int, int]] = []
    end: int | None = None
    for credited_at, days in sorted(credits, key=lambda item: item[0]):
        start = credited_at if end is None else max(end, credited_at)
        end = start + days * DAY_MS
        out.append((start, end))
    return out


def replay_periods(credits: Sequence[tuple[int, int]]) -> int | None:
    """The end a subscription has after these (credited_at, days) periods; None if there are none.

    This is what :func:`credit_period` computes step by step (end = max(end, credited_at) + days)
    and what :func:`revoke_period` recomputes from the periods that were not revoked.
    """
    schedule = replay_schedule(credits)
    return schedule[-1][1] if schedule else None


def days_left(view: SubscriptionView, now_ms: int) -> int:
    """Whole days left, rounded up (0 once ended): 9.2 days left shows as 10."""
    if view.status != ACTIVE or view.ends_at <= now_ms:
        return 0
    return math.ceil((view.ends_at - now_ms) / DAY_MS)


def is_active(view: SubscriptionView, now_ms: int) -> bool:
    return view.status == ACTIVE and view.ends_at > now_ms


# --- crediting and revoking ------------------------------------------------------------------


async def credit_period(
    conn: AsyncConnection,
    *,
    customer_id: int,
    plan_id: str,
    days: int,
    now_ms: int,
    invoice_id: str | None,
    source: str = "payment",
) -> Credit | None:
    """Add ``days`` to the customer's subscription of ``plan_id`` (created if missing).

    Returns None, changing nothing, when ``invoice_id`` has been credited already. When its
    period was revoked, it is restored as it was (same credit time and days) and the
    subscription replayed. The customer row must exist (see
    :func:`payments.invoicing.customers.ensure_customer`).
    """
    if days <= 0:
        raise ValueError("days must be positive")
    if invoice_id is not None:
        seen = (
            await conn.execute(
                select(periods.c.id, periods.c.revoked_at).where(periods.c.invoice_id == invoice_id)
            )
        ).first()
        if seen is not None:
            if seen.revoked_at is None:
                return None
            return await _restore_period(conn, int(seen.id), now_ms)
    new_sub = {
        "customer_id": customer_id,
        "plan_id": plan_id,
        "started_at": now_ms,
        "ends_at": now_ms,
        "status": EXPIRED,  # becomes active below, in this transaction
        "updated_at": now_ms,
    }
    created = await insert_ignore(conn, subs, new_sub, ["customer_id", "plan_id"]) == 1
    sub_id: int = (
        await conn.execute(
            select(subs.c.id).where(subs.c.customer_id == customer_id, subs.c.plan_id == plan_id)
        )
    ).scalar_one()

    # The period row first: the unique invoice_id decides, even against a concurrent credit of
    # the same invoice (PostgreSQL makes the second insert wait for the first to commit).
    # starts_at/ends_at are filled in once the subscription has been extended.
    period = {
        "subscription_id": sub_id,
        "customer_id": customer_id,
        "plan_id": plan_id,
        "invoice_id": invoice_id,
        "source": source,
        "days": days,
        "credited_at": now_ms,
        "starts_at": now_ms,
        "ends_at": now_ms,
    }
    period_id = await _insert_period(conn, period)
    if period_id is None:
        if created:  # only possible when the same invoice was credited to another plan
            await conn.execute(delete(subs).where(subs.c.id == sub_id))
        return None

    length = days * DAY_MS
    running = subs.c.ends_at > now_ms
    now = literal(now_ms, BigInteger)
    ends_at: int = (
        await conn.execute(
            update(subs)
            .where(subs.c.id == sub_id)
            .values(
                ends_at=case((running, subs.c.ends_at), else_=now) + length,
                started_at=case((running, subs.c.started_at), else_=now),
                status=ACTIVE,
                updated_at=now_ms,
            )
            .returning(subs.c.ends_at)
        )
    ).scalar_one()
    starts_at = ends_at - length
    await conn.execute(
        update(periods)
        .where(periods.c.id == period_id)
        .values(starts_at=starts_at, ends_at=ends_at)
    )
    return Credit(
        subscription_id=sub_id,
        period_id=period_id,
        plan_id=plan_id,
        starts_at=starts_at,
        ends_at=ends_at,
        renewed=starts_at > now_ms,
    )


@dataclass(frozen=True)
class CreditRequest:
    """One invoice to credit in :func:`credit_periods`."""

    invoice_id: str
    customer_id: int
    plan_id: str
    days: int
    source: str = "payment"


async def credit_periods(
    conn: AsyncConnection, requests: Sequence[CreditRequest], *, now_ms: int
) -> dict[str, Credit | None]:
    """:func:`credit_period` for many invoices at once, by invoice id, in a few statements
    whatever their number; the same rules (a period unique per invoice decides, an invoice
    credited already changes nothing, a revoked one is restored). Invoices sharing a
    subscription, and revoked periods, are credited one by one in the order given."""
    out: dict[str, Credit | None] = {}
    if not requests:
        return out
    for r in requests:
        if r.days <= 0:
            raise ValueError("days must be positive")
    ids = [r.invoice_id for r in requests]
    seen: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(periods.c.id, periods.c.invoice_id, periods.c.revoked_at).where(
                periods.c.invoice_id.in_(ids[start : start + 500])
            )
        )
        seen.update({row.invoice_id: row for row in rows})
    pairs: dict[tuple[int, str], int] = {}
    for r in requests:
        if r.invoice_id not in seen:
            key = (r.customer_id, r.plan_id)
            pairs[key] = pairs.get(key, 0) + 1
    fast = [
        r for r in requests if r.invoice_id not in seen and pairs[(r.customer_id, r.plan_id)] == 1
    ]
    if fast:
        out.update(await _credit_distinct(conn, fast, now_ms))
    for r in requests:  # the rest in order: each credit builds on the one before
        if r.invoice_id in out:
            continue
        if r.invoice_id in seen and seen[r.invoice_id].revoked_at is None:
            out[r.invoice_id] = None
            continue
        out[r.invoice_id] = await credit_period(
            conn,
            customer_id=r.customer_id,
            plan_id=r.plan_id,
            days=r.days,
            now_ms=now_ms,
            invoice_id=r.invoice_id,
            source=r.source,
        )
    return out


async def _credit_distinct(
    conn: AsyncConnection, requests: Sequence[CreditRequest], now_ms: int
) -> dict[str, Credit | None]:
    """New periods for invoices of distinct subscriptions, none credited before: the steps of
    :func:`credit_period`, each one statement for them all (the subscriptions' update one per
    distinct length)."""
    out: dict[str, Credit | None] = {}
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    created: set[int] = set()
    sub_ids: dict[tuple[int, str], int] = {}
    for start in range(0, len(requests), 500):
        chunk = requests[start : start + 500]
        new_subs = [
            {
                "customer_id": r.customer_id,
                "plan_id": r.plan_id,
                "started_at": now_ms,
                "ends_at": now_ms,
                "status": EXPIRED,  # becomes active below, in this transaction
                "updated_at": now_ms,
            }
            for r in chunk
        ]
        rows = await conn.execute(
            dialect_insert(subs)
            .on_conflict_do_nothing(index_elements=["customer_id", "plan_id"])
            .returning(subs.c.id),
            new_subs,
        )
        created.update(int(row.id) for row in rows)
        customers = sorted({r.customer_id for r in chunk})
        wanted = {(r.customer_id, r.plan_id) for r in chunk}
        rows = await conn.execute(
            select(subs.c.id, subs.c.customer_id, subs.c.plan_id).where(
                subs.c.customer_id.in_(customers)
            )
        )
        for row in rows:
            key = (int(row.customer_id), str(row.plan_id))
            if key in wanted:
                sub_ids[key] = int(row.id)
    # The period rows first: the unique invoice_id decides, even against a concurrent credit of
    # the same invoice (PostgreSQL makes the second insert wait for the first to commit).
    period_ids: dict[str, int] = {}
    for start in range(0, len(requests), 500):
        chunk = requests[start : start + 500]
        rows = await conn.execute(
            dialect_insert(periods)
            .on_conflict_do_nothing(index_elements=["invoice_id"])
            .returning(periods.c.id, periods.c.invoice_id),
            [
                {
                    "subscription_id": sub_ids[(r.customer_id, r.plan_id)],
                    "customer_id": r.customer_id,
                    "plan_id": r.plan_id,
                    "invoice_id": r.invoice_id,
                    "source": r.source,
                    "days": r.days,
                    "credited_at": now_ms,
                    "starts_at": now_ms,
                    "ends_at": now_ms,
                }
                for r in chunk
            ],
        )
        period_ids.update({str(row.invoice_id): int(row.id) for row in rows})
    lost = [r for r in requests if r.invoice_id not in period_ids]
    for r in lost:
        out[r.invoice_id] = None
        sub_id = sub_ids[(r.customer_id, r.plan_id)]
        if sub_id in created:  # only possible when the same invoice was credited to another plan
            await conn.execute(delete(subs).where(subs.c.id == sub_id))
    won = [r for r in requests if r.invoice_id in period_ids]
    by_days: dict[int, list[CreditRequest]] = {}
    for r in won:
        by_days.setdefault(r.days, []).append(r)
    running = subs.c.ends_at > now_ms
    now = literal(now_ms, BigInteger)
    ends: dict[int, int] = {}
    for days, group in sorted(by_days.items()):
        length = days * DAY_MS
        ids = [sub_ids[(r.customer_id, r.plan_id)] for r in group]
        for start in range(0, len(ids), 500):
            rows = await conn.execute(
                update(subs)
                .where(subs.c.id.in_(ids[start : start + 500]))
                .values(
                    ends_at=case((running, subs.c.ends_at), else_=now) + length,
                    started_at=case((running, subs.c.started_at), else_=now),
                    status=ACTIVE,
                    updated_at=now_ms,
                )
                .returning(subs.c.id, subs.c.ends_at)
            )
            ends.update({int(row.id): int(row.ends_at) for row in rows})
    spans = []
    for r in won:
        sub_id = sub_ids[(r.customer_id, r.plan_id)]
        ends_at = ends[sub_id]
        starts_at = ends_at - r.days * DAY_MS
        spans.append({"b_id": period_ids[r.invoice_id], "b_starts": starts_at, "b_ends": ends_at})
        out[r.invoice_id] = Credit(
            subscription_id=sub_id,
            period_id=period_ids[r.invoice_id],
            plan_id=r.plan_id,
            starts_at=starts_at,
            ends_at=ends_at,
            renewed=starts_at > now_ms,
        )
    if spans:
        await conn.execute(_SET_SPAN, spans)
    return out


_SET_SPAN = (
    update(periods)
    .where(periods.c.id == bindparam("b_id"))
    .values(starts_at=bindparam("b_starts"), ends_at=bindparam("b_ends"))
)


async def _insert_period(conn: AsyncConnection, values: dict[str, object]) -> int | None:
    """INSERT the period, ignoring a duplicate invoice_id; its id, or None when it existed."""
    if values["invoice_id"] is None:
        stmt = periods.insert().values(**values).returning(periods.c.id)
    else:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = (
            dialect_insert(periods)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["invoice_id"])
            .returning(periods.c.id)
        )
    row = (await conn.execute(stmt)).first()
    return None if row is None else int(row.id)


async def revoke_period(
    conn: AsyncConnection, *, invoice_id: str, now_ms: int, reason: str
) -> int | None:
    """Revoke the period credited for ``invoice_id``; returns the subscription's new end.

    The end is recomputed by replaying the remaining periods in credited order (and each
    period's starts/ends is updated to match). With no period left the subscription ends now
    (or stays ended). Returns None when the invoice has no period or it is already revoked. An
    end in the past is left to :func:`run_reminders_and_expiry`, which expires and tells.
    """
    row = (
        await conn.execute(
            update(periods)
            .where(periods.c.invoice_id == invoice_id, periods.c.revoked_at.is_(None))
            .values(revoked_at=now_ms, revoke_reason=reason[:_REVOKE_REASON_MAX])
            .returning(periods.c.subscription_id)
        )
    ).first()
    if row is None:
        return None
    return await _replay(conn, int(row.subscription_id), now_ms)


async def _restore_period(conn: AsyncConnection, period_id: int, now_ms: int) -> Credit | None:
    """Undo a revocation: the period counts again from when it was credited."""
    row = (
        await conn.execute(
            update(periods)
            .where(periods.c.id == period_id, periods.c.revoked_at.is_not(None))
            .values(revoked_at=None, revoke_reason=None)
            .returning(periods.c.subscription_id, periods.c.plan_id)
        )
    ).first()
    if row is None:
        return None
    sub_id = int(row.subscription_id)
    await _replay(conn, sub_id, now_ms)
    restored = (
        await conn.execute(
            select(periods.c.starts_at, periods.c.ends_at).where(periods.c.id == period_id)
        )
    ).one()
    ends_at: int = (
        await conn.execute(select(subs.c.ends_at).where(subs.c.id == sub_id))
    ).scalar_one()
    return Credit(
        subscription_id=sub_id,
        period_id=period_id,
        plan_id=str(row.plan_id),
        starts_at=int(restored.starts_at),
        ends_at=ends_at,
        renewed=int(restored.starts_at) > now_ms,
        restored=True,
    )


async def _replay(conn: AsyncConnection, sub_id: int, now_ms: int) -> int:
    """Recompute a subscription from its periods that are not revoked (each period's
    starts/ends too); returns its new end. With no period left it ends now (or stays ended).
    An end in the past is left to :func:`run_reminders_and_expiry`, which expires and tells;
    an end in the future makes it active."""
    # Lock the subscription before reading its periods, so a credit committing meanwhile is
    # either seen here or applied on top of our result (never overwritten by it).
    lock = select(subs.c.ends_at).where(subs.c.id == sub_id)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()
    old_end: int = (await conn.execute(lock)).scalar_one()

    remaining = (
        await conn.execute(
            select(
                periods.c.id,
                periods.c.credited_at,
                periods.c.days,
                periods.c.starts_at,
                periods.c.ends_at,
            )
            .where(periods.c.subscription_id == sub_id, periods.c.revoked_at.is_(None))
            .order_by(periods.c.credited_at, periods.c.id)
        )
    ).all()
    schedule = replay_schedule([(p.credited_at, p.days) for p in remaining])
    for p, (start, end) in zip(remaining, schedule, strict=True):
        if (p.starts_at, p.ends_at) != (start, end):
            await conn.execute(
                update(periods).where(periods.c.id == p.id).values(starts_at=start, ends_at=end)
            )
    new_end = schedule[-1][1] if schedule else min(old_end, now_ms)
    values: dict[str, Any] = {"ends_at": new_end, "updated_at": now_ms}
    if new_end > now_ms:
        values["status"] = ACTIVE
    await conn.execute(update(subs).where(subs.c.id == sub_id).values(**values))
    return new_end


# --- reading ---------------------------------------------------------------------------------


def _view(row: Any) -> SubscriptionView:
    return SubscriptionView(**row._asdict())


# exactly the dataclasses' fields, by name
_VIEW_COLUMNS = [subs.c[f.name] for f in fields(SubscriptionView)]
_PERIOD_COLUMNS = [periods.c[f.name] for f in fields(PeriodView)]


async def get_subscriptions(conn: AsyncConnection, customer_id: int) -> list[SubscriptionView]:
    """Every subscription of the customer (active and expired), by plan id."""
    rows = await conn.execute(
        select(*_VIEW_COLUMNS).where(subs.c.customer_id == customer_id).order_by(subs.c.plan_id)
    )
    return [_view(row) for row in rows]


async def get_subscription(
    conn: AsyncConnection, customer_id: int, plan_id: str
) -> SubscriptionView | None:
    row = (
        await conn.execute(
            select(*_VIEW_COLUMNS).where(
                subs.c.customer_id == customer_id, subs.c.plan_id == plan_id
            )
        )
    ).first()
    return None if row is None else _view(row)


async def history(conn: AsyncConnection, customer_id: int) -> list[PeriodView]:
    """Every period credited to the customer, revoked ones included, in credited order."""
    rows = await conn.execute(
        select(*_PERIOD_COLUMNS)
        .where(periods.c.customer_id == customer_id)
        .order_by(periods.c.credited_at, periods.c.id)
    )
    return [PeriodView(**row._asdict()) for row in rows]


async def count_active(conn: AsyncConnection, now_ms: int) -> int:
    """Subscriptions running now (by end date, whether or not the expiry job has run)."""
    stmt = select(func.count()).where(subs.c.status == ACTIVE, subs.c.ends_at > now_ms)
    return int((await conn.execute(stmt)).scalar_one())
