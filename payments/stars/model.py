"""What the Stars rail works with, as plain data: an order, a charge Telegram reports, a line of
Telegram's Stars ledger, and the answers the rail gives (pure; no I/O).

The invoice payload the customer's Telegram app carries is ``subsbot:<order id>``: it names an
order and proves nothing. Every use of it is checked against the order it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

CURRENCY = "XTR"  # Telegram Stars
SUBSCRIPTION_PERIOD_S = 2_592_000  # 30 days: the only period Telegram offers
PAYLOAD_PREFIX = "subsbot:"
_PAYLOAD = re.compile(r"^subsbot:([A-Z0-9]{8,16})$")

# why a pre-checkout is refused (the bot tells the customer in their language)
Refusal = Literal["unknown", "not_yours", "expired", "paid", "plan_gone", "price_changed"]
PENDING, PAID, EXPIRED, CANCELLED = "pending", "paid", "expired", "cancelled"


def payload_of(order_id: str) -> str:
    return f"{PAYLOAD_PREFIX}{order_id}"


def order_id_of(payload: str) -> str | None:
    """The order a payload names, or None for one this shop never wrote."""
    found = _PAYLOAD.fullmatch(payload or "")
    return found.group(1) if found else None


@dataclass(frozen=True)
class StarsOrder:
    """An order for Stars: the invoice the bot shows (one-off) or links to (subscription)."""

    id: str
    customer_id: int
    plan_id: str
    days: int
    stars: int
    recurring: bool  # a Telegram subscription: Telegram charges again every 30 days
    status: str
    created_at: int
    expires_at: int
    link: str | None = None
    reused: bool = False  # open_order handed back the customer's open order for the plan

    @property
    def payload(self) -> str:
        return payload_of(self.id)


@dataclass(frozen=True)
class Checkout:
    """The answer to a pre-checkout query: go ahead, or not and why."""

    ok: bool
    refusal: Refusal | None = None
    order: StarsOrder | None = None


@dataclass(frozen=True)
class StarsCharge:
    """A charge Telegram made: a ``successful_payment`` (or a ledger line standing in for one
    whose update was lost). Times in epoch milliseconds."""

    customer_id: int
    charge_id: str
    payload: str
    stars: int
    paid_at: int
    currency: str = CURRENCY
    recurring: bool = False  # is_recurring: part of a subscription
    first: bool = True  # is_first_recurring (a one-off payment is a first too)
    subscription_ends_at: int | None = None


@dataclass(frozen=True)
class Credited:
    """What recording a charge did. ``new`` False: it was recorded already (nothing changed).
    ``payment_id`` None: it names no order of this shop (the admins were told)."""

    new: bool
    payment_id: str | None = None
    order_id: str | None = None
    plan_id: str | None = None
    ends_at: int | None = None
    renewal: bool = False


@dataclass(frozen=True)
class LedgerEntry:
    """One line of Telegram's Stars ledger (getStarTransactions): an incoming payment from a
    user (``incoming``), or an outgoing refund to one (same ``id`` as the charge refunded)."""

    id: str
    stars: int
    date: int  # epoch ms
    user_id: int | None
    incoming: bool
    payload: str | None = None
    subscription_period: int | None = None  # seconds, on a subscription's charges


@dataclass(frozen=True)
class StarsPayment:
    """A recorded charge, as admins see it and /refund finds it."""

    id: str
    charge_id: str
    order_id: str
    customer_id: int
    plan_id: str
    stars: int
    renewal: bool
    paid_at: int
    refunded_at: int | None
    source: str


@dataclass(frozen=True)
class Refunded:
    """A refund recorded: the charge, by whom, and the subscription's end after it."""

    payment: StarsPayment
    by: str
    ends_at: int | None


@dataclass(frozen=True)
class StarsSubscription:
    """A customer's Telegram subscription (a recurring order that was paid), for /status."""

    order_id: str
    plan_id: str
    stars: int
    first_charge_id: str
    renewal_on: bool
    ends_at: int | None  # the shop's subscription end for the plan


@dataclass
class ReconcileReport:
    read: int = 0  # ledger lines read
    credited: int = 0  # payments whose update never came, credited now
    refunded: int = 0  # refunds made outside the bot, recorded now
    missing: int = 0  # recorded payments the ledger lacks (the admins were told)
