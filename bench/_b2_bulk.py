"""Many open invoices at once, inserted directly (the benchmarks' set-up, not what they time).

The rows are what ``InvoiceService.create`` writes for a USDT-TRC20 invoice of plan "pro": the
customer, the invoice and its reserved unique amount, all on one shared address. Amounts are
29.0001, 29.0002, ... skipping those ending in 0, so they never collide.
"""

from __future__ import annotations

from typing import Any

from payments import states as st
from payments.clock import MINUTE_MS
from payments.storage import Database, schema

ADDRESS = "TBulkAddress"
_CHUNK = 5000


def amount_units(i: int) -> int:
    return 2_900_000_000 + (i // 9 * 10 + i % 9 + 1) * 10_000


async def insert_open_invoices(
    db: Database, count: int, *, now_ms: int, first_customer: int = 10_000
) -> list[tuple[str, int]]:
    """``count`` pending invoices (ids ``B0000000``...); returns (invoice id, amount units)."""
    made = [(f"B{i:07d}", amount_units(i)) for i in range(count)]
    for start in range(0, count, _CHUNK):
        customers: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        slots: list[dict[str, Any]] = []
        for i in range(start, min(count, start + _CHUNK)):
            invoice_id, amount = made[i]
            customer = first_customer + i
            customers.append(
                {"id": customer, "language": None, "unreachable": False, "created_at": now_ms}
            )
            rows.append(
                {
                    "id": invoice_id,
                    "customer_id": customer,
                    "plan_id": "pro",
                    "days": 30,
                    "price_usd": "29",
                    "currency": "USDT",
                    "network": "TRC20",
                    "chain": "USDT-TRC20",
                    "address": ADDRESS,
                    "tag": None,
                    "rate": "1",
                    "scale": 8,
                    "step": "0.0001",
                    "base_units": 2_900_000_000,
                    "amount_units": amount,
                    "topup_units": None,
                    "status": st.PENDING,
                    "exceptions": "",
                    "frozen": False,
                    "created_at": now_ms,
                    "expires_at": now_ms + 120 * MINUTE_MS,
                    "monitor_until": now_ms + 26 * 60 * MINUTE_MS,
                    "updated_at": now_ms,
                    "version": 0,
                }
            )
            slots.append(
                {
                    "currency": "USDT",
                    "amount_units": amount,
                    "invoice_id": invoice_id,
                    "kind": "main",
                    "address": ADDRESS,
                    "taken_at": now_ms,
                    "held_until": now_ms + 26 * 60 * MINUTE_MS,
                }
            )
        async with db.transaction() as conn:
            await conn.execute(schema.customers.insert(), customers)
            await conn.execute(schema.invoices.insert(), rows)
            await conn.execute(schema.reservations.insert(), slots)
    return made
