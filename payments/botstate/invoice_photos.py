"""The invoice photos the bot sent, so that any replica, after a restart too,
can edit their captions when the invoice is paid, expires or is cancelled ("PAID",
"EXPIRED - do not pay") and an old QR code is not paid by mistake."""

from __future__ import annotations

from sqlalchemy import select

from payments.clock import Clock
from payments.errors import InvoiceNotFound
from payments.storage.db import Database, insert_ignore
from payments.storage.schema import invoice_messages, invoices


class InvoiceMessages:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def record(self, invoice_id: str, chat_id: int, message_id: int) -> None:
        """Remember a photo message showing the invoice; recording it twice is harmless."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            known = await conn.execute(select(invoices.c.id).where(invoices.c.id == invoice_id))
            if known.first() is None:
                raise InvoiceNotFound(f"no invoice {invoice_id}")
            await insert_ignore(
                conn,
                invoice_messages,
                {
                    "chat_id": chat_id,
                    "message_id": message_id,
                    "invoice_id": invoice_id,
                    "created_at": now,
                },
                ["chat_id", "message_id"],
            )

    async def of(self, invoice_id: str) -> list[tuple[int, int]]:
        """(chat_id, message_id) of every photo showing the invoice, oldest first."""
        c = invoice_messages.c
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(c.chat_id, c.message_id)
                .where(c.invoice_id == invoice_id)
                .order_by(c.created_at, c.chat_id, c.message_id)
            )
            return [(int(r.chat_id), int(r.message_id)) for r in rows]
