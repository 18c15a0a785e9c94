"""Signed webhooks to the merchant's backend (README "Webhooks to your backend").

Events are recorded in the transaction of the decision they report, whether or not any URL is
configured (:mod:`~payments.webhooks.emit`, :mod:`~payments.webhooks.events`). A
:class:`WebhookSender` fans them out to each MERCHANT_WEBHOOK_URLS entry and delivers them
signed (:mod:`~payments.webhooks.signing`), in order per customer, retrying for three days.

Public API::

    from payments.webhooks import WebhookSender, sign, verify, build_body
    sender = WebhookSender(db, urls, secret, clock)
    await sender.start()                 # before the jobs: new URLs start at the newest event
    report = await sender.run()          # every few seconds
    overviews = await sender.overview()  # /webhooks
    count = await sender.redeliver(42)   # /redeliver 42 (None: every failed one)
"""

from payments.webhooks.events import TYPES as EVENT_TYPES
from payments.webhooks.monitor import Problem, UrlOverview
from payments.webhooks.sender import RunReport, WebhookSender
from payments.webhooks.signing import build_body, sign, verify
from payments.webhooks.store import safe_url

__all__ = [
    "EVENT_TYPES",
    "Problem",
    "RunReport",
    "UrlOverview",
    "WebhookSender",
    "build_body",
    "safe_url",
    "sign",
    "verify",
]
