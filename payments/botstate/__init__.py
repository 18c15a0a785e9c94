"""State the Telegram layer keeps in the database: the invoice photos it sent, which invoice a
customer's next message claims for, the replica lease that picks who runs the singleton jobs,
and the signals between replicas."""

from payments.botstate.claim_waits import ClaimWaits
from payments.botstate.invoice_photos import InvoiceMessages
from payments.botstate.lease import Lease, LeaseStore
from payments.botstate.signals import POLL, Signals

__all__ = ["POLL", "ClaimWaits", "InvoiceMessages", "Lease", "LeaseStore", "Signals"]
