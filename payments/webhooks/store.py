"""Webhook deliveries in the database: fan-out of events to URLs, claiming, attempt outcomes.

Fan-out: for each configured URL a cursor in ``kv`` says up to which event id deliveries exist.
A URL seen for the first time starts after the newest event (switching webhooks on does not send
the history). Event ids can commit out of order on PostgreSQL (two transactions, the later id
commits first), so the cursor only moves past events older than :data:`SETTLE_MS`; younger ones
are looked at again on each run (``(event_id, url)`` is unique, so that is harmless).

Claiming works like the outbox (a lease plus a token; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
with one more rule: a delivery is due only when no earlier event with the same ``order_key``
is still pending for its URL, so each receiver gets one customer's events in order. An event
given up on (``failed``) no longer holds back the ones behind it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import String, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import notify
from payments.clock import DAY_MS, MINUTE_MS
from payments.notify import Notifier
from payments.outbox import backoff_ms
from payments.storage.db import Database, insert_ignore
from payments.storage.kv import get_int, set_value
from payments.storage.schema import merchant_events as events
from payments.storage.schema import webhook_attempts as attempts
from payments.storage.schema import webhook_deliveries as deliveries

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = (DELIVERED, PENDING, FAILED)

GIVE_UP_AFTER_MS = 3 * DAY_MS  # still failing 3 days after its first attempt -> failed
SETTLE_MS = 5 * MINUTE_MS  # events younger than this are fanned out again on the next run
FANOUT_BATCH = 1000

_ERROR_MAX = cast(String, deliveries.c.last_error.type).length or 300


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def cursor_key(url: str) -> str:
    """The ``kv`` key of a URL's fan-out cursor (short: kv keys are at most 64 characters)."""
    return f"webhook:{url_hash(url)}"


def safe_url(url: str) -> str:
    """Scheme, host and path only: no credentials, no query string (it may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


# --- fan-out -----------------------------------------------------------------------------------


async def fan_out(db: Database, urls: Sequence[str], *, now_ms: int) -> None:
    """Create the deliveries of new events for every URL (one transaction per URL)."""
    for url in urls:
        async with db.transaction() as conn:
            await _fan_out_url(conn, url, now_ms)


async def _fan_out_url(conn: AsyncConnection, url: str, now_ms: int) -> None:
    key = cursor_key(url)
    cursor = await get_int(conn, key)
    if cursor is None:  # a new URL: start after the newest event
        newest = (await conn.execute(select(func.max(events.c.id)))).scalar_one_or_none()
        await set_value(conn, key, int(newest or 0), now_ms)
        return
    scan, new_cursor, settled = cursor, cursor, True
    while True:
        rows = (
            await conn.execute(
                select(events.c.id, events.c.order_key, events.c.created_at)
                .where(events.c.id > scan)
                .order_by(events.c.id)
                .limit(FANOUT_BATCH)
            )
        ).all()
        if not rows:
            break
        await insert_ignore(
            conn,
            deliveries,
            [
                {
                    "event_id": row.id,
                    "url": url,
                    "order_key": row.order_key,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now_ms,
                    "give_up_at": now_ms + GIVE_UP_AFTER_MS,
                    "claimed_until": 0,
                    "created_at": now_ms,
                }
                for row in rows
            ],
            ["event_id", "url"],
        )
        for row in rows:
            settled = settled and row.created_at <= now_ms - SETTLE_MS
            if settled:
                new_cursor = row.id
        scan = rows[-1].id
        if len(rows) < FANOUT_BATCH:
            break
    if new_cursor != cursor:
        await set_value(conn, key, new_cursor, now_ms)


# --- claiming and outcomes -----------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery with its event. ``claim_token`` proves the claim."""

    id: int
    url: str
    event_id: int
    public_id: str
    type: str
    created_at: int  # the event's
    data: dict[str, Any]
    attempts: int
    give_up_at: int
    claim_token: str


async def claim_due(
    db: Database,
    urls: Sequence[str],
    *,
    now_ms: int,
    limit: int = 50,
    lease_ms: int = 60_000,
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries to ``urls`` for ``lease_ms`` (own transaction): at
    most one per (URL, order key), the earliest event still pending."""
    if limit <= 0 or lease_ms <= 0:
        raise ValueError("limit and lease_ms must be positive")
    if not urls:
        return []
    earlier = deliveries.alias("earlier")
    blocked = (
        select(earlier.c.id)
        .where(
            earlier.c.url == deliveries.c.url,
            earlier.c.order_key == deliveries.c.order_key,
            earlier.c.status == PENDING,
            earlier.c.event_id < deliveries.c.event_id,
        )
        .exists()
    )
    stmt = (
        select(
            deliveries.c.id,
            deliveries.c.url,
            deliveries.c.event_id,
            deliveries.c.attempts,
            deliveries.c.give_up_at,
            events.c.public_id,
            events.c.type,
            events.c.created_at,
            events.c.payload,
        )
        .select_from(deliveries.join(events, events.c.id == deliveries.c.event_id))
        .where(
            deliveries.c.status == PENDING,
            deliveries.c.next_attempt_at <= now_ms,
            deliveries.c.claimed_until <= now_ms,
            deliveries.c.url.in_(list(urls)),
            ~blocked,
        )
        .order_by(deliveries.c.event_id, deliveries.c.id)
        .limit(limit)
    )
    token = secrets.token_hex(16)
    async with db.transaction() as conn:
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=deliveries)
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return []
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([row.id for row in rows]))
            .values(claimed_until=now_ms + lease_ms, claim_token=token)
        )
    return [
        Claimed(
            id=row.id,
            url=row.url,
            event_id=row.event_id,
            public_id=row.public_id,
            type=row.type,
            created_at=row.created_at,
            data=json.loads(row.payload),
            attempts=row.attempts,
            give_up_at=row.give_up_at,
            claim_token=token,
        )
        for row in rows
    ]


async def record_attempt(
    db: Database,
    claimed: Claimed,
    *,
    now_ms: int,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> str:
    """Record one attempt and its outcome; returns the delivery's new status.

    2xx: delivered. Anything else: retried with backoff (5 s doubling, at most an hour apart)
    until ``give_up_at``, then failed, and the admins are told (at most once a day per URL).
    ``error`` is stored for the admins: it must never carry a secret.
    """
    ok = status_code is not None and 200 <= status_code < 300
    error = None if error is None else error[:_ERROR_MAX]
    async with db.transaction() as conn:
        await conn.execute(
            insert(attempts).values(
                delivery_id=claimed.id,
                attempted_at=now_ms,
                status_code=status_code,
                error=error,
                duration_ms=max(0, duration_ms),
            )
        )
        ours = (
            deliveries.c.id == claimed.id,
            deliveries.c.claim_token == claimed.claim_token,
            deliveries.c.status == PENDING,
        )
        common = {
            "attempts": deliveries.c.attempts + 1,
            "claimed_until": 0,
            "claim_token": None,
            "last_status": status_code,
            "last_error": error,
        }
        if ok:
            await conn.execute(
                update(deliveries)
                .where(*ours)
                .values(status=DELIVERED, delivered_at=now_ms, **common)
            )
            return DELIVERED
        # three days of retries from the first attempt: a delivery that waited behind a failing
        # one of the same order key gets its own three days, not one try at the end of theirs
        give_up_at = claimed.give_up_at
        if claimed.attempts == 0:
            give_up_at = max(give_up_at, now_ms + GIVE_UP_AFTER_MS)
        gave_up = now_ms >= give_up_at
        status = FAILED if gave_up else PENDING
        result = await conn.execute(
            update(deliveries)
            .where(*ours)
            .values(
                status=status,
                give_up_at=give_up_at,
                next_attempt_at=now_ms + backoff_ms(claimed.attempts),
                **common,
            )
        )
        if gave_up and int(result.rowcount or 0) == 1:
            await _tell_admins(conn, claimed, now_ms, status_code, error)
    return status


async def _tell_admins(
    conn: AsyncConnection,
    claimed: Claimed,
    now_ms: int,
    status_code: int | None,
    error: str | None,
) -> None:
    """One alert per URL and day, naming the first delivery given up on that day."""
    await Notifier(conn, now_ms).admins(
        notify.ADMIN_WEBHOOK_FAILED,
        f"webhook:{url_hash(claimed.url)}:failed:{now_ms // DAY_MS}",
        url=safe_url(claimed.url),
        delivery_id=claimed.id,
        event_id=claimed.public_id,
        event_type=claimed.type,
        attempts=claimed.attempts + 1,
        error=error or (f"HTTP {status_code}" if status_code is not None else ""),
    )
