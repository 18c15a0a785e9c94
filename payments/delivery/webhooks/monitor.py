"""What admins see of the webhooks (``/webhooks``) and what they can do (``/redeliver``, and
``/webhooks move`` / ``/webhooks drop`` for what is pending to a URL that is no longer
configured).

The overview costs the same with a year of deliveries as with a day: each count reads at most
:data:`~payments.ops.counting.COUNT_CAP` + 1 entries of the ``(url, status, id)`` index, and the
latest problems are the newest few entries of that index per status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.delivery.webhooks.store import (
    DELIVERED,
    DROPPED,
    FAILED,
    GIVE_UP_AFTER_MS,
    PENDING,
    STATUSES,
    GoneUrl,
    gone_urls,
    safe_url,
    url_id,
)
from payments.ops.counting import capped_count, fixed
from payments.storage.db import Database
from payments.storage.schema import merchant_events as events
from payments.storage.schema import webhook_deliveries as deliveries


@dataclass(frozen=True)
class Problem:
    """A delivery that failed at least once and is not delivered (yet)."""

    delivery_id: int
    event_id: str  # the public "evt_..." id
    event_type: str
    status: str  # pending (will retry) | failed (given up)
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: int | None  # None once given up


@dataclass(frozen=True)
class UrlOverview:
    url: str  # scheme, host and path only
    id: str  # what /webhooks move takes
    delivered: int
    pending: int
    failed: int
    problems: list[Problem]  # newest first


async def overview(db: Database, urls: Sequence[str], *, limit: int = 5) -> list[UrlOverview]:
    """Per configured URL: deliveries by status and the latest ``limit`` problems."""
    result: list[UrlOverview] = []
    async with db.read() as conn:
        for url in urls:
            counts = {
                status: await capped_count(
                    conn, deliveries, deliveries.c.url == url, deliveries.c.status == fixed(status)
                )
                for status in STATUSES
            }
            troubled: list[Any] = []
            # given up, and still trying after a failure: each the newest of an index range
            for which in (
                (deliveries.c.status == fixed(FAILED),),
                (deliveries.c.status == fixed(PENDING), deliveries.c.attempts > 0),
            ):
                rows = await conn.execute(
                    select(
                        deliveries.c.id,
                        events.c.public_id,
                        events.c.type,
                        deliveries.c.status,
                        deliveries.c.attempts,
                        deliveries.c.last_status,
                        deliveries.c.last_error,
                        deliveries.c.next_attempt_at,
                    )
                    .select_from(deliveries.join(events, events.c.id == deliveries.c.event_id))
                    .where(deliveries.c.url == url, *which)
                    .order_by(deliveries.c.id.desc())
                    .limit(limit)
                )
                troubled.extend(rows.all())
            troubled.sort(key=lambda row: -int(row.id))
            problems = [
                Problem(
                    delivery_id=row.id,
                    event_id=row.public_id,
                    event_type=row.type,
                    status=row.status,
                    attempts=row.attempts,
                    last_status=row.last_status,
                    last_error=row.last_error,
                    next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
                )
                for row in troubled[:limit]
            ]
            result.append(
                UrlOverview(
                    url=safe_url(url),
                    id=url_id(url),
                    delivered=counts[DELIVERED],
                    pending=counts[PENDING],
                    failed=counts[FAILED],
                    problems=problems,
                )
            )
    return result


async def redeliver(
    db: Database, urls: Sequence[str], *, now_ms: int, delivery_id: int | None = None
) -> int:
    """Send again from now, with a fresh three-day window: one delivery (any status, even a
    delivered one) or, with ``delivery_id`` None, every failed one. Returns how many."""
    if not urls:
        return 0
    where: list[ColumnElement[bool]] = [deliveries.c.url.in_(list(urls))]
    if delivery_id is None:
        where.append(deliveries.c.status == FAILED)
    else:
        where.append(deliveries.c.id == delivery_id)
    async with db.transaction() as conn:
        result = await conn.execute(
            update(deliveries)
            .where(*where)
            .values(
                status=PENDING,
                attempts=0,
                next_attempt_at=now_ms,
                give_up_at=now_ms + GIVE_UP_AFTER_MS,
                delivered_at=None,
            )
        )
    return int(result.rowcount or 0)


class UnknownUrl(ValueError):
    """``/webhooks move`` or ``drop`` named a URL id that is not what it must be. ``which``:
    "old" (not a URL that is gone with pending deliveries) or "new" (not a configured URL)."""

    def __init__(self, which: str, url_id: str) -> None:
        super().__init__(f"{which} webhook URL id {url_id!r} is not known")
        self.which = which
        self.url_id = url_id


async def gone(db: Database, urls: Sequence[str]) -> list[GoneUrl]:
    """Pending deliveries to URLs that are no longer in ``urls``, per URL."""
    async with db.read() as conn:
        return await gone_urls(conn, urls)


async def _gone_url(conn: AsyncConnection, urls: Sequence[str], old_id: str) -> str:
    """The full URL (it is stored with its query) that is gone and whose id is ``old_id``."""
    rows = await conn.execute(
        select(deliveries.c.url)
        .where(deliveries.c.status == PENDING, deliveries.c.url.not_in(list(urls)))
        .distinct()
    )
    matches = [url for (url,) in rows if url_id(url) == old_id]
    if len(matches) != 1:
        raise UnknownUrl("old", old_id)
    return str(matches[0])


async def move(
    db: Database, urls: Sequence[str], old_id: str, new_id: str, *, now_ms: int
) -> tuple[int, int]:
    """Send what is pending to a URL that is gone to a configured one instead, from now on with
    a fresh three-day window; ``(moved, dropped)``: an event the new URL has a delivery of
    already is dropped from the old one. Raises :class:`UnknownUrl` and changes nothing when
    an id does not fit."""
    targets = [url for url in urls if url_id(url) == new_id]
    if len(targets) != 1:
        raise UnknownUrl("new", new_id)
    new_url = targets[0]
    async with db.transaction() as conn:
        old_url = await _gone_url(conn, urls, old_id)
        other = deliveries.alias("other")
        known = (
            select(other.c.id)
            .where(other.c.event_id == deliveries.c.event_id, other.c.url == new_url)
            .exists()
        )
        mine = (deliveries.c.url == old_url, deliveries.c.status == PENDING)
        dropped = await conn.execute(
            update(deliveries)
            .where(*mine, known)
            .values(status=DROPPED, claimed_until=0, claim_token=None)
        )
        moved = await conn.execute(
            update(deliveries)
            .where(*mine)
            .values(
                url=new_url,
                attempts=0,
                next_attempt_at=now_ms,
                give_up_at=now_ms + GIVE_UP_AFTER_MS,
                claimed_until=0,
                claim_token=None,
            )
        )
    return int(moved.rowcount or 0), int(dropped.rowcount or 0)


async def drop(db: Database, urls: Sequence[str], old_id: str) -> int:
    """Give up what is pending to a URL that is gone (status ``dropped``); how many. Raises
    :class:`UnknownUrl` and changes nothing when ``old_id`` is not such a URL."""
    async with db.transaction() as conn:
        old_url = await _gone_url(conn, urls, old_id)
        result = await conn.execute(
            update(deliveries)
            .where(deliveries.c.url == old_url, deliveries.c.status == PENDING)
            .values(status=DROPPED, claimed_until=0, claim_token=None)
        )
    return int(result.rowcount or 0)
