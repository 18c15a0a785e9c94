"""The message catalogue: every message the payments core hands the bot, in one place.

A message is an outbox row: a **kind** (a stable name the Telegram layer renders with its text
catalogue), an **audience** (one customer, or every admin) and a JSON **payload** (ids and
amounts as strings; times as epoch milliseconds). Each kind below is a :class:`Kind`, a ``str``
equal to its stable name, carrying its audience, its payload's type (a ``TypedDict``: the keys
it must have, and the optional ones) and a sample payload. The names and payloads are a
contract: rows already written must still render, so a kind is never renamed and a payload key
is only ever added as optional.

Writing one: ``KIND.message(payload, key=..., customer_id=...)`` makes a :class:`Message`
(mypy checks the payload against the kind's type) and
:func:`payments.delivery.outbox.enqueue` writes it in the caller's transaction. A kind that is
not in this catalogue, or a payload missing a key or carrying one its kind does not know, is
refused there with :class:`InvalidMessage`: at once, not when the bot fails to render it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar

from payments.errors import PaymentsError
from payments.facts import InvoiceFacts
from payments.money import format_amount

Audience = Literal["customer", "admins"]
AUDIENCES: tuple[Audience, ...] = ("customer", "admins")

P = TypeVar("P", bound=Mapping[str, Any])


class InvalidMessage(PaymentsError, ValueError):
    """A message the catalogue does not know (its kind), or whose payload does not fit its
    kind (a missing or unknown key): refused when it is enqueued, nothing is written."""


@dataclass(frozen=True)
class Message:
    """One message to enqueue (:func:`payments.delivery.outbox.enqueue`).

    ``key``: the de-duplication key (e.g. ``f"sub:{id}:expired:{ends_at}"``): writing the same
    event twice yields one message. ``customer_id``: the recipient of a customer message; on an
    admin alert, the customer it is about (if any).
    """

    kind: str
    payload: Mapping[str, Any]
    key: str
    customer_id: int | None = None


class Kind(str, Generic[P]):
    """A message kind: equal to (and hashed as) its stable name, e.g. ``"invoice.paid"``."""

    audience: Audience
    payload_type: type[P]
    sample: P
    doc: str

    def __new__(
        cls, name: str, audience: Audience, payload_type: type[P], sample: P, doc: str
    ) -> Kind[P]:
        if audience not in AUDIENCES:
            raise ValueError(f"unknown audience {audience!r}")
        self = super().__new__(cls, name)
        self.audience = audience
        self.payload_type = payload_type
        self.sample = sample
        self.doc = doc
        return self

    @property
    def required(self) -> frozenset[str]:
        return frozenset(getattr(self.payload_type, "__required_keys__", frozenset()))

    @property
    def keys(self) -> frozenset[str]:
        optional: frozenset[str] = getattr(self.payload_type, "__optional_keys__", frozenset())
        return self.required | frozenset(optional)

    def message(self, payload: P, *, key: str, customer_id: int | None = None) -> Message:
        """This kind's message. An admin alert about a customer (its payload names one) keeps
        them in the row's ``customer_id`` unless ``customer_id`` is given."""
        if customer_id is None and self.audience == "admins":
            about = payload.get("customer_id")
            customer_id = about if isinstance(about, int) else None
        return Message(kind=self, payload=payload, key=key, customer_id=customer_id)


KINDS: dict[str, Kind[Any]] = {}


def _kind(name: str, audience: Audience, payload_type: type[P], sample: P, doc: str) -> Kind[P]:
    if name in KINDS:
        raise ValueError(f"kind {name!r} is defined twice")
    kind = Kind(name, audience, payload_type, sample, doc)
    KINDS[name] = kind
    return kind


def kind_of(name: str) -> Kind[Any]:
    """The catalogue's kind named ``name``; :class:`InvalidMessage` when there is none."""
    kind = KINDS.get(name)
    if kind is None:
        raise InvalidMessage(f"unknown message kind {name!r}")
    return kind


def check(message: Message) -> Kind[Any]:
    """``message``'s kind, once its kind and payload keys are known to fit the catalogue."""
    kind = kind_of(str(message.kind))
    keys = set(message.payload)
    missing = kind.required - keys
    unknown = keys - kind.keys
    if missing:
        raise InvalidMessage(f"{kind} payload lacks {', '.join(sorted(missing))}")
    if unknown:
        raise InvalidMessage(f"{kind} payload has unknown {', '.join(sorted(unknown))}")
    return kind


# --- payloads --------------------------------------------------------------------------------


class InvoiceFields(TypedDict):
    """What every message about an invoice carries (:func:`invoice_fields`)."""

    invoice_id: str
    customer_id: int
    plan_id: str
    currency: str
    network: str
    amount: str  # the amount asked, at the invoice's step


def invoice_fields(invoice: InvoiceFacts) -> InvoiceFields:
    return {
        "invoice_id": invoice.id,
        "customer_id": invoice.customer_id,
        "plan_id": invoice.plan_id,
        "currency": invoice.currency,
        "network": invoice.network,
        "amount": format_amount(invoice.amount, invoice.step),
    }


class Received(InvoiceFields):
    received: str | None  # what the counted deposits add up to


class ReceivedExceptions(Received):
    exceptions: list[str]  # the invoice's exception flags, sorted


class Paid(ReceivedExceptions):
    ends_at: int | None  # the subscription's new end (None: no period was credited)


class Partial(Received):
    shortfall: str
    topup_amount: str  # the unique amount to send for the rest
    address: str | None


class Revoked(Received):
    reason: str
    status: str  # the invoice's status after the correction


class ClaimReview(InvoiceFields):
    dep_id: str | None
    reason: str


class DepositFields(TypedDict):
    dep_id: str
    currency: str
    chain: str
    deposit_amount: str
    state: str  # OKX's deposit state
    tx_id: str
    ts: int


class DepositOnInvoice(DepositFields):
    invoice_id: str


class Unmatched(DepositFields):
    reason: str
    candidate_invoice_id: str | None  # the invoice it probably was for


class Frozen(DepositOnInvoice):
    reason: str
    matched_amount: str | None
    matched_state: str | None


class NotSold(TypedDict):
    count: int
    kinds: list[str]  # "TRX (TRX-TRC20)", ... (at most 10)
    dep_id: str  # the first


class Granted(TypedDict):
    plan_id: str
    days: int
    ends_at: int


class Reminder(TypedDict):
    plan_id: str
    ends_at: int
    days_before: int


class Expired(TypedDict):
    plan_id: str
    ends_at: int


class Invite(TypedDict):
    chat_id: int
    chat_title: str
    plan_id: str
    link: str
    expires_at: int
    replaced: bool  # a new link in place of one that stopped working


class Removed(TypedDict):
    chat_id: int
    chat_title: str
    plan_id: str
    ended_at: int


class OkxFailing(TypedDict):
    since: int  # OKX time of the first failed poll
    error: str


class OkxRecovered(TypedDict):
    since: int
    failure: str | None  # "auth" | "unavailable"


class ClockOffset(TypedDict):
    offset_ms: int


class _CapacityCounts(TypedDict):
    currency: str
    free: int
    total: int
    what: str  # "amounts" (plan_id given) | "addresses" (chain given)


class Capacity(_CapacityCounts, total=False):  # one of the two
    plan_id: str
    chain: str


class WebhookFailed(TypedDict):
    url: str  # without its query
    delivery_id: int
    event_id: str
    event_type: str
    attempts: int
    error: str


class GoneUrl(TypedDict):
    id: str
    url: str  # without its query
    pending: int


class WebhookGone(TypedDict):
    urls: list[GoneUrl]
    count: int  # deliveries pending in all


class AccessFailing(TypedDict):
    chat_id: int
    chat_title: str
    action: str
    error: str


class ChatRights(TypedDict):
    problems: list[str]


class Unrenderable(TypedDict):
    message_id: int
    kind: str
    audience: str


class SupportInvoice(TypedDict):
    """A crypto invoice, or a Telegram Stars order (currency XTR, amount its Stars)."""

    invoice_id: str
    plan_id: str
    amount: str  # the amount asked, at the invoice's step
    currency: str
    network: str  # "stars" for a Stars order
    status: str
    created_at: int


class SupportRequest(TypedDict):
    customer_id: int
    username: str | None  # Telegram's @username without the @, when they have one
    name: str | None  # first and last name as Telegram gave them (the customer's own words)
    invoices: list[SupportInvoice]  # the newest first, at most 5


# --- samples (the catalogue's examples; a test renders every kind with them) -----------------

_INVOICE: InvoiceFields = {
    "invoice_id": "ABCD2345",
    "customer_id": 101,
    "plan_id": "pro",
    "currency": "USDT",
    "network": "TRC20",
    "amount": "29.0001",
}
_RECEIVED: Received = {**_INVOICE, "received": "29.0001"}
_DEPOSIT: DepositFields = {
    "dep_id": "1001",
    "currency": "USDT",
    "chain": "USDT-TRC20",
    "deposit_amount": "3.1415",
    "state": "2",
    "tx_id": "0xabc",
    "ts": 1_768_478_400_000,
}
_WHEN = 1_768_478_400_000  # 2026-01-15 12:00 UTC


# --- customer messages -----------------------------------------------------------------------

PAYMENT_DETECTED: Kind[Received] = _kind(
    "payment.detected",
    "customer",
    Received,
    _RECEIVED,
    "A payment was seen; waiting for its confirmations.",
)
PAYMENT_PARTIAL: Kind[Partial] = _kind(
    "payment.partial",
    "customer",
    Partial,
    {**_RECEIVED, "shortfall": "9", "topup_amount": "9.0002", "address": "TXYZ"},
    "Paid short: the shortfall and the unique top-up amount to send.",
)
INVOICE_PAID: Kind[Paid] = _kind(
    "invoice.paid",
    "customer",
    Paid,
    {**_RECEIVED, "exceptions": [], "ends_at": _WHEN},
    "Paid; the subscription is active until ends_at.",
)
INVOICE_EXPIRED: Kind[InvoiceFields] = _kind(
    "invoice.expired", "customer", InvoiceFields, _INVOICE, "Expired unpaid."
)
INVOICE_REJECTED: Kind[InvoiceFields] = _kind(
    "invoice.rejected", "customer", InvoiceFields, _INVOICE, "An admin rejected the invoice."
)
INVOICE_REVOKED: Kind[InvoiceFields] = _kind(
    "invoice.revoked",
    "customer",
    InvoiceFields,
    _INVOICE,
    "An admin's correction left the invoice short: its period was taken back.",
)
PAYMENT_PARTIAL_EXPIRED: Kind[Received] = _kind(
    "payment.partial_expired",
    "customer",
    Received,
    _RECEIVED,
    "Expired part-paid; an admin will look at the money received.",
)
PAYMENT_LATE_REVIEW: Kind[Received] = _kind(
    "payment.late_review",
    "customer",
    Received,
    _RECEIVED,
    "Money arrived after the invoice expired; an admin will look.",
)
PAYMENT_ON_HOLD: Kind[InvoiceFields] = _kind(
    "payment.on_hold",
    "customer",
    InvoiceFields,
    _INVOICE,
    "OKX holds the deposit; an admin will look.",
)
SUBSCRIPTION_GRANTED: Kind[Granted] = _kind(
    "subscription.granted",
    "customer",
    Granted,
    {"plan_id": "pro", "days": 30, "ends_at": _WHEN},
    "An admin granted days of a plan.",
)
SUBSCRIPTION_REMINDER: Kind[Reminder] = _kind(
    "subscription.reminder",
    "customer",
    Reminder,
    {"plan_id": "pro", "ends_at": _WHEN, "days_before": 3},
    "The subscription ends in days_before days.",
)
SUBSCRIPTION_EXPIRED: Kind[Expired] = _kind(
    "subscription.expired",
    "customer",
    Expired,
    {"plan_id": "pro", "ends_at": _WHEN},
    "The subscription ended.",
)
ACCESS_INVITE: Kind[Invite] = _kind(
    "access.invite",
    "customer",
    Invite,
    {
        "chat_id": -1001,
        "chat_title": "Club",
        "plan_id": "pro",
        "link": "https://t.me/+abcdef",
        "expires_at": _WHEN,
        "replaced": False,
    },
    "A one-person link to the plan's chat.",
)
ACCESS_REMOVED: Kind[Removed] = _kind(
    "access.removed",
    "customer",
    Removed,
    {"chat_id": -1001, "chat_title": "Club", "plan_id": "pro", "ended_at": _WHEN},
    "The subscription ended, so the customer was removed from the chat.",
)

# --- admin alerts ----------------------------------------------------------------------------

ADMIN_PAID: Kind[Paid] = _kind(
    "admin.payment_settled",
    "admins",
    Paid,
    {**_RECEIVED, "exceptions": ["marked"], "ends_at": _WHEN},
    "An invoice was paid.",
)
ADMIN_UNMATCHED: Kind[Unmatched] = _kind(
    "admin.deposit_unmatched",
    "admins",
    Unmatched,
    {**_DEPOSIT, "reason": "no_candidate", "candidate_invoice_id": "ABCD2345"},
    "A deposit matched no invoice.",
)
ADMIN_ON_HOLD: Kind[DepositOnInvoice] = _kind(
    "admin.deposit_on_hold",
    "admins",
    DepositOnInvoice,
    {**_DEPOSIT, "invoice_id": "ABCD2345"},
    "OKX holds a deposit attached to an invoice.",
)
ADMIN_FROZEN: Kind[Frozen] = _kind(
    "admin.invoice_frozen",
    "admins",
    Frozen,
    {
        **_DEPOSIT,
        "invoice_id": "ABCD2345",
        "reason": "amount changed",
        "matched_amount": "3.1",
        "matched_state": "1",
    },
    "A matched deposit changed at OKX: its invoice is frozen for an admin.",
)
ADMIN_DUPLICATE: Kind[DepositOnInvoice] = _kind(
    "admin.duplicate_payment",
    "admins",
    DepositOnInvoice,
    {**_DEPOSIT, "invoice_id": "ABCD2345"},
    "A second payment of a paid invoice (never credited).",
)
ADMIN_AFTER_CLOSE: Kind[DepositOnInvoice] = _kind(
    "admin.payment_after_close",
    "admins",
    DepositOnInvoice,
    {**_DEPOSIT, "invoice_id": "ABCD2345"},
    "A payment to a cancelled or rejected invoice.",
)
ADMIN_LATE_REVIEW: Kind[ReceivedExceptions] = _kind(
    "admin.late_review",
    "admins",
    ReceivedExceptions,
    {**_RECEIVED, "exceptions": []},
    "Money arrived after the invoice expired.",
)
ADMIN_PARTIAL_UNFINISHED: Kind[Received] = _kind(
    "admin.partial_unfinished",
    "admins",
    Received,
    {**_INVOICE, "received": "10"},
    "An invoice ended part-paid: money to return or settle by hand.",
)
ADMIN_TOPUP_UNAVAILABLE: Kind[Received] = _kind(
    "admin.topup_unavailable",
    "admins",
    Received,
    {**_INVOICE, "received": "10"},
    "No unique top-up amount was free for a part-paid invoice.",
)
ADMIN_CLAIM_REVIEW: Kind[ClaimReview] = _kind(
    "admin.claim_review",
    "admins",
    ClaimReview,
    {**_INVOICE, "dep_id": "1001", "reason": "second_claim"},
    "A customer's claim (tx hash / withdrawal id) needs an admin.",
)
ADMIN_NOT_SOLD: Kind[NotSold] = _kind(
    "admin.deposits_not_sold",
    "admins",
    NotSold,
    {"count": 2, "kinds": ["TRX (TRX-TRC20)"], "dep_id": "1001"},
    "Deposits in coins or on chains the shop does not sell (at most one message an hour).",
)
ADMIN_UNSETTLED: Kind[ReceivedExceptions] = _kind(
    "admin.payment_unsettled",
    "admins",
    ReceivedExceptions,
    {**_RECEIVED, "exceptions": ["on_hold"]},
    "A payment was still unconfirmed (or held) when its invoice's monitoring window ended.",
)
ADMIN_REVOKED: Kind[Revoked] = _kind(
    "admin.invoice_revoked",
    "admins",
    Revoked,
    {**_RECEIVED, "reason": "reassigned", "status": "expired"},
    "An admin's correction left an invoice short of its price: its period was revoked.",
)
ADMIN_OKX_AUTH: Kind[OkxFailing] = _kind(
    "admin.okx_auth_failed",
    "admins",
    OkxFailing,
    {"since": _WHEN, "error": "API key refused (<50105>)"},
    "OKX refuses the API key: fix it, it will not heal.",
)
ADMIN_OKX_DOWN: Kind[OkxFailing] = _kind(
    "admin.okx_unreachable",
    "admins",
    OkxFailing,
    {"since": _WHEN, "error": "timeout"},
    "Polls of OKX keep failing.",
)
ADMIN_OKX_RECOVERED: Kind[OkxRecovered] = _kind(
    "admin.okx_recovered",
    "admins",
    OkxRecovered,
    {"since": _WHEN, "failure": "auth"},
    "Polls of OKX work again.",
)
ADMIN_CLOCK: Kind[ClockOffset] = _kind(
    "admin.clock_offset",
    "admins",
    ClockOffset,
    {"offset_ms": 45_200},
    "The host's clock is off OKX's.",
)
ADMIN_CAPACITY: Kind[Capacity] = _kind(
    "admin.capacity_low",
    "admins",
    Capacity,
    {"currency": "USDT", "plan_id": "pro", "free": 3, "total": 100, "what": "amounts"},
    "Free unique amounts (per currency and plan) or pool addresses (per chain) run low.",
)
ADMIN_WEBHOOK_FAILED: Kind[WebhookFailed] = _kind(
    "admin.webhook_failed",
    "admins",
    WebhookFailed,
    {
        "url": "https://merchant.example/hook",
        "delivery_id": 7,
        "event_id": "evt_1",
        "event_type": "invoice.paid",
        "attempts": 12,
        "error": "HTTP 500",
    },
    "A merchant webhook delivery was given up on after 3 days.",
)
ADMIN_WEBHOOK_GONE: Kind[WebhookGone] = _kind(
    "admin.webhook_gone",
    "admins",
    WebhookGone,
    {"urls": [{"id": "u1", "url": "https://old.example/hook", "pending": 2}], "count": 2},
    "Deliveries are pending for webhook URLs no longer configured (seen at start-up).",
)
ADMIN_ACCESS_FAILING: Kind[AccessFailing] = _kind(
    "admin.access_failing",
    "admins",
    AccessFailing,
    {"chat_id": -1001, "chat_title": "Club", "action": "invite", "error": "not enough rights"},
    "Telegram refuses the bot's actions in a chat (told once until one succeeds).",
)
ADMIN_CHAT_RIGHTS: Kind[ChatRights] = _kind(
    "admin.chat_rights",
    "admins",
    ChatRights,
    {"problems": ["Club: cannot invite users"]},
    "What the bot cannot do in its chats (once per distinct set a day).",
)
ADMIN_UNRENDERABLE: Kind[Unrenderable] = _kind(
    "admin.message_unrenderable",
    "admins",
    Unrenderable,
    {"message_id": 42, "kind": "payment.unknown", "audience": "customer"},
    "A message this version of the bot cannot render was given up on.",
)


# --- the Telegram Stars rail -----------------------------------------------------------------


class StarsPaid(TypedDict):
    """A Stars charge credited: the first payment of an order or a renewal."""

    stars_invoice: str  # the order (its id is the invoice payload)
    payment_id: str  # the charge's period key, shown to admins (/refund takes it)
    customer_id: int
    plan_id: str
    stars: int
    recurring: bool  # a Telegram subscription, charged every 30 days
    renewal: bool  # a charge after the first
    ends_at: int | None  # the subscription's new end


class StarsRefunded(TypedDict):
    payment_id: str
    customer_id: int
    plan_id: str
    stars: int
    by: str  # "admin" (/refund) | "telegram" (refunded outside the bot)
    ends_at: int | None  # the subscription's end after the period was taken back


class StarsUnmatched(TypedDict):
    """A Stars payment the shop cannot place, or one it recorded that Telegram's ledger lacks."""

    charge_id: str
    customer_id: int
    stars: int
    reason: str


_STARS_PAID: StarsPaid = {
    "stars_invoice": "S7KQ2M4P",
    "payment_id": "XTRAB12CD34",
    "customer_id": 42,
    "plan_id": "pro",
    "stars": 1500,
    "recurring": True,
    "renewal": False,
    "ends_at": _WHEN,
}
_STARS_REFUNDED: StarsRefunded = {
    "payment_id": "XTRAB12CD34",
    "customer_id": 42,
    "plan_id": "pro",
    "stars": 1500,
    "by": "admin",
    "ends_at": _WHEN,
}

STARS_PAID: Kind[StarsPaid] = _kind(
    "stars.paid",
    "customer",
    StarsPaid,
    _STARS_PAID,
    "A Stars payment (or a renewal) was credited; active until ends_at.",
)
STARS_REFUNDED: Kind[StarsRefunded] = _kind(
    "stars.refunded",
    "customer",
    StarsRefunded,
    _STARS_REFUNDED,
    "A Stars payment was refunded and the time it bought taken back.",
)
ADMIN_STARS_PAID: Kind[StarsPaid] = _kind(
    "admin.stars_paid", "admins", StarsPaid, _STARS_PAID, "A Stars payment was credited."
)
ADMIN_STARS_REFUNDED: Kind[StarsRefunded] = _kind(
    "admin.stars_refunded",
    "admins",
    StarsRefunded,
    _STARS_REFUNDED,
    "A Stars payment was refunded (by an admin, or outside the bot) and revoked.",
)
ADMIN_STARS_UNMATCHED: Kind[StarsUnmatched] = _kind(
    "admin.stars_unmatched",
    "admins",
    StarsUnmatched,
    {"charge_id": "stxABC", "customer_id": 42, "stars": 1500, "reason": "not in the ledger"},
    "A Stars payment that names no order of the shop, or one Telegram's ledger lacks.",
)
ADMIN_SUPPORT: Kind[SupportRequest] = _kind(
    "admin.support_request",
    "admins",
    SupportRequest,
    {
        "customer_id": 101,
        "username": "alice",
        "name": "Alice Smith",
        "invoices": [
            {
                "invoice_id": "ABCD2345",
                "plan_id": "pro",
                "amount": "29.0001",
                "currency": "USDT",
                "network": "TRC20",
                "status": "paid",
                "created_at": _WHEN,
            }
        ],
    },
    "A customer asked for help with a payment (/paysupport; one a customer per 10 minutes).",
)
