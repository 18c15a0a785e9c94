"""The Telegram Stars rail: orders paid in Stars, each charge credited once, refunds, the
renewal switch of Telegram subscriptions, and reconciliation against Telegram's ledger
(:class:`StarsRail`, ``payments.stars``). The Telegram layer makes the Bot API calls and hands
the rail what Telegram said, as the plain data of :mod:`payments.stars.model`."""

from payments.stars.model import (
    CURRENCY,
    SUBSCRIPTION_PERIOD_S,
    Checkout,
    Credited,
    LedgerEntry,
    ReconcileReport,
    Refunded,
    Refusal,
    StarsCharge,
    StarsOrder,
    StarsPayment,
    StarsSubscription,
    order_id_of,
    payload_of,
)
from payments.stars.rail import StarsRail

__all__ = [
    "CURRENCY",
    "SUBSCRIPTION_PERIOD_S",
    "Checkout",
    "Credited",
    "LedgerEntry",
    "ReconcileReport",
    "Refunded",
    "Refusal",
    "StarsCharge",
    "StarsOrder",
    "StarsPayment",
    "StarsRail",
    "StarsSubscription",
    "order_id_of",
    "payload_of",
]
