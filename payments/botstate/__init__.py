"""State the Telegram layer keeps in the database: the invoice photos it sent, the replica lease
that picks who runs the singleton jobs, and the signals between replicas."""

from payments.botstate.invoice_photos import InvoiceMessages
from payments.botstate.lease import Lease, LeaseStore
from payments.botstate.signals import POLL, Signals

__all__ = ["POLL", "InvoiceMessages", "Lease", "LeaseStore", "Signals"]
