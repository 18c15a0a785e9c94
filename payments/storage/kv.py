"""A tiny key/value table for the poller's cursor and similar markers (caller's transaction)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.storage.db import insert_ignore
from payments.storage.schema import kv


async def get_value(conn: AsyncConnection, key: str) -> str | None:
    row = (await conn.execute(select(kv.c.value).where(kv.c.key == key))).first()
    return None if row is None else str(row[0])


async def get_int(conn: AsyncConnection, key: str) -> int | None:
    value = await get_value(conn, key)
    return None if value is None else int(value)


async def set_value(conn: AsyncConnection, key: str, value: str | int, now_ms: int) -> None:
    text = str(value)
    inserted = await insert_ignore(
        conn, kv, {"key": key, "value": text, "updated_at": now_ms}, ["key"]
    )
    if not inserted:
        await conn.execute(update(kv).where(kv.c.key == key).values(value=text, updated_at=now_ms))
