"""Each soak invariant holds on a real run and reports the one thing broken in a copy of it.

The run (once per module, tests/soak/invariants_run.py): the real bot with a paid chat, a webhook
receiver, a customer who pays and joins, one who blocks the bot, one who abandons, an unrelated
deposit. Every test but the first breaks one thing in a copy of what that run left.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.logs import RedactSecrets
from bot.texts import CATALOGUE, DEFAULT_LANGUAGE
from fakes.receiver import Received
from payments import states as st
from payments.clock import DAY_MS
from payments.delivery.webhooks import signing
from tests.soak.hoard import held_within_cap
from tests.soak.invariants import (
    World,
    activation_messages,
    check_world,
    deposits_attached_once,
    deposits_recorded,
    settled_invoices_backed,
    webhooks_delivered,
)
from tests.soak.invariants_delivery import (
    events_reached_every_endpoint,
    messages_not_repeated,
    no_entitled_customer_banned,
    order_kept,
)
from tests.soak.invariants_flood import answered_in_time
from tests.soak.invariants_logs import log_problems, secrets_in_logs
from tests.soak.invariants_run import ALICE, BOB, CAROL, CLUB, LOG_FORMAT, Run, the_run
from tests.soak.invariants_subs import chat_access, subscriptions_replayed

MESSAGES = CATALOGUE[DEFAULT_LANGUAGE]

STRANGER = 3999


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return asyncio.run(the_run(tmp_path_factory.mktemp("soak_invariants")))


@pytest.fixture
def w(run: Run) -> World:
    """A copy of what the run left, to break."""
    return copy.deepcopy(run.world)


def only(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    [row] = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return row


def paid_invoice(w: World, customer: int) -> dict[str, Any]:
    return only(w.invoices, customer_id=customer, status=st.PAID)


def attached(w: World, customer: int) -> dict[str, Any]:
    return only(w.deposits, invoice_id=paid_invoice(w, customer)["id"])


def okx_row(w: World, dep_id: str) -> dict[str, Any]:
    return only(w.okx_deposits, depId=dep_id)


def one(violations: list[str], *words: str) -> str:
    """The single violation, which names every one of ``words``."""
    assert len(violations) == 1, violations
    assert all(word in violations[0] for word in words), violations
    return violations[0]


# --- the run itself --------------------------------------------------------------------------


def test_the_run_has_every_kind_of_row_and_breaks_no_invariant(run: Run) -> None:
    w = run.world
    assert run.violations == []
    assert check_world(w, run.options) == []
    assert sorted(r["status"] for r in w.invoices) == ["paid", "paid", "pending"]
    assert sorted(r["disposition"] for r in w.deposits) == ["attached", "attached", "unmatched"]
    assert {r["customer_id"] for r in w.subscriptions} == {ALICE, BOB}
    assert w.chat_members == {CLUB: {ALICE}}
    assert {(r["customer_id"], r["state"]) for r in w.memberships} == {
        (ALICE, "member"),
        (BOB, "invited"),
    }
    assert sorted(e["type"] for e in w.events) == sorted(
        ["invoice.paid"] * 2 + ["subscription.activated"] * 2 + ["deposit.unmatched"]
    )
    assert w.bot_texts[BOB] == [m for m in w.bot_texts[BOB] if "Payment received" not in m]
    log = w.logs[str(run.log)]
    assert " INFO " in log  # the bot logged


# --- money -----------------------------------------------------------------------------------


def test_a_paid_invoice_whose_deposit_differs_at_okx_is_reported(w: World, run: Run) -> None:
    dep = attached(w, ALICE)
    okx_row(w, dep["dep_id"])["amt"] = "1.5"
    found = settled_invoices_backed(w.invoices, w.deposits, w.okx_deposits, run.options.rules)
    name = f"paid invoice {paid_invoice(w, ALICE)['id']}"
    assert found == [
        f"{name} (customer {ALICE}): deposit {dep['dep_id']} differs from OKX: amount "
        f"{dep['amount']} vs 1.5",
        f"{name} (customer {ALICE}) has 0 USDT of settled deposits at OKX, less than the 27.42 "
        "it needs (asked 29.0001)",  # a deposit that differs counts for nothing
    ]


def test_a_paid_invoice_whose_deposit_okx_does_not_have_is_reported(w: World, run: Run) -> None:
    dep = attached(w, BOB)
    w.okx_deposits.remove(okx_row(w, dep["dep_id"]))
    found = settled_invoices_backed(w.invoices, w.deposits, w.okx_deposits, run.options.rules)
    assert len(found) == 2 and "less than" in found[1], found
    assert (
        f"{paid_invoice(w, BOB)['id']} (customer {BOB}) counts deposit {dep['dep_id']}, "
        in found[0]
    )
    assert "which OKX does not have" in found[0]


def test_a_paid_invoice_short_of_settled_money_is_reported(w: World, run: Run) -> None:
    rules = run.options.rules
    okx_row(w, attached(w, ALICE)["dep_id"])["state"] = "1"  # credited, not yet successful
    one(settled_invoices_backed(w.invoices, w.deposits, w.okx_deposits, rules), "less than")
    okx_row(w, attached(w, ALICE)["dep_id"])["state"] = "2"
    dep = attached(w, BOB)  # short: 29 asked, 27 paid (the tolerance is 2 %)
    dep["amount"] = okx_row(w, dep["dep_id"])["amt"] = "27"
    found = settled_invoices_backed(w.invoices, w.deposits, w.okx_deposits, rules)
    one(found, paid_invoice(w, BOB)["id"], "27 USDT", "less than")
    paid_invoice(w, BOB)["exceptions"] = st.MARKED  # an admin confirmed it by hand
    assert settled_invoices_backed(w.invoices, w.deposits, w.okx_deposits, rules) == []


def test_an_okx_deposit_without_a_decided_row_vanished(w: World) -> None:
    lost = only(w.deposits, disposition=st.DEP_UNMATCHED)
    w.deposits.remove(lost)
    one(deposits_recorded(w.deposits, w.okx_deposits), lost["dep_id"], "vanished")
    lost["disposition"] = st.DEP_NEW
    w.deposits.append(lost)
    one(deposits_recorded(w.deposits, w.okx_deposits), lost["dep_id"], "never decided")
    lost["disposition"] = st.DEP_UNMATCHED
    okx_row(w, lost["dep_id"])["state"] = "12"
    one(deposits_recorded(w.deposits, w.okx_deposits), lost["dep_id"], "stale", "state 2 vs 12")
    old = int(okx_row(w, lost["dep_id"])["ts"]) + 1  # before the bot's window: not judged
    assert deposits_recorded(w.deposits, w.okx_deposits, visible_since_ms=old) == []


def test_a_row_for_a_deposit_okx_never_had_is_reported(w: World) -> None:
    w.deposits.append(dict(attached(w, ALICE), dep_id="999"))
    one(deposits_recorded(w.deposits, w.okx_deposits), "deposit 999", "OKX never had it")


def test_a_deposit_on_two_invoices_is_reported(w: World) -> None:
    assert deposits_attached_once(w.deposits, w.invoices, w.claims) == []
    dep = attached(w, ALICE)
    w.deposits.append(dict(dep, invoice_id=paid_invoice(w, BOB)["id"]))
    found = deposits_attached_once(w.deposits, w.invoices, w.claims)
    assert any(f"deposit {dep['dep_id']} has 2 rows" in v for v in found), found
    assert any("counted on invoices" in v for v in found), found


def test_one_payment_counted_under_two_dep_ids_is_reported(w: World) -> None:
    alice, bob = attached(w, ALICE), attached(w, BOB)
    bob.update(tx_id=alice["tx_id"], to_address=alice["to_address"], amount=alice["amount"])
    one(deposits_attached_once(w.deposits, w.invoices, w.claims), alice["tx_id"], "counted on")


def test_an_unattached_deposit_naming_an_invoice_or_a_stray_claim_is_reported(w: World) -> None:
    lost = only(w.deposits, disposition=st.DEP_UNMATCHED)
    lost["invoice_id"] = paid_invoice(w, ALICE)["id"]
    one(deposits_attached_once(w.deposits, w.invoices, w.claims), "unmatched yet names invoice")
    lost["invoice_id"] = None
    claim = {"id": 1, "outcome": "attached", "dep_id": attached(w, ALICE)["dep_id"]}
    w.claims.append(claim | {"invoice_id": paid_invoice(w, BOB)["id"]})
    one(
        deposits_attached_once(w.deposits, w.invoices, w.claims), "claim 1", "but the deposit is on"
    )


# --- subscriptions ---------------------------------------------------------------------------


def test_an_end_off_by_a_period_or_a_period_granted_twice_is_reported(w: World) -> None:
    assert subscriptions_replayed(w.invoices, w.periods, w.subscriptions) == []
    sub = only(w.subscriptions, customer_id=ALICE)
    sub["ends_at"] += DAY_MS
    one(subscriptions_replayed(w.invoices, w.periods, w.subscriptions), str(ALICE), "+1.00 days")
    sub["ends_at"] += 29 * DAY_MS
    period = only(w.periods, customer_id=ALICE)
    w.periods.append(dict(period, id=99))  # the same invoice credited again
    found = subscriptions_replayed(w.invoices, w.periods, w.subscriptions)
    assert any(f"invoice {period['invoice_id']} was credited 2 times" in v for v in found), found


def test_a_paid_invoice_never_credited_is_reported(w: World) -> None:
    invoice = paid_invoice(w, BOB)
    w.periods.remove(only(w.periods, customer_id=BOB))
    found = subscriptions_replayed(w.invoices, w.periods, w.subscriptions)
    assert any(f"paid invoice {invoice['id']}" in v and "never credited" in v for v in found)
    assert any("has no period at all" in v for v in found), found


def test_time_for_an_unpaid_invoice_is_reported(w: World) -> None:
    period = only(w.periods, customer_id=ALICE)
    period["invoice_id"] = only(w.invoices, customer_id=CAROL)["id"]  # pending
    found = subscriptions_replayed(w.invoices, w.periods, w.subscriptions)
    assert any("gives time although the invoice is pending" in v for v in found), found


def _paid(invoice_id: str, at: int, status: str = st.PAID) -> dict[str, Any]:
    row = {"id": invoice_id, "customer_id": 1, "plan_id": "pro", "days": 30, "status": status}
    return row | {"paid_at": at}


def test_lapses_renewals_grants_and_revocations_replay() -> None:
    t0, d = 1_800_000_000_000, DAY_MS
    rows = [_paid("A", t0), _paid("B", t0 + 10 * d), _paid("C", t0 + 100 * d)]  # C: a lapse
    rows.append(_paid("D", t0 + 101 * d, st.INVALID))  # its period was revoked
    base = {"subscription_id": 1, "customer_id": 1, "plan_id": "pro", "days": 30}
    periods = [
        base | {"id": 1, "invoice_id": "A", "source": "payment", "credited_at": t0},
        base | {"id": 2, "invoice_id": "B", "source": "payment", "credited_at": t0 + 10 * d},
        base | {"id": 3, "invoice_id": "C", "source": "payment", "credited_at": t0 + 100 * d},
        base | {"id": 4, "invoice_id": "D", "source": "payment", "credited_at": t0 + 101 * d},
        base | {"id": 5, "invoice_id": None, "source": "grant", "credited_at": t0 + 102 * d},
    ]
    starts = [t0, t0 + 30 * d, t0 + 100 * d, t0 + 130 * d]  # A, B renew; C after the lapse
    for p, start in zip([periods[i] for i in (0, 1, 2, 4)], starts, strict=True):
        p.update(starts_at=start, ends_at=start + 30 * d, revoked_at=None)
    periods[3].update(starts_at=0, ends_at=0, revoked_at=t0 + 102 * d)
    sub = {"id": 1, "customer_id": 1, "plan_id": "pro", "ends_at": t0 + 160 * d}
    assert subscriptions_replayed(rows, periods, [sub]) == []
    sub["ends_at"] = t0 + 190 * d  # as if the revoked period still counted
    one(subscriptions_replayed(rows, periods, [sub]), "+30.00 days")


# --- chats -----------------------------------------------------------------------------------


def access(w: World, **options: Any) -> list[str]:
    args = (w.plan_chats, w.subscriptions, w.memberships, w.chat_members, w.blocked)
    return chat_access(*args, now_ms=w.now_ms, **options)


def test_a_stranger_or_a_lapsed_customer_in_the_chat_is_reported(w: World) -> None:
    w.chat_members[CLUB].add(STRANGER)
    found = access(w)
    assert len(found) == 2 and all(str(STRANGER) in v for v in found), found
    assert "without a running subscription" in found[0]
    w.chat_members[CLUB].discard(STRANGER)
    only(w.subscriptions, customer_id=ALICE)["ends_at"] = w.now_ms - DAY_MS
    found = access(w)
    assert any(f"customer {ALICE}" in v and "without a running" in v for v in found), found
    assert access(w, grace_ms=2 * DAY_MS) == []  # still inside the grace days
    assert access(w, slack_ms=2 * DAY_MS) == []  # too close to the end to judge


def test_an_entitled_customer_missing_from_the_chat_is_reported(w: World) -> None:
    w.chat_members[CLUB].discard(ALICE)
    found = access(w)
    assert any("row says member, but they are not in the chat" in v for v in found), found
    assert any("entitled and could join" in v for v in found), found
    w.blocked = set()  # Bob, invited but unreachable, would have joined if he could
    assert any(f"customer {BOB}" in v and "could join" in v for v in access(w))
    only(w.memberships, customer_id=BOB)["state"] = "removed"
    assert any(f"customer {BOB}" in v and "holds no access" in v for v in access(w))


# --- what was told ---------------------------------------------------------------------------


def test_an_event_never_accepted_or_badly_signed_is_reported(w: World) -> None:
    assert w.webhooks is not None
    assert webhooks_delivered(w.events, w.webhooks, w.secrets) == []
    assert webhooks_delivered(w.events, None, w.secrets) == []  # a run without a receiver
    first = w.webhooks[0]
    event_id = first.json()["id"]
    rest = [r for r in w.webhooks if r.json()["id"] != event_id]
    one(webhooks_delivered(w.events, rest, w.secrets), event_id, "never accepted")
    forged = {**first.headers, signing.SIGNATURE_HEADER: signing.sign("wrong", first.body)}
    bad = [replace(first, headers=forged), *rest]
    one(webhooks_delivered(w.events, bad, w.secrets), event_id, "valid signature")
    changed = first.body.replace(b'"data":{', b'"data":{"extra":1,')
    tampered = Received(first.path, first.query, first.headers, changed, first.status)
    found = webhooks_delivered(w.events, [tampered, *rest], w.secrets)
    assert any("another type or data" in v for v in found), found
    assert any("valid signature" in v for v in found), found  # the body no longer matches


def test_a_paid_customer_without_the_activation_message_is_reported(w: World) -> None:
    assert activation_messages(w.invoices, w.bot_texts, w.blocked) == []
    invoice = paid_invoice(w, ALICE)["id"]
    texts = w.bot_texts[ALICE]
    [activation] = [t for t in texts if "Payment received" in t]
    w.bot_texts[ALICE] = [t for t in texts if t != activation]
    one(activation_messages(w.invoices, w.bot_texts, w.blocked), str(ALICE), invoice)
    w.bot_texts[ALICE].append(activation.replace(invoice, "OTHER123"))  # another invoice's
    one(activation_messages(w.invoices, w.bot_texts, w.blocked), str(ALICE), invoice)
    w.bot_texts[ALICE].append(activation)
    found = activation_messages(w.invoices, w.bot_texts, set())  # as if Bob had not blocked it
    one(found, str(BOB), paid_invoice(w, BOB)["id"])


def test_a_notification_sent_twice_is_reported_unless_its_send_was_in_flight(w: World) -> None:
    assert messages_not_repeated(w.bot_texts, w.in_flight) == []
    [activation] = [t for t in w.bot_texts[ALICE] if "Payment received" in t]
    w.bot_texts[ALICE].append(activation)
    one(messages_not_repeated(w.bot_texts, []), f"customer {ALICE}", "2 times", "Payment received")
    # the first send was in flight when its process was paused: the bot could not know
    assert messages_not_repeated(w.bot_texts, [(ALICE, activation)]) == []
    assert messages_not_repeated(w.bot_texts, [(CAROL, activation)]) != []  # someone else's
    w.bot_texts[ALICE].append(activation)  # a third copy: one in flight excuses one
    one(messages_not_repeated(w.bot_texts, [(ALICE, activation)]), "3 times")
    w.bot_texts[ALICE] = w.bot_texts[ALICE][:-2]
    w.bot_texts[ALICE] += w.bot_texts[ALICE][:1] * 2  # answers to commands may repeat
    assert messages_not_repeated(w.bot_texts, []) == []


def test_notifications_read_out_of_the_written_order_are_reported(w: World) -> None:
    assert order_kept(w.outbox, w.bot_texts) == []
    mine = [r for r in w.outbox if r["customer_id"] == ALICE and r["audience"] == "customer"]
    mine.sort(key=lambda r: r["id"])
    assert [r["kind"] for r in mine][-2:] == ["invoice.paid", "access.invite"], mine
    texts = w.bot_texts[ALICE]
    [paid] = [i for i, t in enumerate(texts) if "Payment received" in t]
    [invite] = [i for i, t in enumerate(texts) if "Join with this link" in t]
    assert paid < invite
    texts[paid], texts[invite] = texts[invite], texts[paid]  # the invite overtook the payment
    one(order_kept(w.outbox, w.bot_texts), f"customer {ALICE}", "access.invite", "invoice.paid")
    texts[paid], texts[invite] = texts[invite], texts[paid]
    invoice = paid_invoice(w, ALICE)["id"]
    seen = MESSAGES["payment_detected"].format(received="29.0001", coin="USDT", invoice=invoice)
    texts.append(seen)  # "payment seen" after "payment received" (no outbox row needed)
    one(order_kept(w.outbox, w.bot_texts), f"customer {ALICE}", invoice, "after it was received")
    texts.insert(paid, texts.pop())  # before it: what a customer expects
    assert order_kept(w.outbox, w.bot_texts) == []


def test_an_event_missing_at_one_webhook_endpoint_is_reported(w: World) -> None:
    assert w.webhooks is not None
    endpoints = ["/hooks", "/other"]
    assert events_reached_every_endpoint(w.events, w.webhooks, ["/hooks"]) == []
    assert events_reached_every_endpoint(w.events, w.webhooks, []) == []  # not judged
    found = events_reached_every_endpoint(w.events, w.webhooks, endpoints)
    assert len(found) == len(w.events) and all("endpoint /other" in v for v in found), found
    copies = [replace(r, path="/other") for r in w.webhooks]
    first = copies[0].json()["id"]
    kept = [r for r in copies if r.json()["id"] != first]
    one(events_reached_every_endpoint(w.events, w.webhooks + kept, endpoints), first, "/other")
    assert events_reached_every_endpoint(w.events, w.webhooks + copies, endpoints) == []


def test_an_entitled_customer_banned_from_a_paid_chat_is_reported(w: World) -> None:
    def banned() -> list[str]:
        args = (w.plan_chats, w.subscriptions, w.chat_banned)
        return no_entitled_customer_banned(*args, now_ms=w.now_ms)

    assert w.chat_banned == {CLUB: set()} and banned() == []
    w.chat_banned[CLUB] |= {STRANGER, CAROL}  # no subscription: a ban is theirs to keep
    assert banned() == []
    w.chat_banned[CLUB].add(BOB)  # entitled, although he blocked the bot
    one(banned(), f"customer {BOB}", str(CLUB), "banned")
    only(w.subscriptions, customer_id=BOB)["ends_at"] = w.now_ms  # ended: no longer entitled
    assert banned() == []


# --- a flood -----------------------------------------------------------------------------------


def test_a_customer_answered_late_or_never_during_a_flood_is_reported(w: World) -> None:
    assert {chat for chat, _ in w.probes} == {ALICE, CAROL}
    assert answered_in_time(w.probes, w.handed_out, w.help_answers) == []
    (chat, update_id), *_ = w.probes
    handed = w.handed_out[update_id]
    answer = min(ts for ts in w.help_answers[chat] if ts >= handed)
    late = dict(w.handed_out) | {update_id: answer - 1.5}  # as if it had waited 1.5 s
    one(answered_in_time(w.probes, late, w.help_answers), str(chat), "after 1.50 s")
    # no answer after it was handed out
    kept = {c: [ts for ts in times if ts < handed] for c, times in w.help_answers.items()}
    found = answered_in_time(w.probes, w.handed_out, kept)
    assert any(f"customer {chat}: update {update_id}" in v and "never answered" in v for v in found)
    unseen = {u: t for u, t in w.handed_out.items() if u != update_id}
    one(answered_in_time(w.probes, unseen, w.help_answers), str(update_id), "never reached")


# --- logs ------------------------------------------------------------------------------------


def product_log(path: Path, secrets: list[str], write: Callable[[logging.Logger], None]) -> str:
    """What ``write`` logs, through the bot's format and secret filter."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactSecrets(secrets))
    logger = logging.getLogger(f"soak.test.{path.stem}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        write(logger)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return path.read_text(encoding="utf-8")


def test_an_unhandled_exception_in_a_log_is_reported(w: World, tmp_path: Path) -> None:
    def fail(logger: logging.Logger) -> None:
        logger.warning("OKX request failed (injected): will retry")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("outbox message 7 (invoice.paid) failed")
        logger.info("after")

    text = product_log(tmp_path / "a.log", w.secrets, fail)
    assert text.count("\n") > 4 and " INFO " in text
    assert log_problems({"a.log": "2026-11-26 10:00:00,000 WARNING x: fault\n"}) == []
    found = one(log_problems({"a.log": text}), "a.log:2:", "outbox message 7")
    assert "RuntimeError" not in found  # one violation per record, its first line
    assert log_problems({"a.log": text}, expected=[r"outbox message \d+"]) == []
    crash = "Traceback (most recent call last):\n  File x\nKeyError: 1\n"
    one(log_problems({"b.log": crash}), "b.log:1:")


def test_a_secret_in_a_log_is_reported_without_showing_it(
    w: World, run: Run, tmp_path: Path
) -> None:
    token = w.secrets[0]
    clean = product_log(tmp_path / "c.log", w.secrets, lambda log: log.info("url /bot%s/x", token))
    assert "url /bot***/x" in clean and secrets_in_logs({"c.log": clean}, w.secrets) == []
    leaked = product_log(tmp_path / "d.log", [], lambda log: log.info("url /bot%s/x", token))
    one(secrets_in_logs({"d.log": leaked}, w.secrets), "d.log:1:", "secret #1")
    quoted = "GET /x?key=" + token.replace(":", "%3A") + "\n"
    one(secrets_in_logs({"e.log": quoted}, w.secrets), "secret #1")
    w.logs = {"d.log": leaked + f"{leaked[:23]} ERROR bot.errors: job {token} failed: X\n"}
    found = check_world(w, run.options)
    assert len(found) == 3 and not any(token in v for v in found), found  # redacted


def test_a_customer_holding_more_amounts_than_the_cap_is_reported() -> None:
    invoices = [{"id": f"I{n}", "customer_id": 7} for n in range(8)] + [
        {"id": "J0", "customer_id": 8}
    ]
    now = 1_000
    held = [{"invoice_id": f"I{n}", "held_until": now + 1 if n < 6 else now} for n in range(8)] + [
        {"invoice_id": "J0", "held_until": now + 1}
    ]
    # six of customer 7's amounts are still held (two holds ended): one too many for a cap of 5
    one(held_within_cap(invoices, held, now, cap=5), "customer 7", "6 unique amounts")
    assert held_within_cap(invoices, held, now, cap=6) == []
