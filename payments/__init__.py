"""subsbot's payments core: a Telegram-free async library.

Public API (everything else is an implementation detail of its module)::

    from payments import Payments, PaymentSettings, load_catalog, PaymentCycle
    from payments.exchange import OkxExchange
    from payments import errors           # the one exception tree (PaymentsError and subclasses)
    from payments import notify           # outbox message kinds the bot renders

``Payments`` holds the services: ``invoices``, ``claims`` (claims and "waiting for a claim"),
``admin`` (confirm, reject, reassign, refunded, grant, pending, user), ``customers``
(:class:`CustomerService`), ``photos`` (:class:`InvoiceMessages`), and the jobs
``poller.poll()``, ``expire_due()``, ``remind_and_expire()``, ``check_capacity()``, ``stats()``,
``prune_history()`` (the daily retention prune, :class:`PruneReport`).
The value types they return are exported here too.

This package never imports ``telegram`` or ``bot`` (a test enforces it).
"""

from payments import errors, notify, states
from payments.admin import AdminResult, BlockResult, PendingOverview, UserOverview
from payments.capacity import CapacityWarning
from payments.catalog import Catalog, Coin, Network, Plan, load_catalog
from payments.claims import ClaimResult
from payments.config import PaymentSettings
from payments.core import Payments
from payments.customers import CustomerService, CustomerView
from payments.cycle import CycleReport, PaymentCycle
from payments.invoices import InvoiceView
from payments.photos import InvoiceMessages
from payments.reminders import ReminderReport
from payments.reports import ShopStats, WindowStats
from payments.retention import PruneReport
from payments.subscriptions import SubscriptionView

__all__ = [
    "AdminResult",
    "BlockResult",
    "CapacityWarning",
    "Catalog",
    "ClaimResult",
    "Coin",
    "CustomerService",
    "CustomerView",
    "CycleReport",
    "InvoiceMessages",
    "InvoiceView",
    "Network",
    "PaymentCycle",
    "PaymentSettings",
    "Payments",
    "PendingOverview",
    "Plan",
    "PruneReport",
    "ReminderReport",
    "ShopStats",
    "SubscriptionView",
    "UserOverview",
    "WindowStats",
    "errors",
    "load_catalog",
    "notify",
    "states",
]
