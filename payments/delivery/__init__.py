"""Delivery: the messages a decision causes (the outbox) and the merchant's signed webhooks.

The Telegram layer takes what it needs from here: the message catalogue (:mod:`.messages`, its
kinds by name in ``messages``) and the :class:`Outbox` the sender works with.
"""

from payments.delivery import messages
from payments.delivery.messages import KINDS, InvalidMessage, Kind, Message
from payments.delivery.outbox import FailedMessage, Outbox, OutboxMessage

__all__ = [
    "KINDS",
    "FailedMessage",
    "InvalidMessage",
    "Kind",
    "Message",
    "Outbox",
    "OutboxMessage",
    "messages",
]
