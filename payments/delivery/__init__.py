"""Delivery: the messages a decision causes (the outbox) and the merchant's signed webhooks.

The Telegram layer takes what it needs from here: the message catalogue (:mod:`.messages`, its
kinds by name in ``messages``), the :class:`Outbox` the sender works with, and the merchant's
webhooks.
"""

from payments.delivery import messages
from payments.delivery.messages import KINDS, InvalidMessage, Kind, Message
from payments.delivery.outbox import FailedMessage, Outbox, OutboxMessage
from payments.delivery.webhooks import (
    WEBHOOK_BUDGET_S,
    WEBHOOK_TIMEOUT_S,
    GoneUrl,
    Problem,
    RunReport,
    UnknownUrl,
    UrlOverview,
    WebhookSender,
    WebhookSettings,
)

__all__ = [
    "KINDS",
    "WEBHOOK_BUDGET_S",
    "WEBHOOK_TIMEOUT_S",
    "FailedMessage",
    "GoneUrl",
    "InvalidMessage",
    "Kind",
    "Message",
    "Outbox",
    "OutboxMessage",
    "Problem",
    "RunReport",
    "UnknownUrl",
    "UrlOverview",
    "WebhookSender",
    "WebhookSettings",
    "messages",
]
