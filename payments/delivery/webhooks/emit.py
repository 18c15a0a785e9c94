"""The events of each decision, built from the facts the decision has at hand and written in its
transaction. One function per place in the core that decides something a merchant hears about.

Event keys follow the outbox's dedupe keys, so a retried decision writes nothing new. Amounts
are strings, times ISO 8601 UTC, ``customer`` is the Telegram user id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.delivery.webhooks import events as ev
from payments.facts import DepositFacts, InvoiceFacts
from payments.money import format_amount
from payments.storage.schema import deposits
from payments.subscriptions.periods import Credit


def _invoice_data(invoice: InvoiceFacts) -> dict[str, Any]:
    return {
        "rail": "crypto",
        "invoice_id": invoice.id,
        "customer": invoice.customer_id,
        "plan_id": invoice.plan_id,
        "currency": invoice.currency,
        "network": invoice.network,
        "amount": format_amount(invoice.amount, invoice.step),
    }


async def _tx_ids(conn: AsyncConnection, invoice_id: str) -> list[str]:
    rows = await conn.execute(
        select(deposits.c.tx_id)
        .where(deposits.c.invoice_id == invoice_id, deposits.c.disposition == st.DEP_ATTACHED)
        .order_by(deposits.c.ts, deposits.c.dep_id)
    )
    return [tx for (tx,) in rows if tx]


async def invoice_paid(
    conn: AsyncConnection,
    invoice: InvoiceFacts,
    now_ms: int,
    *,
    received: str | None,
    exceptions: Sequence[str],
    credit: Credit | None,
) -> None:
    """``invoice.paid``, then ``subscription.activated`` / ``.extended`` for its period."""
    rows = invoice_paid_rows(
        invoice,
        now_ms,
        received=received,
        exceptions=exceptions,
        credit=credit,
        tx_ids=await _tx_ids(conn, invoice.id),
    )
    for row in rows:
        await ev.record_row(conn, row)


def invoice_paid_rows(
    invoice: InvoiceFacts,
    now_ms: int,
    *,
    received: str | None,
    exceptions: Sequence[str],
    credit: Credit | None,
    tx_ids: Sequence[str],
) -> list[dict[str, Any]]:
    """The event rows of :func:`invoice_paid` (for :func:`flush`): ``tx_ids`` are those of the
    deposits attached to the invoice, oldest first."""
    data = {
        **_invoice_data(invoice),
        "received": received,
        "exceptions": list(exceptions),
        "paid_at": ev.iso_utc(now_ms),
        "subscription_ends_at": ev.iso_utc(credit.ends_at if credit else None),
        "tx_ids": list(tx_ids),
    }
    order = ev.customer_order(invoice.customer_id)
    key = f"inv:{invoice.id}:paid"
    if credit is not None and credit.restored:
        key += f":{now_ms}"  # paid again after a correction: a new occurrence
    rows = [ev.event_row(ev.INVOICE_PAID, key, order, data, now_ms)]
    if credit is not None:
        rows.append(subscription_credited_row(credit, invoice.customer_id, now_ms, invoice.id))
    return rows


async def subscription_credited(
    conn: AsyncConnection,
    credit: Credit,
    customer_id: int,
    now_ms: int,
    invoice_id: str | None,
) -> None:
    """``subscription.activated`` (nothing was running) or ``.extended`` (it was)."""
    await ev.record_row(conn, subscription_credited_row(credit, customer_id, now_ms, invoice_id))


def subscription_credited_row(
    credit: Credit, customer_id: int, now_ms: int, invoice_id: str | None
) -> dict[str, Any]:
    kind = ev.SUBSCRIPTION_EXTENDED if credit.renewed else ev.SUBSCRIPTION_ACTIVATED
    data = {
        "customer": customer_id,
        "plan_id": credit.plan_id,
        "starts_at": ev.iso_utc(credit.starts_at),
        "ends_at": ev.iso_utc(credit.ends_at),
        "invoice_id": invoice_id,
        "source": "grant" if invoice_id is None else "payment",
    }
    order = ev.customer_order(customer_id)
    key = f"period:{credit.period_id}"
    if credit.restored:
        key += f":restored:{now_ms}"
    return ev.event_row(kind, key, order, data, now_ms)


async def subscription_revoked(
    conn: AsyncConnection,
    invoice: InvoiceFacts,
    now_ms: int,
    *,
    ends_at: int | None,
    reason: str,
) -> None:
    """``subscription.revoked``: the period an invoice paid for no longer counts."""
    data = {
        **_invoice_data(invoice),
        "reason": reason,
        "revoked_at": ev.iso_utc(now_ms),
        "subscription_ends_at": ev.iso_utc(ends_at),
    }
    order = ev.customer_order(invoice.customer_id)
    key = f"inv:{invoice.id}:revoked:{now_ms}"
    await ev.record(conn, ev.SUBSCRIPTION_REVOKED, key, order, data, now_ms)


async def invoice_expired(conn: AsyncConnection, invoice: InvoiceFacts, now_ms: int) -> None:
    await ev.record_row(conn, invoice_expired_row(invoice, now_ms))


def invoice_expired_row(invoice: InvoiceFacts, now_ms: int) -> dict[str, Any]:
    data = {**_invoice_data(invoice), "expired_at": ev.iso_utc(now_ms)}
    order = ev.customer_order(invoice.customer_id)
    return ev.event_row(ev.INVOICE_EXPIRED, f"inv:{invoice.id}:expired", order, data, now_ms)


async def subscription_expired(
    conn: AsyncConnection,
    *,
    subscription_id: int,
    customer_id: int,
    plan_id: str,
    ends_at: int,
    now_ms: int,
) -> None:
    data = {"customer": customer_id, "plan_id": plan_id, "ended_at": ev.iso_utc(ends_at)}
    key = f"sub:{subscription_id}:expired:{ends_at}"
    order = ev.customer_order(customer_id)
    await ev.record(conn, ev.SUBSCRIPTION_EXPIRED, key, order, data, now_ms)


def deposit_unmatched_row(
    *,
    dep_id: str,
    currency: str,
    chain: str,
    amount: str,
    tx_id: str | None,
    ts: int | None,
    reason: str,
    now_ms: int,
) -> dict[str, Any]:
    """The ``deposit.unmatched`` event row (for :func:`events.record_rows`)."""
    data = {
        "dep_id": dep_id,
        "currency": currency,
        "chain": chain,
        "amount": amount,
        "tx_id": tx_id or None,
        "ts": ev.iso_utc(ts),
        "reason": reason,
    }
    key = f"dep:{dep_id}:unmatched"
    return ev.event_row(ev.DEPOSIT_UNMATCHED, key, ev.deposit_order(dep_id), data, now_ms)


def unmatched_row(deposit: DepositFacts, reason: str, now_ms: int) -> dict[str, Any]:
    return deposit_unmatched_row(
        dep_id=deposit.dep_id,
        currency=deposit.currency,
        chain=deposit.chain,
        amount=deposit.amount_text,
        tx_id=deposit.tx_id,
        ts=deposit.ts,
        reason=reason,
        now_ms=now_ms,
    )


async def deposit_unmatched(conn: AsyncConnection, **fields: Any) -> None:
    """Write a ``deposit.unmatched`` event now (outside a batch of decisions); ``fields`` are
    :func:`deposit_unmatched_row`'s."""
    await ev.record_rows(conn, [deposit_unmatched_row(**fields)])


async def flush(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Write event rows a batch of decisions collected (in one statement), and forget them."""
    if rows:
        await ev.record_rows(conn, rows)
        rows.clear()


async def stars_paid(
    conn: AsyncConnection,
    *,
    order_id: str,
    payment_id: str,
    customer_id: int,
    plan_id: str,
    stars: int,
    renewal: bool,
    paid_at: int,
    now_ms: int,
    credit: Credit | None,
) -> None:
    """``invoice.paid`` of the Stars rail (each charge, renewals included: ``renewal``), then
    ``subscription.activated`` / ``.extended`` for its period."""
    data = {
        "rail": "stars",
        "invoice_id": order_id,
        "payment_id": payment_id,
        "customer": customer_id,
        "plan_id": plan_id,
        "currency": "XTR",
        "amount": str(stars),
        "renewal": renewal,
        "paid_at": ev.iso_utc(paid_at),
        "subscription_ends_at": ev.iso_utc(credit.ends_at if credit else None),
    }
    order = ev.customer_order(customer_id)
    await ev.record(conn, ev.INVOICE_PAID, f"xtr:{payment_id}:paid", order, data, now_ms)
    if credit is not None:
        await subscription_credited(conn, credit, customer_id, now_ms, payment_id)


async def stars_refunded(
    conn: AsyncConnection,
    *,
    payment_id: str,
    order_id: str,
    customer_id: int,
    plan_id: str,
    stars: int,
    now_ms: int,
    ends_at: int | None,
    by: str,
) -> None:
    """``subscription.revoked`` of the Stars rail: a charge was refunded."""
    data = {
        "rail": "stars",
        "invoice_id": order_id,
        "payment_id": payment_id,
        "customer": customer_id,
        "plan_id": plan_id,
        "currency": "XTR",
        "amount": str(stars),
        "reason": f"refunded ({by})",
        "revoked_at": ev.iso_utc(now_ms),
        "subscription_ends_at": ev.iso_utc(ends_at),
    }
    order = ev.customer_order(customer_id)
    key = f"xtr:{payment_id}:refunded"
    await ev.record(conn, ev.SUBSCRIPTION_REVOKED, key, order, data, now_ms)
