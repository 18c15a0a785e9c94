"""The soak's invariant about Telegram Stars: never twice, never missed (a pure function; see
:mod:`tests.soak.invariants`).

:func:`stars_credited_once` compares Telegram's Star ledger (the fake's
``star_transactions()``: every charge and refund Telegram made) with the bot's ``star_invoices``
(orders), ``star_payments`` (one row per charge) and ``subscription_periods`` rows and with what
each customer read:

* every incoming payment naming an order of the shop has exactly one ``star_payments`` row with
  its charge id, and that row exactly one period; the row is refunded and its period revoked
  exactly when the ledger shows the charge's refund;
* no ``star_payments`` row names a charge the ledger lacks (nothing invented);
* every customer who did not block the bot read a "Payment received ... Stars" message for each
  first charge and a "renewed" message for each renewal that was not refunded, and no such
  message twice, but for one copy more per send of it in flight at a kill or pause, or answered
  too late for the bot to hear (as :func:`tests.soak.invariants_delivery.messages_not_repeated`).

:func:`stars_as_invoices` gives each Stars payment the shape of a paid (or, once refunded,
revoked) invoice, so that :func:`tests.soak.invariants_subs.subscriptions_replayed` replays
Stars periods with the crypto ones.
"""

from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Any

from bot.texts import every_form
from payments import states as st
from payments.stars import order_id_of

Row = Mapping[str, Any]

PAID_KEYS = ("stars_paid", "stars_paid_subscription")  # a first charge (or a one-off payment)
RENEWED_KEYS = ("stars_renewed",)  # each renewal of a Telegram subscription
REVOKED = "revoked"  # the status a refunded Stars payment has as an invoice


@cache
def stars_pattern(renewal: bool) -> re.Pattern[str]:
    """The customer's message of a credited charge in any language (fields match anything)."""
    keys = RENEWED_KEYS if renewal else PAID_KEYS
    templates = {form for key in keys for form in every_form(key)}
    alternatives = []
    for template in sorted(templates):
        parts = []
        for literal, name, _, _ in string.Formatter().parse(template):
            parts.append(re.escape(literal))
            if name is not None:
                parts.append(".*?")
        alternatives.append("".join(parts))
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def stars_credited_once(
    ledger: Sequence[Row],
    orders: Sequence[Row],
    payments: Sequence[Row],
    periods: Sequence[Row],
    bot_texts: Mapping[int, Sequence[str]],
    blocked: Collection[int],
    in_flight: Collection[tuple[int, str]] = (),
) -> list[str]:
    """Every violation of "each Stars charge credited once, never missed" (see the module)."""
    shop = {str(o["id"]) for o in orders}
    incoming: dict[str, Row] = {}
    refunded: set[str] = set()
    for tx in ledger:
        if "source" in tx:
            incoming[str(tx["id"])] = tx
        elif "receiver" in tx:
            refunded.add(str(tx["id"]))
    rows: dict[str, list[Row]] = defaultdict(list)
    for row in payments:
        rows[str(row["charge_id"])].append(row)
    credited: dict[str, list[Row]] = defaultdict(list)
    for period in periods:
        if period["invoice_id"] is not None:
            credited[str(period["invoice_id"])].append(period)
    out: list[str] = []
    for charge_id, tx in incoming.items():
        payload = str(tx["source"].get("invoice_payload") or "")
        order = order_id_of(payload)
        if order is None or order not in shop:
            continue  # not an order of this shop: told to the admins, never credited
        user = tx["source"].get("user", {}).get("id")
        what = f"Stars charge {charge_id[:16]}… of customer {user} ({tx['amount']} Stars)"
        found = rows.get(charge_id, [])
        if len(found) != 1:
            out.append(f"{what} has {len(found)} star_payments rows, not 1")
            continue
        row = found[0]
        mine = credited.get(str(row["id"]), [])
        if len(mine) != 1:
            out.append(f"{what} (payment {row['id']}) has {len(mine)} periods, not 1")
        is_refunded = charge_id in refunded
        if is_refunded != (row["refunded_at"] is not None):
            state = "refunded" if is_refunded else "not refunded"
            out.append(f"{what} is {state} in the ledger, but payment {row['id']} says otherwise")
        for period in mine:
            if is_refunded != (period["revoked_at"] is not None):
                state = "revoked" if period["revoked_at"] is not None else "not revoked"
                ledger_says = "refunded" if is_refunded else "not refunded"
                out.append(
                    f"{what}: period {period['id']} is {state}, the ledger says {ledger_says}"
                )
    for charge_id, found in rows.items():
        if charge_id not in incoming:
            ids = ", ".join(str(r["id"]) for r in found)
            out.append(f"star_payments {ids} names charge {charge_id[:16]}…, not in the ledger")
    out += _messages(payments, bot_texts, blocked, in_flight)
    return out


def _messages(
    payments: Sequence[Row],
    bot_texts: Mapping[int, Sequence[str]],
    blocked: Collection[int],
    in_flight: Collection[tuple[int, str]],
) -> list[str]:
    """Per customer and kind (first charge, renewal): a message for each unrefunded charge at
    least, one per charge at most, and no text twice beyond the in-flight excuse."""
    charges: dict[tuple[int, bool], list[Row]] = defaultdict(list)
    for row in payments:
        charges[(int(row["customer_id"]), bool(row["renewal"]))].append(row)
    excused = Counter(in_flight)
    out: list[str] = []
    for (customer, renewal), found in sorted(charges.items()):
        kind = "renewal" if renewal else "payment"
        pattern = stars_pattern(renewal)
        copies = Counter(t for t in bot_texts.get(customer, []) if pattern.fullmatch(t))
        open_charges = [r for r in found if r["refunded_at"] is None]
        if len(copies) < len(open_charges) and customer not in blocked:
            ids = ", ".join(str(r["id"]) for r in open_charges)
            out.append(
                f"customer {customer} read {len(copies)} Stars {kind} message(s) for "
                f"{len(open_charges)} credited charge(s) ({ids})"
            )
        if len(copies) > len(found):
            out.append(
                f"customer {customer} read {len(copies)} different Stars {kind} messages for "
                f"{len(found)} charge(s)"
            )
        for text, n in copies.items():
            extra = n - 1 - excused[(customer, text)]
            if extra > 0:
                out.append(
                    f"customer {customer} read this Stars {kind} message {n} times "
                    f"({excused[(customer, text)]} send(s) of it in flight): {text[:120]!r}"
                )
    return out


def stars_as_invoices(payments: Sequence[Row]) -> list[dict[str, Any]]:
    """Each Stars payment as an invoice row for the replay of subscription ends: paid unless
    refunded, credited when the bot recorded it or at Telegram's date of the charge if that is
    earlier (payments/stars/rail.py credits a period from the charge, never later than now)."""
    return [
        {
            "id": row["id"],
            "customer_id": row["customer_id"],
            "plan_id": row["plan_id"],
            "days": row["days"],
            "status": st.PAID if row["refunded_at"] is None else REVOKED,
            "paid_at": min(int(row["recorded_at"]), int(row["paid_at"])),
        }
        for row in payments
    ]
