"""The soak's invariants about delivery: what customers, the merchant's backend and the paid chats
saw once the run was over, however the bot was paused, killed or failed meanwhile (pure
functions; see :mod:`tests.soak.invariants`).

* :func:`messages_not_repeated`: a notification (a message the outbox writes: payment seen,
  received, expired, an invite link ...) reaches a customer's chat once; a second copy is
  excused only when a send of that very text was in flight when a process was paused or killed,
  or was answered after the bot's read time-out (either way the bot cannot know whether
  Telegram delivered it);
* :func:`order_kept`: a customer reads the notifications in the order they were written
  (outbox row ids), and for one invoice never "payment seen" / "part of your payment" after
  "payment received";
* :func:`events_reached_every_endpoint`: every merchant event the database holds was accepted by
  every configured webhook endpoint;
* :func:`no_entitled_customer_banned`: nobody whose subscription grants a paid chat is banned
  from it (a ban that was never lifted keeps them out for good).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from bot.texts import every_form
from fakes.receiver import Received
from payments.delivery import messages
from tests.soak.invariants_subs import iso

Row = Mapping[str, Any]

# outbox kind -> the text keys it is rendered with, and the payload field that tells one
# message of that kind from another (None: no such field, the text alone)
NOTIFICATIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    messages.PAYMENT_DETECTED: (("payment_detected",), "invoice"),
    messages.PAYMENT_PARTIAL: (("payment_partial",), "invoice"),
    messages.INVOICE_PAID: (("invoice_paid", "invoice_paid_no_end"), "invoice"),
    messages.INVOICE_EXPIRED: (("invoice_expired",), "invoice"),
    messages.PAYMENT_PARTIAL_EXPIRED: (("payment_partial_expired",), "invoice"),
    messages.PAYMENT_LATE_REVIEW: (("payment_late_review",), "invoice"),
    messages.PAYMENT_ON_HOLD: (("payment_on_hold",), "invoice"),
    messages.INVOICE_REJECTED: (("invoice_rejected",), "invoice"),
    messages.INVOICE_REVOKED: (("invoice_revoked",), "invoice"),
    messages.SUBSCRIPTION_GRANTED: (("subscription_granted",), None),
    messages.SUBSCRIPTION_REMINDER: (("subscription_reminder",), None),
    messages.SUBSCRIPTION_EXPIRED: (("subscription_expired",), None),
    messages.ACCESS_INVITE: (("access_invite", "access_invite_replaced"), "link"),
    messages.ACCESS_REMOVED: (("access_removed",), None),
}
PAYLOAD_FIELD = {"invoice": "invoice_id", "link": "link"}
SEEN_KINDS = (messages.PAYMENT_DETECTED, messages.PAYMENT_PARTIAL)  # before "payment received"


def _pattern(keys: Iterable[str], field: str | None = None, value: str | None = None) -> str:
    """The texts of ``keys`` in any language; ``field`` must read ``value``, the rest anything."""
    templates = {form for key in keys for form in every_form(key)}
    alternatives = []
    for template in sorted(templates):
        parts = []
        for literal, name, _, _ in string.Formatter().parse(template):
            parts.append(re.escape(literal))
            if name is not None and name == field and value is not None:
                parts.append(re.escape(value))
            elif name is not None:
                parts.append(".*?")
        alternatives.append("".join(parts))
    return "|".join(f"(?:{a})" for a in alternatives)


@cache
def notification_pattern() -> re.Pattern[str]:
    """Any customer notification the outbox sends."""
    every = [key for keys, _ in NOTIFICATIONS.values() for key in keys]
    return re.compile(_pattern(every), re.DOTALL)


@cache
def _kind_pattern(kind: str, value: str | None) -> re.Pattern[str]:
    keys, field = NOTIFICATIONS[kind]
    return re.compile(_pattern(keys, field, value), re.DOTALL)


def message_of(kind: str, payload: Mapping[str, Any]) -> re.Pattern[str] | None:
    """The text an outbox row of ``kind`` is delivered as, when it can be told from the others
    (None: a kind the soak does not follow, or one without a telling field)."""
    if kind not in NOTIFICATIONS:
        return None
    _, field = NOTIFICATIONS[kind]
    value = payload.get(PAYLOAD_FIELD[field]) if field is not None else None
    if field is None or value in (None, ""):
        return None
    return _kind_pattern(kind, str(value))


def messages_not_repeated(
    bot_texts: Mapping[int, Sequence[str]], in_flight: Collection[tuple[int, str]]
) -> list[str]:
    """No notification text reaches a chat twice, but for one extra copy per send of it that was
    in flight when a process was paused or killed, or answered after the bot's read time-out
    (``in_flight``: (chat id, text) of each)."""
    excused = Counter(in_flight)
    out: list[str] = []
    for chat, texts in sorted(bot_texts.items()):
        pattern = notification_pattern()
        counts = Counter(t for t in texts if pattern.fullmatch(t))
        for text, n in counts.items():
            extra = n - 1 - excused[(chat, text)]
            if extra > 0:
                out.append(
                    f"customer {chat} got this message {n} times"
                    f" ({excused[(chat, text)]} send(s) of it in flight at a pause or kill"
                    " or answered late):"
                    f" {text[:120]!r}"
                )
    return out


def order_kept(outbox: Sequence[Row], bot_texts: Mapping[int, Sequence[str]]) -> list[str]:
    """Per customer, the notifications the soak can tell apart arrive in the order they were
    written (outbox ids), each judged by its first copy in the chat; and for one invoice no
    "payment seen" or "part of your payment" comes after "payment received"."""
    out: list[str] = []
    rows: dict[int, list[Row]] = defaultdict(list)
    for row in outbox:
        if row["audience"] == "customer" and row["customer_id"] is not None:
            rows[int(row["customer_id"])].append(row)
    for customer, written in sorted(rows.items()):
        texts = list(bot_texts.get(customer, []))
        placed: list[tuple[int, Row]] = []  # (position in the chat, row), in written order
        for row in sorted(written, key=lambda r: int(r["id"])):
            pattern = message_of(str(row["kind"]), json.loads(row["payload"] or "{}"))
            if pattern is None:
                continue
            at = next((i for i, t in enumerate(texts) if pattern.fullmatch(t)), None)
            if at is not None:
                placed.append((at, row))
        latest: tuple[int, Row] | None = None
        for at, row in placed:
            if latest is not None and at < latest[0]:
                before = latest[1]
                out.append(
                    f"customer {customer} read outbox message {row['id']} ({row['kind']}, "
                    f"written {iso(row['created_at'])}) before message {before['id']} "
                    f"({before['kind']}, written {iso(before['created_at'])})"
                )
            if latest is None or at > latest[0]:
                latest = (at, row)
        out += _seen_after_received(customer, texts)
    return out


_INVOICE_IN = re.compile(r"invoice (\w+)")


def _seen_after_received(customer: int, texts: Sequence[str]) -> list[str]:
    out: list[str] = []
    received: dict[str, int] = {}
    for i, text in enumerate(texts):
        found = _INVOICE_IN.search(text)
        if found is None:
            continue
        invoice = found.group(1)
        if _kind_pattern(messages.INVOICE_PAID, invoice).fullmatch(text):
            received.setdefault(invoice, i)
        elif invoice in received and any(
            _kind_pattern(kind, invoice).fullmatch(text) for kind in SEEN_KINDS
        ):
            out.append(
                f"customer {customer} was told a payment for invoice {invoice} was seen "
                f"(message {i + 1} of the chat) after it was received (message "
                f"{received[invoice] + 1})"
            )
    return out


def events_reached_every_endpoint(
    events: Sequence[Row], accepted: Sequence[Received] | None, endpoints: Sequence[str]
) -> list[str]:
    """Every merchant event the database holds was accepted (2xx) at every endpoint (the paths
    of the configured webhook URLs on the receiver). No receiver or no endpoint named: not
    judged here (see :func:`tests.soak.invariants.webhooks_delivered`)."""
    if accepted is None or not endpoints:
        return []
    got: dict[str, set[str]] = defaultdict(set)
    for request in accepted:
        try:
            got[request.path].add(str(json.loads(request.body)["id"]))
        except (ValueError, KeyError, TypeError):
            continue
    out: list[str] = []
    for endpoint in endpoints:
        missing = [e for e in events if str(e["public_id"]) not in got[endpoint]]
        for event in missing:
            out.append(
                f"merchant event {event['id']} {event['public_id']} ({event['type']}) never "
                f"reached endpoint {endpoint}"
            )
    return out


def no_entitled_customer_banned(
    plan_chats: Mapping[str, Sequence[int]],
    subscriptions: Sequence[Row],
    banned: Mapping[int, set[int]],
    *,
    now_ms: int,
    grace_ms: int = 0,
) -> list[str]:
    """Nobody whose subscription to a plan granting a chat runs past now (minus the grace) is
    banned from that chat in Telegram."""
    out: list[str] = []
    cutoff = now_ms - grace_ms
    for sub in subscriptions:
        if int(sub["ends_at"]) <= cutoff:
            continue
        customer = int(sub["customer_id"])
        for chat in plan_chats.get(str(sub["plan_id"]), []):
            if customer in banned.get(chat, set()):
                out.append(
                    f"customer {customer} is banned from chat {chat} although their "
                    f"{sub['plan_id']} subscription runs until {iso(sub['ends_at'])}"
                )
    return out
