"""Delivery: the messages a decision causes (the outbox) and the merchant's signed webhooks."""

from payments.delivery import notify, outbox
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
    "WEBHOOK_BUDGET_S",
    "WEBHOOK_TIMEOUT_S",
    "GoneUrl",
    "Problem",
    "RunReport",
    "UnknownUrl",
    "UrlOverview",
    "WebhookSender",
    "WebhookSettings",
    "notify",  # the message kinds the bot renders
    "outbox",  # the outbox rows the bot's sender claims and marks
]
