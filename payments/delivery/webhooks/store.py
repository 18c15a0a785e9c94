"""Webhook deliveries in the database: fan-out of events to URLs, claiming, attempt outcomes.

Fan-out: the URLs in force are rows of ``webhook_endpoints`` (:func:`sync_urls` writes them at
start-up from MERCHANT_WEBHOOK_URLS). The transaction that records an event also creates its
pending delivery to each of them (:func:`deliver_new`), so an event exists exactly when its
deliveries do, however late its transaction commits: there is no cursor for it to slip behind.
A URL seen for the first time gets the events recorded from then on (switching webhooks on does
not send the history). A URL that is no longer configured loses its row: nothing new is
created for it, re-adding it later does not replay what happened meanwhile, and whatever was
still pending for it is shown to the admins (:func:`gone_urls`) until they move it to a current
URL or drop it (:mod:`payments.delivery.webhooks.monitor`).

Claiming works like the outbox (a lease plus a token; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
with one more rule: a delivery is due only when no earlier event with the same ``order_key``
is still pending for its URL, so each receiver gets one customer's events in order. An event
given up on (``failed``) or dropped no longer holds back the ones behind it. A run of the
singleton jobs claims under the replica's lease and re-asserts each claim, with the lease,
right before its POST (:func:`reassert`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from payments.botstate.lease import Lease, held_clause, holds
from payments.clock import DAY_MS
from payments.delivery import messages as msg
from payments.delivery.outbox import backoff_ms, enqueue
from payments.storage.db import Database, insert_ignore
from payments.storage.kv import get_int, get_value
from payments.storage.schema import kv
from payments.storage.schema import merchant_events as events
from payments.storage.schema import webhook_attempts as attempts
from payments.storage.schema import webhook_deliveries as deliveries
from payments.storage.schema import webhook_endpoints as endpoints

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
DROPPED = "dropped"  # an admin dropped it (its URL is no longer configured)
STATUSES = (DELIVERED, PENDING, FAILED, DROPPED)

GIVE_UP_AFTER_MS = 3 * DAY_MS  # still failing 3 days after its first attempt -> failed
GONE_MARKER = "webhooks:gone"  # kv: the URLs that are gone the admins were last told about

_ERROR_MAX = cast(String, deliveries.c.last_error.type).length or 300
_CURSOR = re.compile(r"webhook:[0-9a-f]{16}")  # an earlier version's per-URL fan-out cursor


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def url_id(url: str) -> str:
    """The short id admins name a URL by (``/webhooks move``): stable, says nothing of a token."""
    return url_hash(url)[:8]


def cursor_key(url: str) -> str:
    """The ``kv`` key of a URL's fan-out cursor in earlier versions (read once, then deleted)."""
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

_DELIVERY_COLUMNS = [
    "event_id",
    "url",
    "order_key",
    "status",
    "attempts",
    "next_attempt_at",
    "give_up_at",
    "claimed_until",
    "created_at",
]


def _new_delivery(now_ms: int) -> list[Any]:
    """The columns after ``event_id, url, order_key`` of a new pending delivery."""
    return [
        literal(PENDING, String),
        literal(0, Integer),
        literal(now_ms, BigInteger),
        literal(now_ms + GIVE_UP_AFTER_MS, BigInteger),
        literal(0, BigInteger),
        literal(now_ms, BigInteger),
    ]


async def _insert_deliveries(conn: AsyncConnection, rows: Select[Any]) -> None:
    """INSERT ... SELECT, a delivery that exists already (same event and URL) left as it is."""
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(deliveries)
        .from_select(_DELIVERY_COLUMNS, rows)
        .on_conflict_do_nothing(index_elements=["event_id", "url"])
    )
    await conn.execute(stmt)


async def deliver_new(conn: AsyncConnection, public_ids: Sequence[str], *, now_ms: int) -> None:
    """In the transaction that recorded these events: a pending delivery of each to every URL
    in force. (Ids of events that were not recorded, their key being taken, match nothing.)"""
    ids = list(dict.fromkeys(public_ids))
    for start in range(0, len(ids), 500):
        rows = (
            select(events.c.id, endpoints.c.url, events.c.order_key, *_new_delivery(now_ms))
            .select_from(events.join(endpoints, true()))
            .where(events.c.public_id.in_(ids[start : start + 500]))
        )
        await _insert_deliveries(conn, rows)


@dataclass(frozen=True)
class GoneUrl:
    """A URL no longer in MERCHANT_WEBHOOK_URLS that still has pending deliveries."""

    id: str  # url_id: what /webhooks move and /webhooks drop take
    url: str  # scheme, host and path only
    pending: int
    oldest_at: int  # when the oldest of them was created


async def gone_urls(conn: AsyncConnection, urls: Sequence[str]) -> list[GoneUrl]:
    """Pending deliveries to URLs that are not in ``urls``, per URL (oldest first)."""
    rows = await conn.execute(
        select(deliveries.c.url, func.count(), func.min(deliveries.c.created_at))
        .where(deliveries.c.status == PENDING, deliveries.c.url.not_in(list(urls)))
        .group_by(deliveries.c.url)
    )
    gone = [
        GoneUrl(id=url_id(url), url=safe_url(url), pending=int(count), oldest_at=int(oldest))
        for url, count, oldest in rows
    ]
    return sorted(gone, key=lambda g: (g.oldest_at, g.id))


async def sync_urls(db: Database, urls: Sequence[str], *, now_ms: int) -> list[GoneUrl]:
    """Make ``urls`` the URLs in force (start-up, one transaction) and return what is pending
    for URLs that are gone. A new URL gets the events recorded from now on (one that an earlier
    version followed with a cursor first gets what it had not fanned out yet). A URL that is
    gone is forgotten, so adding it again later does not replay the events in between. When the
    set of URLs with pending deliveries left behind changed since the admins were last told,
    they get one alert listing them."""
    wanted = list(dict.fromkeys(urls))
    async with db.transaction() as conn:
        current = set((await conn.execute(select(endpoints.c.url))).scalars())
        for url in wanted:
            if url in current:
                continue
            await insert_ignore(conn, endpoints, {"url": url, "added_at": now_ms}, ["url"])
            cursor = await get_int(conn, cursor_key(url))
            if cursor is not None:  # an earlier version's cursor: catch up from it, once
                await _insert_deliveries(
                    conn,
                    select(
                        events.c.id,
                        literal(url, String),
                        events.c.order_key,
                        *_new_delivery(now_ms),
                    ).where(events.c.id > cursor),
                )
        gone_rows = [url for url in current if url not in wanted]
        if gone_rows:
            await conn.execute(delete(endpoints).where(endpoints.c.url.in_(gone_rows)))
        cursors = (await conn.execute(select(kv.c.key).where(kv.c.key.like("webhook:%")))).scalars()
        stale = [key for key in cursors if _CURSOR.fullmatch(key)]
        if stale:
            await conn.execute(delete(kv).where(kv.c.key.in_(stale)))
        gone = await gone_urls(conn, wanted)
        await _tell_admins_gone(conn, gone, now_ms)
    return gone


async def _tell_admins_gone(conn: AsyncConnection, gone: Sequence[GoneUrl], now_ms: int) -> None:
    """One alert when URLs joined the set of those left with pending deliveries since the admins
    were last told (a compare-and-set on a kv marker, so two replicas starting together send it
    once; a URL settled meanwhile brings no new alert about the others)."""
    marker = ",".join(sorted(g.id for g in gone))
    before = await get_value(conn, GONE_MARKER)
    if before == marker:
        return
    if before is None:
        stored = await insert_ignore(
            conn, kv, {"key": GONE_MARKER, "value": marker, "updated_at": now_ms}, ["key"]
        )
    else:
        result = await conn.execute(
            update(kv)
            .where(kv.c.key == GONE_MARKER, kv.c.value == before)
            .values(value=marker, updated_at=now_ms)
        )
        stored = int(result.rowcount or 0)
    told = set(before.split(",")) if before else set()
    if not stored or not any(g.id not in told for g in gone):
        return
    alert = msg.ADMIN_WEBHOOK_GONE.message(
        {
            "urls": [{"id": g.id, "url": g.url, "pending": g.pending} for g in gone],
            "count": sum(g.pending for g in gone),
        },
        key=f"a:webhook:gone:{marker}:{now_ms}",
    )
    await enqueue(conn, alert, now_ms=now_ms)


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
    lease: Lease | None = None,
    lease_now_ms: int | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries to ``urls`` for ``lease_ms`` (own transaction): at
    most one per (URL, order key), the earliest event still pending. With ``lease``, nothing
    is claimed unless the replica still holds it at ``lease_now_ms`` (the lease's clock; by
    default ``now_ms``)."""
    if limit <= 0 or lease_ms <= 0:
        raise ValueError("limit and lease_ms must be positive")
    if not urls:
        return []
    claim_now = now_ms if lease_now_ms is None else lease_now_ms  # claims: the host's clock
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
            deliveries.c.claimed_until <= claim_now,
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
        if not await holds(conn, lease, now_ms=claim_now):
            return []
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return []
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([row.id for row in rows]))
            .values(claimed_until=claim_now + lease_ms, claim_token=token)
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


async def reassert(
    db: Database,
    claimed: Claimed,
    *,
    now_ms: int,
    lease_ms: int,
    lease: Lease | None = None,
    lease_now_ms: int | None = None,
) -> bool:
    """Right before the POST: is the claim still ours (and, with ``lease``, the lease still
    held)? Extends the claim by ``lease_ms`` when it is; False: skip this delivery."""
    where = [
        deliveries.c.id == claimed.id,
        deliveries.c.claim_token == claimed.claim_token,
        deliveries.c.status == PENDING,
    ]
    claim_now = now_ms if lease_now_ms is None else lease_now_ms  # claims: the host's clock
    if lease is not None:
        where.append(held_clause(lease, now_ms=claim_now))
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                update(deliveries)
                .where(*where)
                .values(claimed_until=claim_now + lease_ms)
                .returning(deliveries.c.id)
            )
        ).first()
    return row is not None


async def release(db: Database, claimed: Sequence[Claimed]) -> None:
    """Give back claims that were not sent (the lease ran short): due again at once."""
    if not claimed:
        return
    async with db.transaction() as conn:
        for item in claimed:
            await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == item.id,
                    deliveries.c.claim_token == item.claim_token,
                    deliveries.c.status == PENDING,
                )
                .values(claimed_until=0, claim_token=None)
            )


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
    alert = msg.ADMIN_WEBHOOK_FAILED.message(
        {
            "url": safe_url(claimed.url),
            "delivery_id": claimed.id,
            "event_id": claimed.public_id,
            "event_type": claimed.type,
            "attempts": claimed.attempts + 1,
            "error": error or (f"HTTP {status_code}" if status_code is not None else ""),
        },
        key=f"a:webhook:{url_hash(claimed.url)}:failed:{now_ms // DAY_MS}",
    )
    await enqueue(conn, alert, now_ms=now_ms)
