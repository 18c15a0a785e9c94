"""A whole payments core against the fake OKX over loopback HTTP, driven like a shop would be."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from fakes.okx import FakeOkx
from payments import states as st
from payments.catalog import load_catalog
from payments.clock import MINUTE_MS, ManualClock
from payments.config import PaymentSettings
from payments.deposits.poll import PollReport
from payments.exchange.okx import OkxExchange
from payments.invoicing.invoices import InvoiceView
from payments.storage import Database, schema
from payments.storage.schema import (
    claims,
    deposits,
    invoices,
    outbox,
    subscription_periods,
    subscriptions,
)
from payments.wiring import Payments


@dataclass
class Shop:
    okx: FakeOkx
    clock: ManualClock
    payments: Payments

    @property
    def db(self) -> Database:
        return self.payments.db

    async def buy(
        self, customer: int, plan: str = "pro", currency: str = "USDT", network: str = "TRC20"
    ) -> InvoiceView:
        return await self.payments.invoices.create(customer, plan, currency, network)

    def pay(
        self,
        invoice: InvoiceView,
        amount: str | Decimal | None = None,
        **fields: Any,
    ) -> str:
        """A deposit on the fake OKX: by default the exact amount to the invoice's address."""
        chain = fields.pop("chain", invoice.chain)
        if fields.get("type") != "3":
            fields.setdefault("to", invoice.address)
        return self.okx.add_deposit(
            invoice.currency, chain, amount if amount is not None else invoice.amount_text, **fields
        )

    async def poll(self) -> PollReport:
        return await self.payments.poller.poll()

    async def invoice(self, invoice_id: str) -> InvoiceView:
        return await self.payments.invoices.get(invoice_id)

    async def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every outbox row (what customers and admins will be told), oldest first."""
        async with self.db.read() as conn:
            query = select(outbox).order_by(outbox.c.id)
            if kind is not None:
                query = query.where(outbox.c.kind == kind)
            rows = (await conn.execute(query)).mappings().all()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    async def subscription_end(self, customer: int, plan: str = "pro") -> int | None:
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(subscriptions.c.ends_at).where(
                        subscriptions.c.customer_id == customer, subscriptions.c.plan_id == plan
                    )
                )
            ).scalar_one_or_none()

    async def periods(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(subscription_periods).order_by(subscription_periods.c.id)
            )
            return [dict(r) for r in rows.mappings()]

    async def deposit(self, dep_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (
                (await conn.execute(select(deposits).where(deposits.c.dep_id == dep_id)))
                .mappings()
                .one()
            )
            return dict(row)

    async def table(self, name: str) -> list[dict[str, Any]]:
        table = {"invoices": invoices, "deposits": deposits, "outbox": outbox, "claims": claims}[
            name
        ]
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def bulk_invoices(shop: Shop, count: int) -> list[tuple[str, int]]:
    """``count`` open USDT invoices with unique amounts, inserted directly (fast)."""
    return await insert_open_invoices(shop.db, count, now_ms=shop.clock.now_ms())


# --- many open invoices at once (tests' and benchmarks' set-up) ---------------------------------
# The rows are what ``InvoiceService.create`` writes for a USDT-TRC20 invoice of plan "pro": the
# customer, the invoice and its reserved unique amount, all on one shared address. Amounts are
# 29.0001, 29.0002, ... skipping those ending in 0, so they never collide.

BULK_ADDRESS = "TBulkAddress"
_BULK_CHUNK = 5000


def bulk_amount_units(i: int) -> int:
    return 2_900_000_000 + (i // 9 * 10 + i % 9 + 1) * 10_000


async def insert_open_invoices(
    db: Database, count: int, *, now_ms: int, first_customer: int = 10_000
) -> list[tuple[str, int]]:
    """``count`` pending invoices (ids ``B0000000``...); returns (invoice id, amount units)."""
    made = [(f"B{i:07d}", bulk_amount_units(i)) for i in range(count)]
    for start in range(0, count, _BULK_CHUNK):
        customers: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        slots: list[dict[str, Any]] = []
        for i in range(start, min(count, start + _BULK_CHUNK)):
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
                    "address": BULK_ADDRESS,
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
                    "address": BULK_ADDRESS,
                    "taken_at": now_ms,
                    "held_until": now_ms + 26 * 60 * MINUTE_MS,
                }
            )
        async with db.transaction() as conn:
            await conn.execute(schema.customers.insert(), customers)
            await conn.execute(schema.invoices.insert(), rows)
            await conn.execute(schema.reservations.insert(), slots)
    return made


@asynccontextmanager
async def open_shop(
    db: Database, settings: PaymentSettings | None = None, *, clock: ManualClock | None = None
) -> AsyncIterator[Shop]:
    clock = clock or ManualClock(time.time_ns() // 1_000_000)
    okx = FakeOkx(clock=clock).start()
    exchange = OkxExchange(
        okx.api_key,
        okx.secret,
        okx.passphrase,
        base_url=okx.base_url,
        timeout_ms=1500,
        clock=clock,  # sign with the test's clock, as the fake checks timestamps against it
        throttle=False,  # the fake has no limits; tests/payments/exchange/test_okx.py keeps it on
    )
    payments = Payments.wire(db, exchange, load_catalog(), settings or PaymentSettings(), clock)
    try:
        await payments.start_checks(allow_unsafe_key=False)
        yield Shop(okx=okx, clock=clock, payments=payments)
    finally:
        await exchange.close()
        okx.stop()
