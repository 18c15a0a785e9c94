"""Counts for admin views whose cost does not grow with the history behind them.

A count an admin reads (/stats, /webhooks) stops at :data:`COUNT_CAP`: the statement reads at
most ``COUNT_CAP + 1`` index entries, so a year of sent messages or delivered webhooks costs
what a month does. A result above the cap means "more than COUNT_CAP" (shown as "1000+").

Statuses go into these statements as :func:`fixed` values, written into the SQL text: the
async PostgreSQL driver prepares each statement once, and after a few runs PostgreSQL may plan
it for any status at all, a plan that scans the whole table looking for a rare one (a status
with no row at all is the worst case). Each status then has its own statement and plan.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

COUNT_CAP = 1_000


def fixed(value: str) -> BindParameter[str]:
    """A constant written into the statement's text rather than sent as a parameter."""
    return literal(value, literal_execute=True)


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
