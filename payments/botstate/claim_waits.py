"""Waiting for a claim: after "I paid" on an invoice, the customer's next message is taken as
a claim (tx hash or withdrawal ID) for that invoice, for a while. The bot's conversation state,
kept in the database so every replica and a restart agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from payments.clock import MINUTE_MS, Clock
from payments.errors import InvoiceNotFound
from payments.storage import Database
from payments.storage.schema import claim_waits, invoices


class ClaimWaits:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def expect(self, customer_id: int, invoice_id: str, *, minutes: int = 30) -> None:
        """The customer's next message is a claim for their ``invoice_id``, for ``minutes``.
        A newer wait replaces an older one. InvoiceNotFound unless the invoice is theirs."""
        if minutes <= 0:
            raise ValueError("minutes must be positive")
        until = self.clock.now_ms() + minutes * MINUTE_MS
        async with self.db.transaction() as conn:
            owner = (
                await conn.execute(
                    select(invoices.c.customer_id).where(invoices.c.id == invoice_id)
                )
            ).scalar_one_or_none()
            if owner is None or int(owner) != customer_id:
                raise InvoiceNotFound(f"no invoice {invoice_id}")
            stmt: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
                claim_waits
            ).values(customer_id=customer_id, invoice_id=invoice_id, until=until)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["customer_id"],
                    set_={"invoice_id": stmt.excluded.invoice_id, "until": stmt.excluded.until},
                )
            )

    async def awaited(self, customer_id: int) -> str | None:
        """The invoice the customer's next message claims for; None when none or expired."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(claim_waits.c.invoice_id, claim_waits.c.until).where(
                        claim_waits.c.customer_id == customer_id
                    )
                )
            ).first()
        if row is None or int(row.until) <= self.clock.now_ms():
            return None
        return str(row.invoice_id)

    async def stop_waiting(self, customer_id: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(claim_waits).where(claim_waits.c.customer_id == customer_id))
