"""A customer's /paysupport: an item in the admins' queue, as an alert through the outbox.

Telegram asks a bot that sells to answer /paysupport. The customer always gets an answer (the
Telegram layer's); this module decides whether the admins hear of it, and writes their alert
in the same transaction as it reads what the alert says:

- a blocked customer (/block) opens nothing;
- one alert per customer per :data:`SUPPORT_WINDOW_MS` at most: a customer repeating the
  command, or flooding it, reaches the admins once. The alert's de-duplication key is built from
  the customer and the 10-minute window of the clock it falls in, so two replicas answering at
  once write one row; an alert already written less than 10 minutes ago (in this window or the
  one before it, both looked up by their keys) holds a new one back, so the limit holds across
  a window's edge too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.clock import MINUTE_MS, Clock
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.facts import InvoiceFacts
from payments.invoicing.customers import get_customer
from payments.money import format_amount
from payments.stars.model import CURRENCY as STARS
from payments.storage import Database
from payments.storage.schema import invoices, outbox, star_invoices

SUPPORT_WINDOW_MS = 10 * MINUTE_MS
RECENT_INVOICES = 5  # the newest invoices an alert lists
NAME_MAX = 128  # Telegram's first and last names are 64 characters each
USERNAME_MAX = 32

SupportOutcome = Literal["opened", "recent", "blocked"]


@dataclass(frozen=True)
class SupportRequest:
    """What :meth:`SupportService.request` did. ``outcome``: ``opened`` (the admins are told),
    ``recent`` (they were told less than 10 minutes ago: nothing new written) or ``blocked``
    (the customer is blocked: nothing written)."""

    customer_id: int
    outcome: SupportOutcome

    @property
    def opened(self) -> bool:
        return self.outcome == "opened"


def support_key(customer_id: int, window: int) -> str:
    return f"support:{customer_id}:{window}"


class SupportService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def request(
        self, customer_id: int, *, username: str | None = None, name: str | None = None
    ) -> SupportRequest:
        """The customer asked for help with a payment (/paysupport): in one transaction, an
        admin alert naming them (``username`` without its @ and ``name`` as Telegram gave them,
        when known) and listing their newest invoices; unless they are blocked or an alert of
        theirs was written less than 10 minutes ago."""
        now = self.clock.now_ms()
        window = now // SUPPORT_WINDOW_MS
        async with self.db.transaction() as conn:
            customer = await get_customer(conn, customer_id)
            if customer is not None and customer.blocked:
                return SupportRequest(customer_id, "blocked")
            if await _told_since(conn, customer_id, window, now - SUPPORT_WINDOW_MS):
                return SupportRequest(customer_id, "recent")
            recent = await _recent(conn, customer_id)
            payload: msg.SupportRequest = {
                "customer_id": customer_id,
                "username": _clip(username.lstrip("@") if username else None, USERNAME_MAX),
                "name": _clip(name, NAME_MAX),
                "invoices": recent,
            }
            alert = msg.ADMIN_SUPPORT.message(payload, key=support_key(customer_id, window))
            written = await enqueue(conn, alert, now_ms=now)
        # 0: another replica wrote this window's alert between our look-up and our write
        return SupportRequest(customer_id, "opened" if written else "recent")


async def _told_since(conn: AsyncConnection, customer_id: int, window: int, since: int) -> bool:
    """An alert of this customer's written after ``since``: only this window's or the one
    before can be (two look-ups of the unique key)."""
    keys = [support_key(customer_id, window), support_key(customer_id, window - 1)]
    rows = await conn.execute(select(outbox.c.created_at).where(outbox.c.dedupe_key.in_(keys)))
    return any(created_at > since for (created_at,) in rows)


async def _recent(conn: AsyncConnection, customer_id: int) -> list[msg.SupportInvoice]:
    """The customer's newest invoices, crypto and Telegram Stars together (a Stars order's
    amount is its Stars, its coin XTR), newest first."""
    rows = await conn.execute(
        select(invoices)
        .where(invoices.c.customer_id == customer_id)
        .order_by(invoices.c.created_at.desc(), invoices.c.id)
        .limit(RECENT_INVOICES)
    )
    found = [_invoice(InvoiceFacts.from_row(r)) for r in rows.mappings()]
    orders = await conn.execute(
        select(star_invoices)
        .where(star_invoices.c.customer_id == customer_id)
        .order_by(star_invoices.c.created_at.desc(), star_invoices.c.id)
        .limit(RECENT_INVOICES)
    )
    for order in orders.mappings():
        found.append(
            {
                "invoice_id": order["id"],
                "plan_id": order["plan_id"],
                "amount": str(int(order["stars"])),
                "currency": STARS,  # XTR
                "network": "stars",
                "status": order["status"],
                "created_at": int(order["created_at"]),
            }
        )
    found.sort(key=lambda i: i["created_at"], reverse=True)
    return found[:RECENT_INVOICES]


def _invoice(facts: InvoiceFacts) -> msg.SupportInvoice:
    return {
        "invoice_id": facts.id,
        "plan_id": facts.plan_id,
        "amount": format_amount(facts.amount, facts.step),
        "currency": facts.currency,
        "network": facts.network,
        "status": facts.status,
        "created_at": facts.created_at,
    }


def _clip(text: str | None, limit: int) -> str | None:
    text = " ".join(text.split()) if text else ""
    return text[:limit] or None
