"""The Stars invariant (tests/soak/invariants_stars.py) on hand-built rows: a clean world (a
subscription paid, renewed; another paid then refunded by Telegram's support; a charge naming
no order of the shop) holds, and each thing broken in a copy is reported, alone."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.texts import CATALOGUE, DEFAULT_LANGUAGE
from payments import states as st
from payments.stars import payload_of
from tests.soak.invariants_stars import stars_as_invoices, stars_credited_once
from tests.soak.invariants_subs import subscriptions_replayed

MESSAGES = CATALOGUE[DEFAULT_LANGUAGE]

ALICE, BOB, EVE = 7001, 7002, 7003
T0 = 1_790_000_000_000
MONTH_MS = 2_592_000_000


def _paid_text(stars: int, until: str) -> str:
    return MESSAGES["stars_paid_subscription"].format(stars=stars, plan="Pro", until=until)


def _renewed_text(stars: int, until: str) -> str:
    return MESSAGES["stars_renewed"].format(stars=stars, plan="Pro", until=until)


ALICE_PAID = _paid_text(1500, "2026-09-21 12:00 UTC")
ALICE_RENEWED = _renewed_text(1500, "2026-10-21 12:00 UTC")
BOB_PAID = _paid_text(1500, "2026-09-21 12:05 UTC")


def _tx(
    charge: str, user: int, order: str, date_ms: int, *, incoming: bool = True
) -> dict[str, Any]:
    partner = {"type": "user", "user": {"id": user}, "invoice_payload": payload_of(order)}
    side = "source" if incoming else "receiver"
    return {"id": charge, "amount": 1500, "date": date_ms // 1000, side: partner}


def _payment(
    charge: str, pid: str, user: int, order: str, at: int, *, renewal: bool = False
) -> dict[str, Any]:
    return {
        "charge_id": charge,
        "id": pid,
        "invoice_id": order,
        "customer_id": user,
        "plan_id": "pro",
        "days": 30,
        "stars": 1500,
        "renewal": renewal,
        "paid_at": at,
        "recorded_at": at + 500,
        "source": "update",
        "refunded_at": None,
        "refund_source": None,
    }


def _period(pid: int, invoice: str, user: int, start: int) -> dict[str, Any]:
    return {
        "id": pid,
        "subscription_id": user,
        "customer_id": user,
        "plan_id": "pro",
        "invoice_id": invoice,
        "source": "stars",
        "days": 30,
        "credited_at": start,
        "starts_at": start,
        "ends_at": start + MONTH_MS,
        "revoked_at": None,
        "revoke_reason": None,
    }


@dataclass
class Stars:
    ledger: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    periods: list[dict[str, Any]] = field(default_factory=list)
    texts: dict[int, list[str]] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    in_flight: list[tuple[int, str]] = field(default_factory=list)

    def check(self) -> list[str]:
        return stars_credited_once(
            self.ledger,
            self.orders,
            self.payments,
            self.periods,
            self.texts,
            self.blocked,
            self.in_flight,
        )

    def payment(self, pid: str) -> dict[str, Any]:
        [row] = [r for r in self.payments if r["id"] == pid]
        return row

    def period(self, invoice: str) -> dict[str, Any]:
        [row] = [r for r in self.periods if r["invoice_id"] == invoice]
        return row


@pytest.fixture
def w() -> Stars:
    """Alice subscribed (charge a1) and renewed a month later (a2); Bob subscribed (b1) and
    Telegram's support refunded it; Eve's charge names no order of the shop."""
    refunded_at = T0 + 60_000
    world = Stars(
        ledger=[
            _tx("a1", ALICE, "ORDALICE", T0),
            _tx("b1", BOB, "BOBORDER", T0 + 1000),
            _tx("e1", EVE, "NOTOURS1", T0 + 2000),
            _tx("b1", BOB, "BOBORDER", refunded_at, incoming=False),
            _tx("a2", ALICE, "ORDALICE", T0 + MONTH_MS),
        ],
        orders=[
            {"id": "ORDALICE", "customer_id": ALICE},
            {"id": "BOBORDER", "customer_id": BOB},
        ],
        payments=[
            _payment("a1", "XTRA1", ALICE, "ORDALICE", T0),
            _payment("b1", "XTRB1", BOB, "BOBORDER", T0 + 1000),
            _payment("a2", "XTRA2", ALICE, "ORDALICE", T0 + MONTH_MS, renewal=True),
        ],
        periods=[
            _period(1, "XTRA1", ALICE, T0),
            _period(2, "XTRB1", BOB, T0 + 1000),
            _period(3, "XTRA2", ALICE, T0 + MONTH_MS),
        ],
        texts={ALICE: ["/start", ALICE_PAID, "Join with this link", ALICE_RENEWED], BOB: []},
    )
    world.payment("XTRB1").update(refunded_at=refunded_at, refund_source="telegram")
    world.period("XTRB1")["revoked_at"] = refunded_at
    world.texts[BOB] = [BOB_PAID, MESSAGES["stars_refunded"].format(stars=1500, plan="Pro")]
    return world


def one(violations: list[str], *words: str) -> str:
    assert len(violations) == 1, violations
    assert all(word in violations[0] for word in words), violations
    return violations[0]


def test_the_clean_world_holds(w: Stars) -> None:
    assert w.check() == []
    bob = copy.deepcopy(w)
    bob.texts[BOB] = []  # a refunded charge's message may never have been sent
    assert bob.check() == []


def test_a_charge_in_the_ledger_never_recorded_is_missed(w: Stars) -> None:
    w.payments.remove(w.payment("XTRA2"))
    w.periods.remove(w.period("XTRA2"))
    one(w.check(), "Stars charge a2", f"customer {ALICE}", "0 star_payments rows")


def test_a_charge_recorded_twice_is_reported(w: Stars) -> None:
    w.payments.append(dict(w.payment("XTRA1"), id="XTRA9"))
    found = w.check()
    assert any("Stars charge a1" in v and "2 star_payments rows" in v for v in found), found


def test_a_charge_without_a_period_or_with_two_is_reported(w: Stars) -> None:
    w.periods.remove(w.period("XTRA1"))
    one(w.check(), "Stars charge a1", "payment XTRA1", "0 periods")
    w.periods += [_period(1, "XTRA1", ALICE, T0), _period(9, "XTRA1", ALICE, T0)]
    one(w.check(), "Stars charge a1", "2 periods")


def test_a_refund_in_the_ledger_not_taken_back_is_reported(w: Stars) -> None:
    w.period("XTRB1")["revoked_at"] = None
    one(w.check(), "Stars charge b1", "period 2 is not revoked", "the ledger says refunded")
    w.period("XTRB1")["revoked_at"] = T0 + 60_000
    w.payment("XTRB1")["refunded_at"] = None
    one(w.check(), "Stars charge b1", "refunded in the ledger", "payment XTRB1")


def test_a_period_revoked_without_a_refund_in_the_ledger_is_reported(w: Stars) -> None:
    w.period("XTRA1")["revoked_at"] = T0 + 5
    violations = w.check()
    one(violations, "Stars charge a1", "period 1 is revoked", "the ledger says not refunded")


def test_a_payment_row_the_ledger_lacks_is_invented(w: Stars) -> None:
    w.payments.append(_payment("zz", "XTRZZ", ALICE, "ORDALICE", T0 + 5))
    w.texts[ALICE].append(_paid_text(1500, "2026-09-21 12:10 UTC"))  # told, and still invented
    found = w.check()
    assert any("star_payments XTRZZ names charge zz" in v for v in found), found


def test_a_charge_naming_no_order_of_the_shop_is_not_the_invariants_business(w: Stars) -> None:
    w.ledger.append(_tx("e2", EVE, "NOTOURS2", T0 + 3000))
    assert w.check() == []


def test_a_credited_charge_whose_message_never_came_is_reported(w: Stars) -> None:
    w.texts[ALICE].remove(ALICE_RENEWED)
    one(w.check(), f"customer {ALICE}", "0 Stars renewal message(s)", "XTRA2")
    w.blocked.add(ALICE)  # who blocked the bot cannot read it
    assert w.check() == []


def test_a_payment_message_read_twice_is_reported_unless_its_send_was_in_flight(
    w: Stars,
) -> None:
    w.texts[ALICE].append(ALICE_PAID)
    one(w.check(), f"customer {ALICE}", "Stars payment message 2 times", "0 send(s)")
    w.in_flight.append((ALICE, ALICE_PAID))
    assert w.check() == []
    w.texts[ALICE].append(ALICE_PAID)  # a third copy: one excuse covers one copy
    one(w.check(), "Stars payment message 3 times", "1 send(s)")


def test_two_different_messages_for_one_charge_are_reported(w: Stars) -> None:
    w.texts[ALICE].append(_renewed_text(1500, "2026-11-20 12:00 UTC"))
    one(w.check(), f"customer {ALICE}", "2 different Stars renewal messages for 1 charge")


def test_stars_payments_replay_as_invoices(w: Stars) -> None:
    """Refunded: no time; the subscription's end is the replay of the rest."""
    invoices = stars_as_invoices(w.payments)
    assert [(i["id"], i["status"]) for i in invoices] == [
        ("XTRA1", st.PAID),
        ("XTRB1", "revoked"),
        ("XTRA2", st.PAID),
    ]
    subs = [
        {"id": ALICE, "customer_id": ALICE, "plan_id": "pro", "ends_at": T0 + 2 * MONTH_MS},
        {"id": BOB, "customer_id": BOB, "plan_id": "pro", "ends_at": T0 + 60_000},
    ]
    assert subscriptions_replayed(invoices, w.periods, subs) == []
    subs[0]["ends_at"] = T0 + 3 * MONTH_MS  # a renewal credited twice: a month too long
    found = subscriptions_replayed(invoices, w.periods, subs)
    assert any(f"customer {ALICE}, plan pro" in v and "+30.00 days" in v for v in found), found
