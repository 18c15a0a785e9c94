"""Subscriptions: the periods a payment buys, reminders before they end, and their expiry."""

from payments.subscriptions.periods import SubscriptionView, days_left, is_active
from payments.subscriptions.reminders import KIND_EXPIRED, KIND_REMINDER, ReminderReport

__all__ = [
    "KIND_EXPIRED",
    "KIND_REMINDER",
    "ReminderReport",
    "SubscriptionView",
    "days_left",
    "is_active",
]
