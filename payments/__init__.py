"""subsbot's payments core: a Telegram-free async library.

Public API (everything else is an implementation detail of its module)::

    from payments import Payments, PaymentSettings, load_catalog, PaymentCycle
    from payments.exchange import OkxExchange
    from payments import errors           # the one exception tree (PaymentsError and subclasses)
    from payments import notify           # outbox message kinds the bot renders

This package never imports ``telegram`` or ``bot`` (a test enforces it).
"""

from payments import errors, notify, states
from payments.catalog import Catalog, Coin, Network, Plan, load_catalog
from payments.config import PaymentSettings
from payments.core import Payments
from payments.cycle import CycleReport, PaymentCycle
from payments.invoices import InvoiceView

__all__ = [
    "Catalog",
    "Coin",
    "CycleReport",
    "InvoiceView",
    "Network",
    "PaymentCycle",
    "PaymentSettings",
    "Payments",
    "Plan",
    "errors",
    "load_catalog",
    "notify",
    "states",
]
