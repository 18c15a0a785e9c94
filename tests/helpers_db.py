"""Minimal rows that other tables point at (customers, invoices), for storage-level tests."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from payments.storage import Database, insert_ignore, schema


async def add_invoice(
    conn: AsyncConnection,
    invoice_id: str,
    *,
    customer_id: int = 1,
    currency: str = "USDT",
    chain: str = "USDT-TRC20",
    now_ms: int = 1_790_000_000_000,
) -> None:
    """Insert a customer (when new) and a pending invoice with placeholder amounts."""
    await insert_ignore(
        conn,
        schema.customers,
        {"id": customer_id, "language": None, "unreachable": False, "created_at": now_ms},
        ["id"],
    )
    await conn.execute(
        schema.invoices.insert().values(
            id=invoice_id,
            customer_id=customer_id,
            plan_id="pro",
            days=30,
            price_usd="29",
            currency=currency,
            network=chain.split("-", 1)[1][:16],
            chain=chain,
            address="placeholder",
            tag=None,
            rate="1",
            scale=8,
            step="0.0001",
            base_units=0,
            amount_units=0,
            topup_units=None,
            status="pending",
            exceptions="",
            frozen=False,
            created_at=now_ms,
            expires_at=now_ms,
            monitor_until=now_ms,
            updated_at=now_ms,
            version=0,
        )
    )


async def add_invoices(db: Database, *invoice_ids: str, currency: str = "USDT") -> None:
    """One transaction inserting every invoice in ``invoice_ids``."""
    async with db.transaction() as conn:
        for invoice_id in invoice_ids:
            await add_invoice(conn, invoice_id, currency=currency)
