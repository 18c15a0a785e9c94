"""Customers: one row per Telegram user id (other tables hold a foreign key to it).

Functions that take a connection never commit: the caller owns the transaction.
:class:`CustomerService` opens its own transactions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, String, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.clock import Clock
from payments.storage.db import Database, insert_ignore
from payments.storage.schema import customers

_LANGUAGE_MAX = cast(String, customers.c.language.type).length or 16


@dataclass(frozen=True)
class CustomerView:
    id: int
    language: str | None  # Telegram's language_code ("en", "pt-br"), None when never told
    unreachable: bool  # the customer blocked the bot (cleared when they write again)
    created_at: int
    blocked: bool = False  # an admin blocked the customer (/block)


async def ensure_customer(
    conn: AsyncConnection, customer_id: int, now_ms: int, language: str | None = None
) -> bool:
    """Create the customer row if it is missing; returns whether it was created.

    An existing row is left as it is (its language and reachability are not touched).
    """
    values = {
        "id": customer_id,
        "language": language,
        "unreachable": False,
        "created_at": now_ms,
    }
    return await insert_ignore(conn, customers, values, ["id"]) == 1


async def set_unreachable(conn: AsyncConnection, customer_id: int, unreachable: bool) -> bool:
    """Record whether the bot can message the customer (False again after they come back)."""
    result = await conn.execute(
        update(customers).where(customers.c.id == customer_id).values(unreachable=unreachable)
    )
    return int(result.rowcount or 0) == 1


async def touch_customer(
    conn: AsyncConnection, customer_id: int, now_ms: int, language: str | None = None
) -> None:
    """The customer just wrote to us: create the row if missing, record a new language (when
    given), clear ``unreachable``. One statement; writes nothing when nothing changes."""
    if language is not None:
        language = language[:_LANGUAGE_MAX] or None
    stmt: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        customers
    ).values(id=customer_id, language=language, unreachable=False, created_at=now_ms)
    changes: dict[str, Any] = {"unreachable": False}
    changed: ColumnElement[bool] = customers.c.unreachable.is_(True)
    if language is not None:
        changes["language"] = stmt.excluded.language
        changed = or_(changed, customers.c.language.is_distinct_from(language))
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["id"], set_=changes, where=changed)
    )


async def get_customer(conn: AsyncConnection, customer_id: int) -> CustomerView | None:
    row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()
    if row is None:
        return None
    return CustomerView(
        id=int(row.id),
        language=row.language,
        unreachable=bool(row.unreachable),
        created_at=int(row.created_at),
        blocked=row.blocked_at is not None,
    )


class CustomerService:
    """What the bot records about the people who write to it."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def touch(self, customer_id: int, language: str | None) -> None:
        """Call on every update from a customer: see :func:`touch_customer`."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            await touch_customer(conn, customer_id, now, language)

    async def get(self, customer_id: int) -> CustomerView | None:
        async with self.db.read() as conn:
            return await get_customer(conn, customer_id)

    async def languages(self, ids: Collection[int]) -> dict[int, str | None]:
        """The language of each known customer among ``ids`` (unknown ids are left out)."""
        wanted = sorted(set(ids))
        found: dict[int, str | None] = {}
        async with self.db.read() as conn:
            for start in range(0, len(wanted), 500):
                rows = await conn.execute(
                    select(customers.c.id, customers.c.language).where(
                        customers.c.id.in_(wanted[start : start + 500])
                    )
                )
                found.update({int(r.id): r.language for r in rows})
        return found
