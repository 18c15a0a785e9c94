"""Signed webhooks to the merchant's backend (docs/api.md, "Webhooks to your backend").

Events are recorded in the transaction of the decision they report, whether or not any URL is
configured, together with their delivery to each URL in force
(:mod:`~payments.delivery.webhooks.emit`, :mod:`~payments.delivery.webhooks.events`,
:mod:`~payments.delivery.webhooks.store`). A :class:`WebhookSender`
makes MERCHANT_WEBHOOK_URLS the URLs in force at start-up and delivers the events signed
(:mod:`~payments.delivery.webhooks.signing`), in order per customer, retrying for three days.

Public API::

    from payments.delivery.webhooks import WebhookSender, sign, verify, build_body
    sender = WebhookSender(db, urls, secret, clock)  # urls may be empty: then it only reports
    gone = await sender.start()          # before the jobs: the URLs in force; what is left
                                         # pending to URLs that are gone (admins are told)
    report = await sender.run(fence=replica.fence, live=replica.live)  # every few seconds
    overviews = await sender.overview()  # /webhooks
    count = await sender.redeliver(42)   # /redeliver 42 (None: every failed one)
    moved, dropped = await sender.move("1a2b3c4d", "5e6f7a8b")  # /webhooks move (UnknownUrl)
    count = await sender.drop("1a2b3c4d")                       # /webhooks drop (UnknownUrl)
    await sync_urls(db, urls, now_ms=...)  # what start() does, without a sender
"""

from payments.delivery.webhooks.events import TYPES as EVENT_TYPES
from payments.delivery.webhooks.monitor import Problem, UnknownUrl, UrlOverview
from payments.delivery.webhooks.sender import BUDGET_S as WEBHOOK_BUDGET_S
from payments.delivery.webhooks.sender import TIMEOUT_S as WEBHOOK_TIMEOUT_S
from payments.delivery.webhooks.sender import RunReport, WebhookSender, WebhookSettings
from payments.delivery.webhooks.signing import build_body, sign, verify
from payments.delivery.webhooks.store import GoneUrl, safe_url, sync_urls

__all__ = [
    "EVENT_TYPES",
    "WEBHOOK_BUDGET_S",
    "WEBHOOK_TIMEOUT_S",
    "GoneUrl",
    "Problem",
    "RunReport",
    "UnknownUrl",
    "UrlOverview",
    "WebhookSender",
    "WebhookSettings",
    "build_body",
    "safe_url",
    "sign",
    "sync_urls",
    "verify",
]
