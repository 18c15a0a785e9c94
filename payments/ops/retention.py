"""History retention: a daily prune of what is old and settled, in bounded chunks.

What goes after ``RETENTION_DAYS`` (counted from the row's last event):

- outbox messages sent, or given up because the customer blocked the bot (``unreachable``);
- webhook attempts of deliveries no longer pending (the delivery row keeps the attempt count
  and the last status and error), deliveries that were delivered, and merchant events none of
  whose deliveries is left (every one delivered and pruned, or no URL was configured);
- the photos recorded for invoices closed that long ago (their captions are final), invite
  links that expired that long ago, and "waiting for a claim" rows that ran out;
- the raw OKX record of a deposit never attached to an invoice and already decided (the row,
  its amounts, addresses and tx hash stay; only the JSON blob is emptied).

What is never deleted: invoices, deposits, claims, subscriptions and their periods (the
payments and credits), memberships, customers, reservations, admin decisions, anything
pending or failed (outbox messages, webhook deliveries and the events they deliver), and
anything a kept row points at.

Each chunk of at most ``chunk`` rows is one transaction, so a year of backlog never holds a
long lock; the next chunk starts after the last key handled (no rescans over what was just
deleted). Running it again deletes nothing more: every condition is on the rows themselves.
The newest row of each table with a generated id is kept: SQLite reuses the highest id once
it is deleted, and a webhook URL's cursor is an event id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.clock import DAY_MS
from payments.delivery.outbox import SENT, UNREACHABLE
from payments.delivery.webhooks.store import DELIVERED, PENDING
from payments.storage.db import Database
from payments.storage.schema import (
    access_links,
    claim_waits,
    deposits,
    invoice_messages,
    invoices,
    merchant_events,
    outbox,
    webhook_attempts,
    webhook_deliveries,
)

CHUNK = 1_000  # rows per transaction
EMPTY_RAW = ""  # what a pruned deposit's raw record becomes (the column is NOT NULL)


@dataclass(frozen=True)
class PruneReport:
    """Rows deleted (``deposit_payloads``: raw records emptied) by one prune."""

    outbox: int = 0
    webhook_attempts: int = 0
    webhook_deliveries: int = 0
    merchant_events: int = 0
    invoice_messages: int = 0
    access_links: int = 0
    claim_waits: int = 0
    deposit_payloads: int = 0
    chunks: int = 0  # transactions that changed something

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self) if f.name != "chunks")


# one chunk: (connection, cutoff, after, chunk size) -> (rows changed, last key or None: done)
Step = Callable[[AsyncConnection, int, Any, int], Awaitable[tuple[int, Any]]]


async def prune(db: Database, *, now_ms: int, days: int, chunk: int = CHUNK) -> PruneReport:
    """Delete (or empty) what is older than ``days`` and settled; see the module docstring."""
    if days <= 0:
        return PruneReport()
    cutoff = now_ms - days * DAY_MS
    async with db.read() as conn:
        newest = {
            table.name: (await conn.execute(select(func.max(table.c.id)))).scalar_one_or_none()
            for table in (outbox, webhook_attempts, webhook_deliveries, merchant_events)
        }

    def below(name: str) -> int:
        return int(newest[name] or 0)

    counts: dict[str, int] = {}
    chunks = 0
    steps: list[tuple[str, Step, Any]] = [
        ("webhook_attempts", _attempts(below("webhook_attempts")), 0),
        ("webhook_deliveries", _deliveries(below("webhook_deliveries")), 0),
        ("merchant_events", _events(below("merchant_events")), 0),
        ("outbox", _outbox(below("outbox")), 0),
        ("invoice_messages", _invoice_messages, ""),
        ("access_links", _access_links, ""),
        ("claim_waits", _claim_waits, 0),
        ("deposit_payloads", _deposit_payloads, ""),
    ]
    for name, step, start in steps:
        after = start
        while True:
            async with db.transaction() as conn:
                changed, after = await step(conn, cutoff, after, chunk)
            counts[name] = counts.get(name, 0) + changed
            chunks += 1 if changed else 0
            if after is None:
                break
    return PruneReport(chunks=chunks, **counts)


def _last(keys: list[Any], chunk: int) -> Any:
    """Where the next chunk starts, or None when this one was the last."""
    return keys[-1] if len(keys) >= chunk else None


def _attempts(below: int) -> Step:
    a, d = webhook_attempts.c, webhook_deliveries.c

    async def step(conn: AsyncConnection, cutoff: int, after: int, chunk: int) -> tuple[int, Any]:
        settled = exists().where(d.id == a.delivery_id, d.status != PENDING)
        ids = list(
            (
                await conn.execute(
                    select(a.id)
                    .where(
                        a.id > after,
                        a.id < below,
                        a.attempted_at < cutoff,
                        settled,
                    )
                    .order_by(a.id)
                    .limit(chunk)
                )
            ).scalars()
        )
        if not ids:
            return 0, None
        result = await conn.execute(delete(webhook_attempts).where(a.id.in_(ids)))
        return int(result.rowcount or 0), _last(ids, chunk)

    return step


def _deliveries(below: int) -> Step:
    d = webhook_deliveries.c

    async def step(conn: AsyncConnection, cutoff: int, after: int, chunk: int) -> tuple[int, Any]:
        old = (d.status == DELIVERED, d.delivered_at < cutoff)
        ids = list(
            (
                await conn.execute(
                    select(d.id).where(d.id > after, d.id < below, *old).order_by(d.id).limit(chunk)
                )
            ).scalars()
        )
        if not ids:
            return 0, None
        # an attempt younger than the cutoff (none, unless the clock moved) must not block it
        await conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
        result = await conn.execute(delete(webhook_deliveries).where(d.id.in_(ids), *old))
        return int(result.rowcount or 0), _last(ids, chunk)

    return step


def _events(below: int) -> Step:
    e, d = merchant_events.c, webhook_deliveries.c

    async def step(conn: AsyncConnection, cutoff: int, after: int, chunk: int) -> tuple[int, Any]:
        unreferenced = ~exists().where(d.event_id == e.id)
        ids = list(
            (
                await conn.execute(
                    select(e.id)
                    .where(e.id > after, e.id < below, e.created_at < cutoff, unreferenced)
                    .order_by(e.id)
                    .limit(chunk)
                )
            ).scalars()
        )
        if not ids:
            return 0, None
        result = await conn.execute(delete(merchant_events).where(e.id.in_(ids), unreferenced))
        return int(result.rowcount or 0), _last(ids, chunk)

    return step


def _outbox(below: int) -> Step:
    o = outbox.c

    async def step(conn: AsyncConnection, cutoff: int, after: int, chunk: int) -> tuple[int, Any]:
        done = (
            o.status.in_((SENT, UNREACHABLE)),
            func.coalesce(o.sent_at, o.created_at) < cutoff,
            o.created_at < cutoff,
        )
        ids = list(
            (
                await conn.execute(
                    select(o.id)
                    .where(o.id > after, o.id < below, *done)
                    .order_by(o.id)
                    .limit(chunk)
                )
            ).scalars()
        )
        if not ids:
            return 0, None
        result = await conn.execute(delete(outbox).where(o.id.in_(ids), *done))
        return int(result.rowcount or 0), _last(ids, chunk)

    return step


async def _invoice_messages(
    conn: AsyncConnection, cutoff: int, after: str, chunk: int
) -> tuple[int, Any]:
    m, i = invoice_messages.c, invoices.c
    ids = list(
        (
            await conn.execute(
                select(m.invoice_id)
                .distinct()
                .select_from(invoice_messages.join(invoices, i.id == m.invoice_id))
                .where(
                    m.invoice_id > after,
                    m.created_at < cutoff,
                    i.status.in_(sorted(st.CLOSED_STATUSES)),
                    i.updated_at < cutoff,
                )
                .order_by(m.invoice_id)
                .limit(chunk)
            )
        ).scalars()
    )
    if not ids:
        return 0, None
    closed = select(i.id).where(
        i.id.in_(ids), i.status.in_(sorted(st.CLOSED_STATUSES)), i.updated_at < cutoff
    )
    result = await conn.execute(
        delete(invoice_messages).where(m.invoice_id.in_(closed), m.created_at < cutoff)
    )
    return int(result.rowcount or 0), _last(ids, chunk)


async def _access_links(
    conn: AsyncConnection, cutoff: int, after: str, chunk: int
) -> tuple[int, Any]:
    c = access_links.c
    links = list(
        (
            await conn.execute(
                select(c.link)
                .where(c.link > after, c.expires_at < cutoff, c.created_at < cutoff)
                .order_by(c.link)
                .limit(chunk)
            )
        ).scalars()
    )
    if not links:
        return 0, None
    result = await conn.execute(
        delete(access_links).where(c.link.in_(links), c.expires_at < cutoff)
    )
    return int(result.rowcount or 0), _last(links, chunk)


async def _claim_waits(
    conn: AsyncConnection, cutoff: int, after: int, chunk: int
) -> tuple[int, Any]:
    c = claim_waits.c  # customer ids (Telegram user ids) are positive
    query = select(c.customer_id).where(c.customer_id > after, c.until < cutoff)
    ids = list((await conn.execute(query.order_by(c.customer_id).limit(chunk))).scalars())
    if not ids:
        return 0, None
    result = await conn.execute(delete(claim_waits).where(c.customer_id.in_(ids), c.until < cutoff))
    return int(result.rowcount or 0), _last(ids, chunk)


async def _deposit_payloads(
    conn: AsyncConnection, cutoff: int, after: str, chunk: int
) -> tuple[int, Any]:
    c = deposits.c
    unrelated = (
        c.invoice_id.is_(None),
        c.disposition == st.DEP_UNMATCHED,
        c.needs_decision.is_(False),
        c.updated_at < cutoff,
        c.raw != EMPTY_RAW,
    )
    ids = list(
        (
            await conn.execute(
                select(c.dep_id).where(c.dep_id > after, *unrelated).order_by(c.dep_id).limit(chunk)
            )
        ).scalars()
    )
    if not ids:
        return 0, None
    result = await conn.execute(
        update(deposits).where(c.dep_id.in_(ids), *unrelated).values(raw=EMPTY_RAW)
    )
    return int(result.rowcount or 0), _last(ids, chunk)
