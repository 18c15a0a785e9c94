"""Expiring invoices whose time ran out, once a poll has completed after their expiry.

"After a completed poll": a deposit made in time has been read by then, so an invoice is never
expired while its payment sits unread on OKX. An invoice that has seen money stays open until the
end of its monitoring window: a partially paid one for its top-up, one whose payment is still
unconfirmed (or held by OKX) for its confirmations. Then it expires, an admin takes it over in
/pending, and the customer's open-invoice slot is free again; a payment that settles later
still pays it.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.clock import Clock
from payments.config import PaymentSettings
from payments.delivery import messages as msg
from payments.delivery.messages import invoice_fields
from payments.delivery.outbox import enqueue
from payments.delivery.webhooks import emit
from payments.facts import InvoiceFacts
from payments.money import format_amount
from payments.pricing.allocation import release_address
from payments.storage import Database
from payments.storage.schema import deposits, invoices


async def expire_invoices(
    db: Database, clock: Clock, settings: PaymentSettings, *, polled_until: int
) -> int:
    """Expire pending invoices whose time ran out before ``polled_until`` (the OKX time up to
    which a poll has completed: a deposit made in time has been seen by then), and processing
    ones (part-paid, or paid but not yet confirmed) whose monitoring window has ended. Frozen
    ones wait for their admin. Returns how many expired."""
    grace = settings.late_grace_ms
    now = clock.now_ms()
    count = 0
    async with db.transaction() as conn:
        due = (
            (
                await conn.execute(
                    select(invoices).where(
                        (
                            (invoices.c.status == st.PENDING)
                            & (invoices.c.expires_at + grace <= polled_until)
                        )
                        | (
                            (invoices.c.status == st.PROCESSING)
                            & (invoices.c.monitor_until <= polled_until)
                            & invoices.c.frozen.is_(False)
                        )
                    )
                )
            )
            .mappings()
            .all()
        )
        for raw in due:
            row = InvoiceFacts.from_row(raw)
            result = await conn.execute(
                update(invoices)
                .where(
                    invoices.c.id == row.id,
                    invoices.c.status == row.status,
                    invoices.c.version == raw["version"],
                )
                .values(
                    status=st.EXPIRED,
                    closed_at=now,
                    updated_at=now,
                    version=invoices.c.version + 1,
                )
            )
            if result.rowcount != 1:
                continue
            count += 1
            await release_address(
                conn,
                invoice_id=row.id,
                now_ms=now,
                quarantine_ms=settings.address_quarantine_ms,
            )
            await _notify_expired(conn, row, now)
    return count


async def _notify_expired(conn: AsyncConnection, row: InvoiceFacts, now: int) -> None:
    await emit.invoice_expired(conn, row, now)
    if st.PAID_PARTIAL in row.exceptions:
        key = f"inv:{row.id}:partial_expired"
        received = format_amount(await _received(conn, row.id), row.step)
        fields: msg.Received = {**invoice_fields(row), "received": received}
        await enqueue(
            conn,
            msg.PAYMENT_PARTIAL_EXPIRED.message(
                fields, key=f"c:{key}", customer_id=row.customer_id
            ),
            msg.ADMIN_PARTIAL_UNFINISHED.message(fields, key=f"a:{key}"),
            now_ms=now,
        )
    elif row.status == st.PROCESSING:  # its money is seen but not confirmed (or held by OKX)
        received = format_amount(await _received(conn, row.id), row.step)
        payload: msg.ReceivedExceptions = {
            **invoice_fields(row),
            "received": received,
            "exceptions": sorted(row.exceptions),
        }
        alert = msg.ADMIN_UNSETTLED.message(payload, key=f"a:inv:{row.id}:unsettled")
        await enqueue(conn, alert, now_ms=now)
    else:
        expired = msg.INVOICE_EXPIRED.message(
            invoice_fields(row), key=f"c:inv:{row.id}:expired", customer_id=row.customer_id
        )
        await enqueue(conn, expired, now_ms=now)


async def _received(conn: AsyncConnection, invoice_id: str) -> Decimal:
    """What the deposits counted towards the invoice add up to (for the admin's message)."""
    rows = await conn.execute(
        select(deposits.c.amount).where(
            deposits.c.invoice_id == invoice_id,
            deposits.c.disposition == st.DEP_ATTACHED,
            deposits.c.match_kind.in_(st.COUNTED_KINDS),
        )
    )
    return sum((Decimal(amount) for (amount,) in rows), Decimal(0))
