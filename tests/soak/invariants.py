"""What must hold after a soak run, whatever faults and crashes it had ("nothing is lost").

:func:`check` reads the bot's database (SELECTs only) and what the fakes recorded once, into a
:class:`World` of plain rows, then runs every invariant over it. Each invariant is a pure function
(rows in, human-readable violations out, ``[]`` when it holds), so each can be tested alone:

* :func:`settled_invoices_backed`: a paid invoice's counted deposits exist at OKX as recorded and
  their settled amounts reach the invoice's lower bound (marked / frozen ones: existence only);
* :func:`deposits_recorded`: every OKX deposit has a row that was decided and mirrors OKX; no
  row without an OKX deposit (nothing vanished, nothing invented);
* :func:`deposits_attached_once`: no deposit on two invoices (rows, claims, one payment twice);
* :func:`subscriptions_replayed` (``invariants_subs``): every end equals a replay of the paid
  invoices and grants, one period per paid invoice, none for an unpaid one;
* :func:`chat_access` (``invariants_subs``): chat members == entitled customers who could join,
  and the memberships table agrees with the chat;
* :func:`webhooks_delivered`: every merchant event accepted by the receiver, correctly signed;
* :func:`activation_messages`: every reachable customer of a paid invoice got the message;
* :func:`messages_not_repeated`, :func:`order_kept`, :func:`events_reached_every_endpoint`,
  :func:`no_entitled_customer_banned` (``invariants_delivery``): no notification twice unless
  its send was in flight at a pause or kill (or answered late), notifications read in the order
  written, every event at every webhook endpoint, no entitled customer banned from a paid chat;
* :func:`stars_credited_once` (``invariants_stars``): every Telegram Stars charge of the
  shop's orders in Telegram's ledger has one payment row and one period, revoked exactly when
  the ledger shows its refund; no payment row without a ledger charge; each credited charge's
  "Payment received ... Stars" (or "renewed") message read once, never missed;
* :func:`log_problems`, :func:`secrets_in_logs` (``invariants_logs``);
* :func:`answered_in_time` (``invariants_flood``): every honest customer who wrote during a
  customer's flood got an answer within a second of the fake Bot API handing it to the bot.

Violations never contain a secret value (:func:`check_world` redacts them).
"""

from __future__ import annotations

import hmac
import json
import re
import string
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select

from bot.texts import every_form
from fakes.receiver import Received
from payments import states as st
from payments.catalog import load_catalog
from payments.config import PaymentSettings
from payments.delivery.webhooks import signing
from payments.deposits.decide import match_rules
from payments.deposits.matching import MatchRules
from payments.facts import InvoiceFacts
from payments.storage import Database
from payments.storage import schema as tables
from tests.soak.flood import help_answers
from tests.soak.invariants_delivery import (
    events_reached_every_endpoint,
    messages_not_repeated,
    no_entitled_customer_banned,
    order_kept,
)
from tests.soak.invariants_flood import ANSWER_LIMIT_S, answered_in_time
from tests.soak.invariants_logs import log_problems, redact, secrets_in_logs
from tests.soak.invariants_stars import stars_as_invoices, stars_credited_once
from tests.soak.invariants_subs import chat_access, iso, subscriptions_replayed
from tests.soak.record import SoakRecord

Row = Mapping[str, Any]
REGULAR_MEMBER = frozenset({"member", "restricted"})  # not the owner, the bot or an admin


@dataclass(frozen=True)
class Options:
    """How the bot ran, as far as the invariants care (defaults: the bot's defaults)."""

    rules: MatchRules = field(default_factory=lambda: default_rules())
    grace_ms: int = 0  # GRACE_DAYS in ms
    now_ms: int | None = None  # the bot's "now" (default: the wall clock)
    # two credits committing in another order than their credited_at may move an end by the
    # gap between them (milliseconds); a period granted twice or missed moves it by days
    end_slack_ms: int = 60_000
    # an entitlement that ends within this of now may not have been acted on yet
    access_slack_ms: int = 0
    # OKX deposits older than this were outside the bot's reading window (None: all visible)
    visible_since_ms: int | None = None
    expected_log_records: tuple[str, ...] = ()  # regexes: log records that are no violation
    answer_limit_s: float = ANSWER_LIMIT_S  # an honest customer's answer during a flood


def default_rules(plans_file: str | Path | None = None, **settings: Any) -> MatchRules:
    """The tolerance and allowances of a bot run with this plans file and these settings."""
    return match_rules(PaymentSettings(**settings), load_catalog(plans_file))


@dataclass
class World:
    """Everything the invariants read, as plain data."""

    now_ms: int
    invoices: list[dict[str, Any]]
    deposits: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    periods: list[dict[str, Any]]
    memberships: list[dict[str, Any]]
    events: list[dict[str, Any]]
    okx_deposits: list[dict[str, Any]]
    chat_members: dict[int, set[int]]  # chat id -> regular members (fake Telegram)
    bot_texts: dict[int, list[str]]  # user id -> raw text / caption of every bot message
    webhooks: list[Received] | None  # accepted requests; None: no receiver in this run
    logs: dict[str, str]  # log file name -> its text
    secrets: list[str]
    blocked: set[int]
    plan_chats: dict[str, list[int]]
    # honest customers' /help during a flood: (chat id, update id), when the fake handed each
    # to the bot, and when each answer to /help reached the fake (chat id -> times)
    probes: list[tuple[int, int]] = field(default_factory=list)
    handed_out: dict[int, float] = field(default_factory=dict)
    help_answers: dict[int, list[float]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    chat_banned: dict[int, set[int]] = field(default_factory=dict)  # chat id -> banned users
    in_flight: list[tuple[int, str]] = field(default_factory=list)  # see SoakRecord
    webhook_endpoints: list[str] = field(default_factory=list)
    # Telegram Stars: orders and charges (the bot's rows), and Telegram's Star ledger (the fake)
    star_orders: list[dict[str, Any]] = field(default_factory=list)
    star_payments: list[dict[str, Any]] = field(default_factory=list)
    star_ledger: list[dict[str, Any]] = field(default_factory=list)


_TABLES: dict[str, Table] = {
    "invoices": tables.invoices,
    "deposits": tables.deposits,
    "claims": tables.claims,
    "subscriptions": tables.subscriptions,
    "periods": tables.subscription_periods,
    "memberships": tables.memberships,
    "events": tables.merchant_events,
    "outbox": tables.outbox,
    "star_orders": tables.star_invoices,
    "star_payments": tables.star_payments,
}


async def load_world(record: SoakRecord, *, now_ms: int | None = None) -> World:
    """Read the database (read-only) and the fakes once."""
    db = Database.from_url(record.database_url)
    try:
        rows: dict[str, list[dict[str, Any]]] = {}
        async with db.read() as conn:
            for name, table in _TABLES.items():
                result = await conn.execute(select(table).order_by(*table.primary_key.columns))
                rows[name] = [dict(r) for r in result.mappings()]
    finally:
        await db.close()
    people = set(record.customers) | {int(r["customer_id"]) for r in rows["invoices"]}
    bot_texts = {
        user: [m.text or m.caption or "" for m in record.tg.bot_messages(user)] for user in people
    }
    chats = {chat for ids in record.chats.values() for chat in ids}
    members = {
        chat: {
            user
            for user in record.tg.members(chat)
            if record.tg.member_status(chat, user) in REGULAR_MEMBER
        }
        for chat in chats
    }
    logs: dict[str, str] = {}
    for path in record.logs:
        logs[str(path)] = path.read_text(errors="replace") if path.exists() else ""
    return World(
        now_ms=time.time_ns() // 1_000_000 if now_ms is None else now_ms,
        okx_deposits=record.okx.deposit_rows(),
        chat_members=members,
        chat_banned={chat: record.tg.banned(chat) for chat in chats},
        in_flight=list(record.in_flight),
        webhook_endpoints=list(record.webhook_endpoints),
        bot_texts=bot_texts,
        webhooks=None if record.receiver is None else record.receiver.accepted(),
        logs=logs,
        secrets=[s for s in record.secrets if s],
        blocked=set(record.blocked),
        plan_chats={plan: list(ids) for plan, ids in record.chats.items()},
        probes=list(record.probes),
        handed_out={
            u: record.tg.handed_out[u] for _, u in record.probes if u in record.tg.handed_out
        },
        help_answers=help_answers(record.tg, sorted({c for c, _ in record.probes})),
        star_ledger=record.tg.star_transactions(),
        **rows,
    )


async def check(record: SoakRecord, options: Options | None = None) -> list[str]:
    """Every violation of the soak's invariants; [] when all hold."""
    options = options or Options()
    world = await load_world(record, now_ms=options.now_ms)
    missing = [f"log file {path} is missing" for path in record.logs if not path.exists()]
    return missing + check_world(world, options)


def check_world(world: World, options: Options) -> list[str]:
    found = [
        *settled_invoices_backed(world.invoices, world.deposits, world.okx_deposits, options.rules),
        *deposits_recorded(world.deposits, world.okx_deposits, options.visible_since_ms),
        *deposits_attached_once(world.deposits, world.invoices, world.claims),
        *subscriptions_replayed(
            [*world.invoices, *stars_as_invoices(world.star_payments)],
            world.periods,
            world.subscriptions,
            options.end_slack_ms,
        ),
        *chat_access(
            world.plan_chats,
            world.subscriptions,
            world.memberships,
            world.chat_members,
            world.blocked,
            now_ms=world.now_ms,
            grace_ms=options.grace_ms,
            slack_ms=options.access_slack_ms,
        ),
        *webhooks_delivered(world.events, world.webhooks, world.secrets),
        *events_reached_every_endpoint(world.events, world.webhooks, world.webhook_endpoints),
        *no_entitled_customer_banned(
            world.plan_chats,
            world.subscriptions,
            world.chat_banned,
            now_ms=world.now_ms,
            grace_ms=options.grace_ms,
        ),
        *messages_not_repeated(world.bot_texts, world.in_flight),
        *order_kept(world.outbox, world.bot_texts),
        *activation_messages(world.invoices, world.bot_texts, world.blocked),
        *stars_credited_once(
            world.star_ledger,
            world.star_orders,
            world.star_payments,
            world.periods,
            world.bot_texts,
            world.blocked,
            world.in_flight,
        ),
        *log_problems(world.logs, options.expected_log_records),
        *secrets_in_logs(world.logs, world.secrets),
        *answered_in_time(
            world.probes, world.handed_out, world.help_answers, options.answer_limit_s
        ),
    ]
    return [redact(v, world.secrets) for v in found]


# --- money -----------------------------------------------------------------------------------


def _amount(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return None


def _plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _differences(row: Row, okx: Row) -> list[str]:
    """What a deposits row says differently from OKX's record of it."""
    pairs = [("currency", "ccy"), ("chain", "chain"), ("to_address", "to")]
    out = [f"{o} {row[o]!r} vs {okx.get(t)!r}" for o, t in pairs if row[o] != okx.get(t)]
    if _amount(row["amount"]) != _amount(okx.get("amt")):
        out.append(f"amount {row['amount']} vs {okx.get('amt')}")
    return out


def settled_invoices_backed(
    invoices: Sequence[Row], deposits: Sequence[Row], okx: Sequence[Row], rules: MatchRules
) -> list[str]:
    """Every paid invoice's counted deposits exist at OKX with the recorded currency, chain,
    amount and address, and the settled ones (by OKX's state) reach the invoice's lower bound
    (base minus tolerance and allowance). An admin's confirmation (``marked``) needs no
    deposit, and a frozen invoice waits for an admin: for those, only existence is checked."""
    at_okx = {str(r["depId"]): r for r in okx}
    counted: dict[str, list[Row]] = defaultdict(list)
    for dep in deposits:
        if dep["disposition"] == st.DEP_ATTACHED and dep["match_kind"] in st.COUNTED_KINDS:
            counted[str(dep["invoice_id"])].append(dep)
    out: list[str] = []
    for row in invoices:
        if row["status"] != st.PAID:
            continue
        invoice = InvoiceFacts.from_row(row)
        name = f"paid invoice {invoice.id} (customer {invoice.customer_id})"
        settled = Decimal(0)
        for dep in counted[invoice.id]:
            theirs = at_okx.get(str(dep["dep_id"]))
            if theirs is None:
                out.append(f"{name} counts deposit {dep['dep_id']}, which OKX does not have")
                continue
            if diff := _differences(dep, theirs):
                out.append(f"{name}: deposit {dep['dep_id']} differs from OKX: {'; '.join(diff)}")
                continue
            if rules.states.classify(str(theirs["state"])) == "settled":
                settled += _amount(theirs["amt"]) or Decimal(0)
        if st.MARKED in invoice.exceptions or invoice.frozen:
            continue
        lower = rules.lower_bound(invoice)
        if settled < lower:
            out.append(
                f"{name} has {_plain(settled)} {invoice.currency} of settled deposits at OKX, "
                f"less than the {_plain(lower)} it needs (asked {_plain(invoice.amount)})"
            )
    return out


def deposits_recorded(
    deposits: Sequence[Row], okx: Sequence[Row], visible_since_ms: int | None = None
) -> list[str]:
    """Every deposit OKX holds (within the bot's window) has a row that was decided (attached,
    unmatched for an admin, or refunded), mirrors OKX's state and amount; and no row names a
    deposit OKX never had."""
    ours = {str(r["dep_id"]): r for r in deposits}
    theirs = {str(r["depId"]): r for r in okx}
    out: list[str] = []
    for dep_id, record in theirs.items():
        if visible_since_ms is not None and int(record["ts"]) < visible_since_ms:
            continue
        what = f"OKX deposit {dep_id} ({record['amt']} {record['ccy']} to {record['to']!r})"
        row = ours.get(dep_id)
        if row is None:
            out.append(f"{what} vanished: the bot has no row for it")
            continue
        if row["disposition"] == st.DEP_NEW:
            out.append(f"{what} was never decided (disposition new)")
        changes = _differences(row, record)
        if row["state"] != record["state"]:
            changes.append(f"state {row['state']} vs {record['state']}")
        if changes:
            out.append(f"{what} is recorded stale: {'; '.join(changes)}")
    for dep_id in ours.keys() - theirs.keys():
        out.append(f"deposit {dep_id} is recorded but OKX never had it")
    return out


def deposits_attached_once(
    deposits: Sequence[Row], invoices: Sequence[Row], claims: Sequence[Row]
) -> list[str]:
    """No deposit belongs to two invoices: one row per depId, an attached row names one existing
    invoice and an unattached one none, a claim that attached a deposit agrees with its row
    (unless an admin moved or refunded it since), and no on-chain payment (tx, address,
    amount) is counted on two invoices under two depIds."""
    known = {str(r["id"]) for r in invoices}
    out = [
        f"deposit {dep_id} has {n} rows"
        for dep_id, n in Counter(str(r["dep_id"]) for r in deposits).items()
        if n > 1
    ]
    by_id = {str(r["dep_id"]): r for r in deposits}

    def moved(dep: Row) -> bool:  # by an admin since the claim: reassigned or refunded
        return bool(dep["match_kind"] == st.KIND_ADMIN or dep["disposition"] == st.DEP_REFUNDED)

    payments: dict[tuple[str, str, Decimal | None], set[str]] = defaultdict(set)
    for dep in deposits:
        dep_id, invoice_id = dep["dep_id"], dep["invoice_id"]
        if dep["disposition"] == st.DEP_ATTACHED:
            if invoice_id is None or str(invoice_id) not in known:
                out.append(f"deposit {dep_id} is attached to a missing invoice {invoice_id!r}")
            if dep["tx_id"] and dep["match_kind"] in st.COUNTED_KINDS:
                payments[(dep["tx_id"], dep["to_address"], _amount(dep["amount"]))].add(
                    str(invoice_id)
                )
        elif invoice_id is not None:
            out.append(f"deposit {dep_id} is {dep['disposition']} yet names invoice {invoice_id}")
    for (tx_id, _, amount), on in payments.items():
        if len(on) > 1:
            out.append(f"payment {tx_id} ({amount}) is counted on invoices {sorted(on)}")
    for claim in claims:
        if claim["outcome"] != "attached" or claim["dep_id"] is None:
            continue
        claimed = by_id.get(str(claim["dep_id"]))
        if claimed is None:
            out.append(f"claim {claim['id']} attached deposit {claim['dep_id']}, which has no row")
        elif claimed["invoice_id"] != claim["invoice_id"] and not moved(claimed):
            out.append(
                f"claim {claim['id']} attached deposit {claim['dep_id']} to invoice "
                f"{claim['invoice_id']}, but the deposit is on {claimed['invoice_id']!r}"
            )
    return out


# --- what was told ---------------------------------------------------------------------------


def webhooks_delivered(
    events: Sequence[Row], accepted: Sequence[Received] | None, secrets: Sequence[str]
) -> list[str]:
    """Every ``merchant_events`` row reached the receiver at least once with a 2xx answer, as its
    type and data, signed with one of the run's secrets (the merchant secret); and the receiver
    accepted nothing that is not an event. ``accepted`` None: the run had no receiver."""
    if accepted is None:
        return []
    bodies: dict[str, list[tuple[Received, Any]]] = defaultdict(list)
    out: list[str] = []
    for request in accepted:
        try:
            body = json.loads(request.body)
            bodies[str(body["id"])].append((request, body))
        except (ValueError, KeyError, TypeError):
            out.append(f"the receiver accepted a request that is no event: {request.body[:80]!r}")
    wanted = {str(e["public_id"]): e for e in events}
    for public_id, event in wanted.items():
        what = f"merchant event {event['id']} {public_id} ({event['type']})"
        got = bodies.get(public_id, [])
        if not got:
            out.append(f"{what} was never accepted by the receiver")
            continue
        data = json.loads(event["payload"])
        if not any(b.get("type") == event["type"] and b.get("data") == data for _, b in got):
            out.append(f"{what} was delivered with another type or data")
        if not any(_signed(r, secrets) for r, _ in got):
            out.append(f"{what} was never delivered with a valid signature")
    for public_id in bodies.keys() - wanted.keys():
        out.append(f"the receiver accepted {public_id}, which is no merchant event")
    return out


def _signed(request: Received, secrets: Sequence[str]) -> bool:
    header = (request.header(signing.SIGNATURE_HEADER) or "").strip()
    return any(hmac.compare_digest(signing.sign(s, request.body), header) for s in secrets)


_ACTIVATION_KEYS = ("invoice_paid", "invoice_paid_no_end")


def activation_pattern(invoice_id: str) -> re.Pattern[str]:
    """The activation message of ``invoice_id`` as the bot renders it, in any language (each
    template's other fields match anything)."""
    templates = {form for key in _ACTIVATION_KEYS for form in every_form(key)}
    alternatives = []
    for template in sorted(templates):
        parts = []
        for literal, name, _, _ in string.Formatter().parse(template):
            parts.append(re.escape(literal))
            if name == "invoice":
                parts.append(re.escape(invoice_id))
            elif name is not None:
                parts.append(".*?")
        alternatives.append("".join(parts))
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def activation_messages(
    invoices: Sequence[Row], bot_texts: Mapping[int, Iterable[str]], blocked: set[int]
) -> list[str]:
    """Every customer of a paid invoice who did not block the bot got its activation message."""
    out: list[str] = []
    for row in invoices:
        customer = int(row["customer_id"])
        if row["status"] != st.PAID or customer in blocked:
            continue
        pattern = activation_pattern(str(row["id"]))
        if not any(pattern.fullmatch(text) for text in bot_texts.get(customer, [])):
            paid = iso(row["paid_at"])
            out.append(
                f"customer {customer} never got the activation message of invoice {row['id']} "
                f"(paid {paid})"
            )
    return out
