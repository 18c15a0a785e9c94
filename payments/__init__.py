"""subsbot's payments core: a Telegram-free async library.

Public API (everything else is an implementation detail of its module)::

    from payments import Payments, PaymentSettings, load_catalog, PaymentCycle
    from payments.exchange import OkxExchange
    from payments import errors           # the one exception tree (PaymentsError and subclasses)
    from payments.delivery import messages  # the message kinds the bot renders (the catalogue)

``Payments`` holds the services: ``invoices``, ``claims``, ``claim_waits`` ("waiting for a
claim"),
``admin`` (confirm, reject, reassign, refunded, grant, pending, user), ``customers``
(:class:`CustomerService`), ``photos`` (:class:`InvoiceMessages`), and the jobs
``poller.poll()``, ``expire_due()``, ``remind_and_expire()``, ``check_capacity()``, ``stats()``,
``prune_history()`` (the daily retention prune, :class:`PruneReport`).
``copy_database()`` copies a whole shop to another database (``python -m bot migrate-to``).
The value types they return are exported here too.

This package never imports ``telegram`` or ``bot`` (a test enforces it).
"""

# isort: off
# The subpackages in the order their modules build on each other: each face (``__init__``)
# re-exports from its modules, and those import across subpackages. Importing any part of
# payments runs this first, so the order holds for every entry point.
from payments import errors, states
from payments import storage, exchange, pricing, botstate, invoicing  # noqa: F401
from payments import subscriptions, delivery, deposits, access, ops  # noqa: F401

# isort: on
from payments.botstate.invoice_photos import InvoiceMessages
from payments.catalog import Catalog, Coin, Network, Plan, load_catalog
from payments.config import PaymentSettings
from payments.deposits.claims import ClaimResult
from payments.deposits.cycle import CycleReport, PaymentCycle
from payments.invoicing.customers import CustomerService, CustomerView
from payments.invoicing.invoices import InvoiceView
from payments.ops.admin import AdminResult, BlockResult, PendingOverview, UserOverview
from payments.ops.capacity import CapacityWarning
from payments.ops.reports import ShopStats, WindowStats
from payments.ops.retention import PruneReport
from payments.rails import OKX_SETTINGS, Rails, payment_rails
from payments.storage.copy import CopyReport, copy_database
from payments.subscriptions.periods import SubscriptionView
from payments.subscriptions.reminders import ReminderReport
from payments.wiring import Payments

__all__ = [
    "OKX_SETTINGS",
    "AdminResult",
    "BlockResult",
    "CapacityWarning",
    "Catalog",
    "ClaimResult",
    "Coin",
    "CopyReport",
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
    "Rails",
    "ReminderReport",
    "ShopStats",
    "SubscriptionView",
    "UserOverview",
    "WindowStats",
    "copy_database",
    "errors",
    "load_catalog",
    "payment_rails",
    "states",
]
