"""Signals between replicas through the database: one row per name with a
count that grows each time it is raised. A standby raises one; the lease holder notices the
count grew and acts, so work only the holder may do (an OKX poll) can be asked for anywhere.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from payments.storage import Database
from payments.storage.schema import signals

POLL = "poll"  # a customer asked to check a payment now


class Signals:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def raise_signal(self, name: str, now_ms: int) -> None:
        """Count one more raise of ``name`` (atomic on both databases)."""
        async with self.db.transaction() as conn:
            dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(signals).values(name=name, raised=1, raised_at=now_ms)
            stmt = stmt.on_conflict_do_update(
                index_elements=[signals.c.name],
                set_={"raised": signals.c.raised + 1, "raised_at": stmt.excluded.raised_at},
            )
            await conn.execute(stmt)

    async def raised(self, name: str) -> int:
        """How many times ``name`` has been raised (0 if never)."""
        async with self.db.read() as conn:
            found = await conn.execute(select(signals.c.raised).where(signals.c.name == name))
            value = found.scalar_one_or_none()
        return 0 if value is None else int(value)
