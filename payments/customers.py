"""Customers: one row per Telegram user id (other tables hold a foreign key to it).

Functions that take a connection never commit: the caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.storage.db import insert_ignore
from payments.storage.schema import customers


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
