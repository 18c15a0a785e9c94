"""Subscriptions that renew themselves: a Telegram Stars subscription whose renewal is on is
charged by Telegram when its period ends, and the charge reaches the shop a moment later (or,
when its update is lost, through the ledger). Until then the customer is not reminded to renew,
not told it ended, and keeps their chats, for up to :data:`RENEWAL_GRACE_MS` past the end. A
renewal that does not come lets the subscription end after that, as any other."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists

from payments.clock import DAY_MS
from payments.storage.schema import star_invoices

RENEWAL_GRACE_MS = DAY_MS


def renews_itself(customer: Any, plan: Any) -> ColumnElement[bool]:
    """SQL: the customer holds a paid Telegram subscription of the plan whose renewal is on."""
    return exists().where(
        star_invoices.c.customer_id == customer,
        star_invoices.c.plan_id == plan,
        star_invoices.c.recurring,
        star_invoices.c.status == "paid",
        ~star_invoices.c.renewal_off,
    )
