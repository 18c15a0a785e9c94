"""Every message a payment event causes, written to the outbox in the event's transaction.

Kinds are stable names the Telegram layer renders with its text catalogue; payloads carry ids and
amounts as strings. Dedupe keys make every retry of a decision harmless (one message per event).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from payments.delivery.outbox import Audience, enqueue_rows, message_row
from payments.facts import InvoiceFacts
from payments.money import format_amount

# customer messages
PAYMENT_DETECTED = "payment.detected"  # seen, waiting for confirmations
PAYMENT_PARTIAL = "payment.partial"  # shortfall and the top-up amount
INVOICE_PAID = "invoice.paid"  # paid; subscription active until ...
INVOICE_EXPIRED = "invoice.expired"
PAYMENT_PARTIAL_EXPIRED = "payment.partial_expired"
PAYMENT_LATE_REVIEW = "payment.late_review"  # received after expiry, an admin will look
PAYMENT_ON_HOLD = "payment.on_hold"  # OKX holds the deposit; an admin will look
SUBSCRIPTION_GRANTED = "subscription.granted"  # an admin granted days: plan_id, days, ends_at
# admin messages
ADMIN_PAID = "admin.payment_settled"
ADMIN_UNMATCHED = "admin.deposit_unmatched"
ADMIN_ON_HOLD = "admin.deposit_on_hold"
ADMIN_FROZEN = "admin.invoice_frozen"
ADMIN_DUPLICATE = "admin.duplicate_payment"
ADMIN_AFTER_CLOSE = "admin.payment_after_close"
ADMIN_LATE_REVIEW = "admin.late_review"
ADMIN_PARTIAL_UNFINISHED = "admin.partial_unfinished"
ADMIN_TOPUP_UNAVAILABLE = "admin.topup_unavailable"
ADMIN_CLAIM_REVIEW = "admin.claim_review"
# deposits in coins or on chains the shop does not sell, at most one message an hour:
# count, kinds ("TRX (TRX-TRC20)", ...), dep_id (the first)
ADMIN_NOT_SOLD = "admin.deposits_not_sold"
# an invoice's payment was still unconfirmed (or held by OKX) when its monitoring window ended
ADMIN_UNSETTLED = "admin.payment_unsettled"
# an admin's correction left an invoice short of its price: its period was revoked
ADMIN_REVOKED = "admin.invoice_revoked"
ADMIN_OKX_AUTH = "admin.okx_auth_failed"  # the API key is refused: fix it, it will not heal
ADMIN_OKX_DOWN = "admin.okx_unreachable"  # polls keep failing
ADMIN_OKX_RECOVERED = "admin.okx_recovered"
ADMIN_CLOCK = "admin.clock_offset"
# free unique amounts (per currency and plan) or pool addresses (per chain) running low:
# currency, plan_id or chain, free, total, what ("amounts" | "addresses")
ADMIN_CAPACITY = "admin.capacity_low"
# a merchant webhook was given up on after 3 days: url (no query), delivery_id, event_id,
# event_type, attempts, error
ADMIN_WEBHOOK_FAILED = "admin.webhook_failed"
# deliveries are still pending for webhook URLs that are no longer configured (seen at start-up):
# urls (a list of {id, url without query, pending}), count
ADMIN_WEBHOOK_GONE = "admin.webhook_gone"


def invoice_payload(invoice: InvoiceFacts, **extra: Any) -> dict[str, Any]:
    return {
        "invoice_id": invoice.id,
        "customer_id": invoice.customer_id,
        "plan_id": invoice.plan_id,
        "currency": invoice.currency,
        "network": invoice.network,
        "amount": format_amount(invoice.amount, invoice.step),
        **extra,
    }


class Notifier:
    """Writes outbox rows on one connection (the caller's transaction).

    ``buffered``: rows are kept until :meth:`flush` writes them in one statement (a batch of
    decisions); the caller must flush before its transaction commits.
    """

    def __init__(self, conn: AsyncConnection, now_ms: int, *, buffered: bool = False) -> None:
        self.conn = conn
        self.now_ms = now_ms
        self.buffered = buffered
        self._rows: list[dict[str, Any]] = []

    async def customer(self, invoice: InvoiceFacts, kind: str, key: str, **extra: Any) -> None:
        await self._add(
            key=f"c:{key}",
            audience="customer",
            customer_id=invoice.customer_id,
            kind=kind,
            payload=invoice_payload(invoice, **extra),
        )

    async def to_customer(self, customer_id: int, kind: str, key: str, **payload: Any) -> None:
        """A customer message that is not about an invoice (e.g. a granted subscription)."""
        await self._add(
            key=f"c:{key}",
            audience="customer",
            customer_id=customer_id,
            kind=kind,
            payload=payload,
        )

    async def admins(self, kind: str, key: str, **payload: Any) -> None:
        await self._add(
            key=f"a:{key}",
            audience="admins",
            customer_id=payload.get("customer_id"),
            kind=kind,
            payload=payload,
        )

    async def _add(
        self,
        *,
        key: str,
        audience: Audience,
        customer_id: int | None,
        kind: str,
        payload: dict[str, Any],
    ) -> None:
        row = message_row(
            key=key,
            audience=audience,
            customer_id=customer_id,
            kind=kind,
            payload=payload,
            now_ms=self.now_ms,
        )
        self._rows.append(row)
        if not self.buffered:
            await self.flush()

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            await enqueue_rows(self.conn, rows)
