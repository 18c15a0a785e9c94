"""The Stars rail against an adversary: a tampered or stale payload is refused at pre-checkout,
each charge is credited once however often Telegram (or its ledger) reports it, a renewal
extends once, a lost update is found in the ledger, a refund takes the time back once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from payments.catalog import Catalog, Coin, Network, Plan
from payments.clock import DAY_MS, MINUTE_MS, ManualClock
from payments.errors import UnknownChoice
from payments.stars import LedgerEntry, StarsCharge, StarsRail, payload_of
from payments.storage import Database
from payments.storage.schema import merchant_events, outbox, subscription_periods, subscriptions

ALICE, MALLORY = 5001, 5002
MONTH = Plan("month", "Month", __import__("decimal").Decimal("10"), 30, stars=500)
YEAR = Plan("year", "Year", __import__("decimal").Decimal("90"), 365, stars=4000)
CRYPTO_ONLY = Plan("crypto", "Crypto", __import__("decimal").Decimal("5"), 7)
COIN = Coin(
    "USDT",
    "Tether",
    __import__("decimal").Decimal("0.0001"),
    (Network("TRC20", "USDT-TRC20", "Tron"),),
)
CATALOG = Catalog(plans=(MONTH, YEAR, CRYPTO_ONLY), coins=(COIN,))
TTL = 120 * MINUTE_MS


@pytest.fixture
def rail(db: Database, clock: ManualClock) -> StarsRail:
    return StarsRail(db, CATALOG, clock, order_ttl_ms=TTL)


def charge(order_payload: str, charge_id: str, clock: ManualClock, **kw: Any) -> StarsCharge:
    fields: dict[str, Any] = {
        "customer_id": ALICE,
        "charge_id": charge_id,
        "payload": order_payload,
        "stars": 500,
        "paid_at": clock.now_ms(),
    }
    return StarsCharge(**(fields | kw))


async def rows(db: Database, table: Any) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(table))]


async def told(db: Database, kind: str) -> list[dict[str, Any]]:
    return [r for r in await rows(db, outbox) if r["kind"] == kind]


async def ends(db: Database, plan: str = "month") -> int:
    [sub] = [s for s in await rows(db, subscriptions) if s["plan_id"] == plan]
    return int(sub["ends_at"])


async def test_pre_checkout_says_yes_only_to_the_customers_open_order_at_its_price(
    rail: StarsRail, clock: ManualClock
) -> None:
    order = await rail.open_order(ALICE, "month")
    assert order.recurring and order.stars == 500
    assert (await rail.check_checkout(ALICE, order.payload, "XTR", 500)).ok
    assert (await rail.check_checkout(MALLORY, order.payload, "XTR", 500)).refusal == "not_yours"
    assert (await rail.check_checkout(ALICE, order.payload, "XTR", 1)).refusal == "price_changed"
    assert (await rail.check_checkout(ALICE, order.payload, "USD", 500)).refusal == "unknown"
    tampered = payload_of("ZZZZZZZZ")
    assert (await rail.check_checkout(ALICE, tampered, "XTR", 500)).refusal == "unknown"
    assert (await rail.check_checkout(ALICE, "subsbot:'; DROP", "XTR", 500)).refusal == "unknown"
    clock.advance(TTL)
    assert (await rail.check_checkout(ALICE, order.payload, "XTR", 500)).refusal == "expired"


async def test_pre_checkout_refuses_a_paid_order_a_plan_gone_and_a_plan_repriced(
    db: Database, rail: StarsRail, clock: ManualClock
) -> None:
    order = await rail.open_order(ALICE, "month")
    await rail.record_charge(charge(order.payload, "ch-1", clock))
    assert (await rail.check_checkout(ALICE, order.payload, "XTR", 500)).refusal == "paid"
    other = await rail.open_order(ALICE, "year")
    repriced = Plan("year", "Year", YEAR.price_usd, 365, stars=4500)
    gone = StarsRail(db, Catalog(plans=(MONTH,), coins=(COIN,)), clock, order_ttl_ms=TTL)
    moved = StarsRail(db, Catalog(plans=(MONTH, repriced), coins=(COIN,)), clock, order_ttl_ms=TTL)
    assert (await gone.check_checkout(ALICE, other.payload, "XTR", 4000)).refusal == "plan_gone"
    check = await moved.check_checkout(ALICE, other.payload, "XTR", 4000)
    assert check.refusal == "price_changed"


async def test_a_plan_without_a_stars_price_is_not_sold_for_stars(rail: StarsRail) -> None:
    with pytest.raises(UnknownChoice):
        await rail.open_order(ALICE, "crypto")
    first = await rail.open_order(ALICE, "year")
    assert not first.recurring  # 365 days: a one-off payment
    assert (await rail.open_order(ALICE, "year")).id == first.id  # a second tap: the same order


async def test_a_charge_reported_twice_and_by_the_ledger_credits_once(
    db: Database, rail: StarsRail, clock: ManualClock
) -> None:
    order = await rail.open_order(ALICE, "month")
    paid = charge(order.payload, "ch-1", clock, recurring=True, first=True)
    first = await rail.record_charge(paid)
    assert first.new and first.payment_id and first.ends_at == clock.now_ms() + 30 * DAY_MS
    assert not (await rail.record_charge(paid)).new  # the update delivered again
    ledger = [LedgerEntry("ch-1", 500, clock.now_ms(), ALICE, True, order.payload, 2_592_000)]
    clock.advance(2 * MINUTE_MS)
    report = await rail.reconcile(ledger, covered_since=0)
    assert (report.credited, report.missing) == (0, 0)
    assert len(await rows(db, subscription_periods)) == 1
    assert len(await told(db, "stars.paid")) == 1
    assert len(await told(db, "admin.stars_paid")) == 1
    paid_events = [e for e in await rows(db, merchant_events) if e["type"] == "invoice.paid"]
    assert len(paid_events) == 1 and '"rail": "stars"' in paid_events[0]["payload"]


async def test_a_renewal_extends_once_and_a_lost_renewal_is_found_in_the_ledger(
    db: Database, rail: StarsRail, clock: ManualClock
) -> None:
    order = await rail.open_order(ALICE, "month")
    start = clock.now_ms()
    await rail.record_charge(charge(order.payload, "ch-1", clock, recurring=True, first=True))
    clock.advance(30 * DAY_MS)
    renewal = charge(order.payload, "ch-2", clock, recurring=True, first=False)
    credited = await rail.record_charge(renewal)
    assert credited.renewal and await ends(db) == start + 60 * DAY_MS
    await rail.record_charge(renewal)
    assert await ends(db) == start + 60 * DAY_MS
    clock.advance(30 * DAY_MS)  # the third charge's update never arrives
    lost = LedgerEntry("ch-3", 500, clock.now_ms(), ALICE, True, order.payload, 2_592_000)
    clock.advance(2 * MINUTE_MS)
    assert (await rail.reconcile([lost], covered_since=clock.now_ms() - DAY_MS)).credited == 1
    assert (await rail.reconcile([lost], covered_since=clock.now_ms() - DAY_MS)).credited == 0
    assert await ends(db) == start + 90 * DAY_MS
    assert len(await told(db, "stars.paid")) == 3


async def test_a_payment_naming_no_order_or_anothers_is_told_to_the_admins_not_credited(
    db: Database, rail: StarsRail, clock: ManualClock
) -> None:
    order = await rail.open_order(ALICE, "month")
    stranger = charge(order.payload, "ch-x", clock, customer_id=MALLORY)
    assert (await rail.record_charge(stranger)).payment_id is None
    assert (await rail.record_charge(charge("junk", "ch-y", clock))).payment_id is None
    assert await rows(db, subscription_periods) == []
    assert len(await told(db, "admin.stars_unmatched")) == 2


async def test_a_refund_takes_the_time_back_once_and_a_refund_outside_the_bot_too(
    db: Database, rail: StarsRail, clock: ManualClock
) -> None:
    order = await rail.open_order(ALICE, "month")
    await rail.record_charge(charge(order.payload, "ch-1", clock, recurring=True, first=True))
    payment = await rail.find_payment(order.id)
    assert payment is not None and payment.charge_id == "ch-1"
    assert await rail.find_payment(payment.id) == payment
    assert await rail.find_payment("ch-1") == payment
    refunded = await rail.record_refund("ch-1", by="admin")
    assert refunded is not None and refunded.ends_at is not None
    assert refunded.ends_at <= clock.now_ms()
    assert await rail.record_refund("ch-1", by="admin") is None  # once
    assert len(await told(db, "stars.refunded")) == 1
    [sub] = await rail.subscriptions_of(ALICE)
    assert not sub.renewal_on  # a refunded subscription is not renewed

    other = await rail.open_order(ALICE, "year")
    await rail.record_charge(charge(other.payload, "ch-9", clock, stars=4000))
    clock.advance(2 * MINUTE_MS)
    ledger = [
        LedgerEntry("ch-9", 4000, clock.now_ms(), ALICE, False),  # refunded by Telegram
        LedgerEntry("ch-9", 4000, clock.now_ms() - MINUTE_MS, ALICE, True, other.payload),
    ]
    assert (await rail.reconcile(ledger, covered_since=0)).refunded == 1
    assert (await rail.reconcile(ledger, covered_since=0)).refunded == 0
    assert await ends(db, "year") <= clock.now_ms()


async def test_a_recorded_payment_the_ledger_lacks_is_reported_once(
    db: Database, rail: StarsRail, clock: ManualClock
) -> None:
    order = await rail.open_order(ALICE, "month")
    await rail.record_charge(charge(order.payload, "ch-1", clock))
    clock.advance(2 * MINUTE_MS)
    assert (await rail.reconcile([], covered_since=0)).missing == 1
    await rail.reconcile([], covered_since=0)
    assert len(await told(db, "admin.stars_unmatched")) == 1


async def test_a_payment_recorded_while_the_ledger_was_read_is_not_reported_missing(
    db: Database, rail: StarsRail, clock: ManualClock
) -> None:
    """The ledger was read just before the payment's update was recorded, and Telegram's clock
    is minutes behind the shop's: no false alarm; a later read that still lacks it reports it."""
    order = await rail.open_order(ALICE, "month")
    read_began = clock.now_ms()
    clock.advance(5 * MINUTE_MS)
    telegram_date = clock.now_ms() - 10 * MINUTE_MS  # Telegram's clock runs behind
    await rail.record_charge(charge(order.payload, "ch-1", clock, paid_at=telegram_date))
    report = await rail.reconcile([], covered_since=0, read_at=read_began)
    assert report.missing == 0 and await told(db, "admin.stars_unmatched") == []
    clock.advance(2 * MINUTE_MS)
    assert (await rail.reconcile([], covered_since=0, read_at=clock.now_ms())).missing == 1
