"""The soak's invariants about time: subscription ends replayed from what was paid, and chat
access matching the subscriptions (pure functions; see :mod:`tests.soak.invariants`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from payments import states as st
from payments.access import HELD, LEFT, MEMBER
from payments.clock import DAY_MS

Row = Mapping[str, Any]
Credit = tuple[int, int, str]  # (credited at, days, what it was: "invoice X" / "grant 7")


def iso(ms: Any) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def replay(credits: Sequence[Credit]) -> list[tuple[int, int]]:
    """(start, end) of each credit in credited order: each starts when the one before ends, or
    when it was credited if the subscription had lapsed by then."""
    out: list[tuple[int, int]] = []
    end: int | None = None
    for at, days, _ in sorted(credits):
        start = at if end is None else max(end, at)
        end = start + days * DAY_MS
        out.append((start, end))
    return out


def subscriptions_replayed(
    invoices: Sequence[Row],
    periods: Sequence[Row],
    subscriptions: Sequence[Row],
    slack_ms: int = 60_000,
) -> list[str]:
    """Each paid invoice has one period (its customer, plan and days, credited when paid), no
    period credits an unpaid invoice, and every subscription ends where a replay of its paid
    invoices and unrevoked grants ends (within ``slack_ms``; one period too many or too few is
    a day or more): nothing granted twice, nothing missed, lapses and renewals included."""
    out: list[str] = []
    invoice_of = {str(r["id"]): r for r in invoices}
    credited: dict[str, list[Row]] = defaultdict(list)
    for period in periods:
        if period["invoice_id"] is not None:
            credited[str(period["invoice_id"])].append(period)
        elif period["source"] != "grant":
            out.append(f"period {period['id']} ({period['source']}) names no invoice")
    for invoice_id, found in credited.items():
        if len(found) > 1:
            out.append(f"invoice {invoice_id} was credited {len(found)} times")
        out += [_period_problem(p, invoice_of.get(invoice_id)) for p in found]
    paid = [r for r in invoices if r["status"] == st.PAID]
    for row in paid:
        if not credited.get(str(row["id"])):
            out.append(
                f"paid invoice {row['id']} (customer {row['customer_id']}) has no period: "
                f"its {row['days']} days of {row['plan_id']} were never credited"
            )
    credits: dict[tuple[int, str], list[Credit]] = defaultdict(list)
    for row in paid:
        key = (int(row["customer_id"]), str(row["plan_id"]))
        credits[key].append((int(row["paid_at"] or 0), int(row["days"]), f"invoice {row['id']}"))
    for period in periods:
        if period["invoice_id"] is None and period["revoked_at"] is None:
            key = (int(period["customer_id"]), str(period["plan_id"]))
            grant = f"grant {period['id']}"
            credits[key].append((int(period["credited_at"]), int(period["days"]), grant))
    by_sub: dict[int, list[Row]] = defaultdict(list)
    for period in periods:
        by_sub[int(period["subscription_id"])].append(period)
    subs = {(int(s["customer_id"]), str(s["plan_id"])): s for s in subscriptions}
    for key in sorted(credits.keys() | subs.keys()):
        sub = subs.get(key)
        if sub is None:
            out.append(f"customer {key[0]} was credited {key[1]} but has no subscription")
            continue
        out += _end_problems(sub, credits.get(key, []), by_sub.get(int(sub["id"]), []), slack_ms)
    return [problem for problem in out if problem]


def _period_problem(period: Row, invoice: Row | None) -> str:
    name = f"period {period['id']} of invoice {period['invoice_id']}"
    if invoice is None:
        return f"{name}: the invoice does not exist"
    revoked = period["revoked_at"] is not None
    if not revoked and invoice["status"] != st.PAID:
        return f"{name} gives time although the invoice is {invoice['status']}"
    if revoked and invoice["status"] == st.PAID:
        return f"{name} was revoked although the invoice is still paid"
    mine = (int(period["customer_id"]), str(period["plan_id"]), int(period["days"]))
    asked = (int(invoice["customer_id"]), str(invoice["plan_id"]), int(invoice["days"]))
    if mine != asked:
        return f"{name} credits (customer, plan, days) {mine}, the invoice is for {asked}"
    if not revoked and period["credited_at"] != invoice["paid_at"]:
        return (
            f"{name} was credited at {iso(period['credited_at'])}, paid {iso(invoice['paid_at'])}"
        )
    return ""


def _end_problems(sub: Row, credits: list[Credit], periods: list[Row], slack_ms: int) -> list[str]:
    who = f"customer {sub['customer_id']}, plan {sub['plan_id']}"
    out: list[str] = []
    for period in periods:
        if (period["customer_id"], period["plan_id"]) != (sub["customer_id"], sub["plan_id"]):
            out.append(f"{who}: period {period['id']} belongs to another customer or plan")
    if not periods:
        return [*out, f"{who}: subscription {sub['id']} has no period at all"]
    ends = int(sub["ends_at"])
    if not credits:  # everything revoked: it ends no later than the last revocation
        last = max(int(p["revoked_at"] or 0) for p in periods)
        if ends > last + slack_ms:
            out.append(f"{who}: ends {iso(ends)} though every period was revoked by {iso(last)}")
        return out
    expected = replay(credits)[-1][1]
    if abs(ends - expected) > slack_ms:
        names = ", ".join(what for _, _, what in sorted(credits))
        days = (ends - expected) / DAY_MS
        out.append(
            f"{who}: the subscription ends {iso(ends)}, but a replay of {names} ends "
            f"{iso(expected)} ({days:+.2f} days)"
        )
    live = sorted(
        (p for p in periods if p["revoked_at"] is None),
        key=lambda p: (int(p["credited_at"]), int(p["id"])),
    )
    schedule = replay([(int(p["credited_at"]), int(p["days"]), "") for p in live])
    for period, (start, end) in zip(live, schedule, strict=True):
        if max(abs(int(period["starts_at"]) - start), abs(int(period["ends_at"]) - end)) > slack_ms:
            out.append(
                f"{who}: period {period['id']} runs {iso(period['starts_at'])} to "
                f"{iso(period['ends_at'])}, a replay says {iso(start)} to {iso(end)}"
            )
    return out


def chat_access(
    plan_chats: Mapping[str, Sequence[int]],
    subscriptions: Sequence[Row],
    memberships: Sequence[Row],
    chat_members: Mapping[int, set[int]],
    blocked: set[int],
    *,
    now_ms: int,
    grace_ms: int = 0,
    slack_ms: int = 0,
) -> list[str]:
    """In each paid chat: every regular member runs a subscription to a plan granting it (its end
    after now minus the grace), and every such customer who could join (did not block the bot,
    did not leave on their own) is in it; the memberships table agrees (member exactly when in
    the chat, an access state exactly when entitled). Ends within ``slack_ms`` of the cut-off
    are not judged (the bot may not have acted on them yet)."""
    out: list[str] = []
    cutoff = now_ms - grace_ms
    for chat in sorted({c for ids in plan_chats.values() for c in ids}):
        plans = {plan for plan, ids in plan_chats.items() if chat in ids}
        ends: dict[int, int] = {}
        for sub in subscriptions:
            if sub["plan_id"] in plans:
                customer = int(sub["customer_id"])
                ends[customer] = max(ends.get(customer, 0), int(sub["ends_at"]))
        rows = {int(m["customer_id"]): m for m in memberships if int(m["chat_id"]) == chat}
        inside = chat_members.get(chat, set())
        for customer in sorted(ends.keys() | rows.keys() | inside):
            end = ends.get(customer)
            if end is not None and slack_ms and abs(end - cutoff) <= slack_ms:
                continue
            entitled = end is not None and end > cutoff
            state = rows[customer]["state"] if customer in rows else None
            who = f"customer {customer} (chat {chat}, access until {iso(end)}, membership {state})"
            if customer in inside and not entitled:
                out.append(f"{who} is in the chat without a running subscription")
            if customer in inside and state != MEMBER:
                out.append(f"{who} is in the chat, but the memberships row does not say member")
            if customer not in inside and state == MEMBER:
                out.append(f"{who}: the memberships row says member, but they are not in the chat")
            if entitled and state not in HELD:
                out.append(f"{who} is entitled but holds no access")
            elif entitled and customer not in inside and customer not in blocked and state != LEFT:
                out.append(f"{who} is entitled and could join, but is not in the chat")
            if not entitled and state in HELD:
                out.append(f"{who} still holds access after the subscription ended")
    return out
