"""Counts for admin views whose cost does not grow with the history behind them.

A count an admin reads (/stats, /webhooks) stops at :data:`COUNT_CAP`: the statement reads at
most ``COUNT_CAP + 1`` index entries, so a year of sent messages or delivered webhooks costs
what a month does. A result above the cap means "more than COUNT_CAP" (shown as "1000+").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

COUNT_CAP = 1_000


async def capped_count(
    conn: AsyncConnection,
    table: FromClause,
    *where: ColumnElement[Any],
    cap: int = COUNT_CAP,
) -> int:
    """Rows of ``table`` matching ``where``, counted up to ``cap + 1`` (above ``cap``: more)."""
    inner = select(literal(1).label("one")).select_from(table).where(*where).limit(cap + 1)
    counted = select(func.count()).select_from(inner.subquery())
    return int((await conn.execute(counted)).scalar_one())
