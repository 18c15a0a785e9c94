"""Invoicing: customers, the shop window, creating, reading and cancelling invoices."""
