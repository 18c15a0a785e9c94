"""The database schema (SQLAlchemy Core). Migrations in ``payments/migrations`` create it.

Conventions: every time is an integer of milliseconds since the epoch (UTC), the same unit as
OKX's ``ts``; every amount is exact: reservations are integer units at the currency's scale
(10^-8 for every default coin), deposits keep OKX's canonical string plus their units when exact.
Never SQLite REAL: ``Numeric`` on SQLite goes through floats.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

customers = Table(
    "customers",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # Telegram user id
    Column("language", String(16), nullable=True),
    Column("unreachable", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("blocked_at", BigInteger, nullable=True),  # /block: no new invoices, no claims
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", String(16), primary_key=True),  # public id shown to customers and admins
    Column("customer_id", BigInteger, ForeignKey("customers.id"), nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("days", Integer, nullable=False),
    Column("price_usd", String(32), nullable=False),  # Decimal text
    Column("currency", String(16), nullable=False),
    Column("network", String(16), nullable=False),  # catalogue code, "TRC20"
    Column("chain", String(64), nullable=False),  # OKX chain, "USDT-TRC20"
    Column("address", String(200), nullable=False),
    Column("tag", String(200), nullable=True),
    Column("rate", String(40), nullable=False),  # locked USD price of one coin, Decimal text
    Column("scale", Integer, nullable=False),
    Column("step", String(32), nullable=False),  # Decimal text
    Column("base_units", BigInteger, nullable=False),  # price / rate, rounded up to the step
    Column("amount_units", BigInteger, nullable=False),  # base + unique offset: what to pay
    Column("topup_units", BigInteger, nullable=True),  # open top-up amount after a partial
    Column("status", String(16), nullable=False),
    Column("exceptions", String(160), nullable=False, default=""),  # comma-joined set
    Column("frozen", Boolean, nullable=False, default=False),  # needs an admin (changed deposit)
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("monitor_until", BigInteger, nullable=False),
    Column("paid_at", BigInteger, nullable=True),
    Column("closed_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Column("version", Integer, nullable=False, default=0),
    Index(None, "customer_id", "status"),
    Index(None, "currency", "status", "base_units"),
    Index(None, "address", "status"),
    Index(None, "status", "expires_at"),
    Index(None, "status", "paid_at"),  # /stats: the sales of a window, not of all time
    Index(None, "address", "monitor_until"),  # a poll: invoices still watched on an address
    Index(None, "frozen"),  # /pending: the frozen ones, not every invoice ever made
)

# One row per (currency, amount): the slot is held by one invoice until ``held_until``
# (created_at + lifetime + monitoring window, or later for a top-up). Taken by INSERT, or by a
# compare-and-set UPDATE on ``held_until`` once released for at least the quarantine (24 h).
reservations = Table(
    "reservations",
    metadata,
    Column("currency", String(16), nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("invoice_id", String(16), ForeignKey("invoices.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # "main" | "topup"
    Column("address", String(200), nullable=True),
    Column("taken_at", BigInteger, nullable=False),
    Column("held_until", BigInteger, nullable=False),
    PrimaryKeyConstraint("currency", "amount_units"),
    Index(None, "invoice_id"),
)

pool_addresses = Table(
    "pool_addresses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("currency", String(16), nullable=False),
    Column("chain", String(64), nullable=False),
    Column("address", String(200), nullable=False),
    Column("tag", String(200), nullable=False, default=""),  # "" when the chain has no memo
    Column("selected", Boolean, nullable=False, default=False),
    Column("active", Boolean, nullable=False, default=True),  # still returned by OKX
    Column("holder_invoice_id", String(16), nullable=True),
    Column("held_until", BigInteger, nullable=False, default=0),  # free when <= now
    Column("assigned_at", BigInteger, nullable=False, default=0),
    Column("refreshed_at", BigInteger, nullable=False),
    UniqueConstraint("currency", "chain", "address", "tag"),
)

chain_status = Table(
    "chain_status",
    metadata,
    Column("currency", String(16), nullable=False),
    Column("chain", String(64), nullable=False),
    Column("can_deposit", Boolean, nullable=False),
    Column("min_deposit", String(40), nullable=False),
    Column("need_tag", Boolean, nullable=False),
    Column("withdraw_fee", String(40), nullable=True),
    Column("withdraw_tick", String(40), nullable=True),
    Column("refreshed_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("currency", "chain"),
)

deposits = Table(
    "deposits",
    metadata,
    Column("dep_id", String(64), primary_key=True),
    Column("currency", String(16), nullable=False),
    Column("chain", String(64), nullable=False),
    Column("amount", String(64), nullable=False),  # OKX's canonical string
    Column("amount_units", BigInteger, nullable=True),  # None: not exact at the scale
    Column("to_address", String(200), nullable=False, default=""),
    Column("tx_id", String(200), nullable=False, default=""),
    Column("from_wd_id", String(64), nullable=False, default=""),
    Column("type", String(4), nullable=False),
    Column("state", String(8), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("raw", Text, nullable=False),
    Column("first_seen_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("needs_decision", Boolean, nullable=False, default=True),
    # what was decided: "new" (not yet), "attached", "unmatched", "refunded"
    Column("disposition", String(16), nullable=False, default="new"),
    Column("invoice_id", String(16), ForeignKey("invoices.id"), nullable=True),
    Column("match_kind", String(16), nullable=True),
    Column("matched_amount", String(64), nullable=True),
    Column("matched_state", String(8), nullable=True),
    Column("candidate_invoice_id", String(16), nullable=True),  # a hint for the admin
    Column("note", String(200), nullable=False, default=""),
    # when OKX stopped returning the record (a reorg, a reversed credit); None while it does
    Column("vanished_at", BigInteger, nullable=True),
    Index(None, "needs_decision"),
    Index(None, "invoice_id"),
    Index(None, "tx_id"),
    Index(None, "from_wd_id"),
    Index(None, "disposition", "ts"),
    Index(None, "currency", "amount_units"),
    Index(None, "match_kind", "disposition"),  # /pending: duplicates and after-close payments
)

# The invoices an ambiguous deposit could have been for when it was decided (at most a hundred):
# a claim attaches such a deposit by itself only to one of these. Tx hashes are public, so
# today's state is no evidence; the matcher's own view at the time is.
deposit_candidates = Table(
    "deposit_candidates",
    metadata,
    Column("dep_id", String(64), ForeignKey("deposits.dep_id"), nullable=False),
    Column("invoice_id", String(16), nullable=False),
    PrimaryKeyConstraint("dep_id", "invoice_id"),
)

claims = Table(
    "claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", String(16), ForeignKey("invoices.id"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("reference", String(200), nullable=False),
    Column("dep_id", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),  # attached | not_found | rejected | admin
    Column("reason", String(40), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "dep_id"),
    Index(None, "invoice_id"),
    Index(None, "customer_id", "created_at"),  # the claim rate limit's count
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, ForeignKey("customers.id"), nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # active | expired
    Column("reminded_3d_for", BigInteger, nullable=True),  # the ends_at the reminder was for
    Column("reminded_1d_for", BigInteger, nullable=True),
    Column("expired_for", BigInteger, nullable=True),  # the ends_at the expiry was told for
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("customer_id", "plan_id"),
    Index(None, "status", "ends_at"),
)

subscription_periods = Table(
    "subscription_periods",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", Integer, ForeignKey("subscriptions.id"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("invoice_id", String(16), nullable=True, unique=True),  # one period per invoice
    Column("source", String(16), nullable=False),  # payment | grant
    Column("days", Integer, nullable=False),
    Column("credited_at", BigInteger, nullable=False),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("revoke_reason", String(80), nullable=True),
    Index(None, "subscription_id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("audience", String(16), nullable=False),  # customer | admins
    Column("customer_id", BigInteger, nullable=True),
    Column("kind", String(40), nullable=False),
    Column("payload", Text, nullable=False),  # JSON, amounts as strings
    Column("status", String(16), nullable=False),  # pending | sent | failed | unreachable
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("claimed_until", BigInteger, nullable=False, default=0),
    Column("claim_token", String(40), nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("sent_to", Text, nullable=True),  # JSON: the admins an alert already reached
    Index(None, "status", "next_attempt_at"),
    Index(None, "audience", "status", "customer_id"),  # an earlier message still pending?
)

kv = Table(
    "kv",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Invoice photos the bot sent: their captions are edited when the invoice is
# paid, expires or is cancelled, from any replica and after restarts.
invoice_messages = Table(
    "invoice_messages",
    metadata,
    Column("chat_id", BigInteger, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("invoice_id", String(16), ForeignKey("invoices.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("chat_id", "message_id"),
    Index(None, "invoice_id"),
)

# "Waiting for a claim for invoice X": one per customer, until ``until``.
claim_waits = Table(
    "claim_waits",
    metadata,
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("invoice_id", String(16), nullable=False),
    Column("until", BigInteger, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(80), nullable=False),
    Column("token", BigInteger, nullable=False),  # fencing token, grows on every take-over
    Column("expires_at", BigInteger, nullable=False),
)

# Signals between replicas: a standby raises one ("poll": a customer asked to check now) and
# the lease holder, which alone may act on it, looks every few seconds whether ``raised`` (a
# count, so no host's clock is compared with another's) has grown.
signals = Table(
    "signals",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("raised", BigInteger, nullable=False),
    Column("raised_at", BigInteger, nullable=False),  # the last time, for a reader
)

# Chat access (channels and groups a plan grants): one row per (customer, chat) with its state,
# so granting and removing survive restarts and are idempotent. States: payments/access.
memberships = Table(
    "memberships",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, ForeignKey("customers.id"), nullable=False),
    Column("chat_id", BigInteger, nullable=False),
    Column("plan_id", String(32), nullable=False),  # the plan that granted it (renew button)
    Column("state", String(16), nullable=False),  # pending | invited | member | left | removed
    Column("link", String(200), nullable=True),  # the invite link sent last
    Column("invited_at", BigInteger, nullable=True),
    Column("joined_at", BigInteger, nullable=True),
    Column("removed_at", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),  # failed invite / removal attempts
    Column("next_attempt_at", BigInteger, nullable=False, default=0),
    Column("last_error", String(300), nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    # set while a removal is under way (claimed, the ban perhaps made, the unban still owed):
    # the access end it acts on; the removal is finished or undone whatever the entitlement
    Column("removal_ended_at", BigInteger, nullable=True),
    UniqueConstraint("customer_id", "chat_id"),
    Index(None, "state", "next_attempt_at"),
    Index(None, "chat_id", "state"),
)

# Every invite link the bot created, so a join through it names the buyer it was made for.
access_links = Table(
    "access_links",
    metadata,
    Column("link", String(200), primary_key=True),
    Column("membership_id", Integer, ForeignKey("memberships.id"), nullable=False),
    Column("chat_id", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_by", BigInteger, nullable=True),  # who joined through it
    Column("revoked_at", BigInteger, nullable=True),
    Index(None, "membership_id"),
)

# Someone who joined a paid chat through a link made for another customer: stored with that
# decision and retried until the ban and unban both worked (dropped once they are entitled).
access_expulsions = Table(
    "access_expulsions",
    metadata,
    Column("chat_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("link", String(200), nullable=True),  # the link they used, to revoke
    Column("created_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", String(300), nullable=True),
    PrimaryKeyConstraint("chat_id", "user_id"),
)

# Merchant webhooks: events written in the transaction of what they report, then delivered to
# each MERCHANT_WEBHOOK_URLS entry (one delivery row per event and URL, every attempt recorded).
merchant_events = Table(
    "merchant_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_key", String(200), nullable=False, unique=True),  # one event per occurrence
    Column("public_id", String(40), nullable=False, unique=True),  # "evt_..." sent to receivers
    Column("type", String(40), nullable=False),  # invoice.paid, subscription.activated, ...
    Column("order_key", String(80), nullable=False),  # delivered in order within one key
    Column("payload", Text, nullable=False),  # JSON, amounts as strings
    Column("created_at", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, ForeignKey("merchant_events.id"), nullable=False),
    Column("url", String(500), nullable=False),
    Column("order_key", String(80), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("give_up_at", BigInteger, nullable=False),
    Column("claimed_until", BigInteger, nullable=False, default=0),
    Column("claim_token", String(40), nullable=True),
    Column("last_status", Integer, nullable=True),  # HTTP status of the last attempt
    Column("last_error", String(300), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    UniqueConstraint("event_id", "url"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "url", "order_key", "status"),
    Index(None, "url", "status", "id"),  # /webhooks: bounded counts, the newest problems
)

# The MERCHANT_WEBHOOK_URLS in force: an event gets a delivery to each of them in the transaction
# that records it. Rewritten at start-up; a URL that is gone loses its row (and so its history).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("url", String(500), primary_key=True),
    Column("added_at", BigInteger, nullable=False),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempted_at", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no HTTP answer (refused, time-out)
    Column("error", String(300), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index(None, "delivery_id"),
)


# --- the Telegram Stars rail -----------------------------------------------------------------

# An order for Stars: what the customer was offered (plan, price, one-off or a 30-day
# subscription). Its id is the invoice payload (``subsbot:<id>``), checked at pre-checkout.
star_invoices = Table(
    "star_invoices",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("customer_id", BigInteger, ForeignKey("customers.id"), nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("days", Integer, nullable=False),
    Column("stars", Integer, nullable=False),
    Column("recurring", Boolean, nullable=False),  # a Telegram subscription (every 30 days)
    Column("status", String(16), nullable=False),  # pending | paid | expired | cancelled
    Column("link", String(300), nullable=True),  # createInvoiceLink's answer (subscriptions)
    Column("first_charge_id", String(200), nullable=True),  # identifies the subscription
    Column("renewal_off", Boolean, nullable=False, default=False),  # the customer turned it off
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # pre-checkout refuses it from then on
    Column("paid_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "customer_id", "status"),
)

# Every Stars charge Telegram made (the first payment and each renewal), once: keyed by
# Telegram's charge id. ``id`` is the period's key (one period per charge).
star_payments = Table(
    "star_payments",
    metadata,
    Column("charge_id", String(200), primary_key=True),
    Column("id", String(16), nullable=False, unique=True),
    Column("invoice_id", String(16), ForeignKey("star_invoices.id"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("days", Integer, nullable=False),
    Column("stars", Integer, nullable=False),
    Column("renewal", Boolean, nullable=False),  # a charge after the first of a subscription
    Column("subscription_ends_at", BigInteger, nullable=True),  # Telegram's expiration date
    Column("paid_at", BigInteger, nullable=False),  # Telegram's date of the charge
    Column("recorded_at", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),  # update | ledger
    Column("refunded_at", BigInteger, nullable=True),
    Column("refund_source", String(16), nullable=True),  # admin | telegram
    Index(None, "invoice_id"),
    Index(None, "customer_id", "paid_at"),
    Index(None, "paid_at"),
)

# Test mode (OKX_MODE=simulated): the deposits admins simulated with /simulate_deposit, which
# the simulated exchange reports as its deposit history. A live shop never writes a row here.
simulated_deposits = Table(
    "simulated_deposits",
    metadata,
    Column("dep_id", String(40), primary_key=True),
    Column("currency", String(16), nullable=False),
    Column("chain", String(64), nullable=False),
    Column("amount", Text, nullable=False),  # the Decimal as text
    Column("to_address", Text, nullable=False),
    Column("memo", Text, nullable=True),
    Column("tx_id", String(100), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Index(None, "ts"),
)
