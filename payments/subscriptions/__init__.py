"""Subscriptions: the periods a payment buys, reminders before they end, and their expiry."""

from payments.subscriptions.periods import SubscriptionView, days_left, is_active
from payments.subscriptions.reminders import ReminderReport

__all__ = [
    "ReminderReport",
    "SubscriptionView",
    "days_left",
    "is_active",
]
