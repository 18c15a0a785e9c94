"""Subscriptions: the periods a payment buys, reminders before they end, and their expiry."""
