"""Invoicing: customers, the shop window, creating, reading and cancelling invoices."""

from payments.invoicing.customers import CustomerService, CustomerView
from payments.invoicing.invoices import InvoiceService, InvoiceView
from payments.invoicing.storefront import OfferedNetwork, Storefront

__all__ = [
    "CustomerService",
    "CustomerView",
    "InvoiceService",
    "InvoiceView",
    "OfferedNetwork",
    "Storefront",
]
