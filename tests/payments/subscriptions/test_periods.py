"""Subscriptions: what a customer would see in /status, their history and their messages."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from sqlalchemy import select

from payments.clock import DAY_MS, HOUR_MS, ManualClock
from payments.invoicing.customers import ensure_customer
from payments.storage import Database
from payments.storage.schema import outbox, subscription_periods
from payments.subscriptions.periods import (
    Credit,
    CreditRequest,
    SubscriptionView,
    count_active,
    credit_period,
    credit_periods,
    days_left,
    get_subscription,
    get_subscriptions,
    history,
    replay_periods,
    revoke_period,
)
from payments.subscriptions.reminders import run_reminders_and_expiry

CUSTOMER = 1001


async def credit(
    db: Database,
    clock: ManualClock,
    invoice: str | None,
    *,
    days: int = 30,
    plan: str = "pro",
    customer: int = CUSTOMER,
    hold_ms: int = 0,
) -> Credit | None:
    async with db.transaction() as conn:
        await ensure_customer(conn, customer, clock.now_ms())
        result = await credit_period(
            conn,
            customer_id=customer,
            plan_id=plan,
            days=days,
            now_ms=clock.now_ms(),
            invoice_id=invoice,
        )
        if hold_ms:  # keep the transaction open so a concurrent one overlaps with it
            await asyncio.sleep(hold_ms / 1000)
        return result


async def sub(db: Database, plan: str = "pro", customer: int = CUSTOMER) -> SubscriptionView:
    async with db.read() as conn:
        view = await get_subscription(conn, customer, plan)
    assert view is not None
    return view


async def run_job(db: Database, clock: ManualClock) -> tuple[dict[int, int], int]:
    async with db.transaction() as conn:
        report = await run_reminders_and_expiry(conn, now_ms=clock.now_ms())
    assert not report.more
    return report.reminded, report.expired


async def messages(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.read() as conn:
        rows = await conn.execute(select(outbox.c.kind, outbox.c.payload).order_by(outbox.c.id))
        return [(row.kind, json.loads(row.payload)) for row in rows]


async def test_first_payment_starts_now(db: Database, clock: ManualClock) -> None:
    t0 = clock.now_ms()
    got = await credit(db, clock, "INV1")
    assert got is not None
    assert (got.starts_at, got.ends_at, got.renewed, got.plan_id) == (
        t0,
        t0 + 30 * DAY_MS,
        False,
        "pro",
    )
    view = await sub(db)
    assert (view.status, view.started_at, view.ends_at) == ("active", t0, t0 + 30 * DAY_MS)
    assert days_left(view, t0) == 30
    async with db.read() as conn:
        assert await count_active(conn, t0) == 1
        [period] = await history(conn, CUSTOMER)
    assert (period.invoice_id, period.days, period.starts_at, period.ends_at) == (
        "INV1",
        30,
        t0,
        t0 + 30 * DAY_MS,
    )


async def test_ten_days_left_plus_thirty_is_forty(db: Database, clock: ManualClock) -> None:
    t0 = clock.now_ms()
    await credit(db, clock, "INV1")
    clock.advance(20 * DAY_MS)
    got = await credit(db, clock, "INV2")
    assert got is not None and got.renewed
    assert got.starts_at == t0 + 30 * DAY_MS  # follows on from the old end, no day lost
    view = await sub(db)
    assert days_left(view, clock.now_ms()) == 40
    assert view.started_at == t0  # one uninterrupted run


async def test_two_payments_in_one_transaction_add_up(db: Database, clock: ManualClock) -> None:
    now = clock.now_ms()
    async with db.transaction() as conn:
        await ensure_customer(conn, CUSTOMER, now)
        for invoice in ("A", "B"):
            await credit_period(
                conn, customer_id=CUSTOMER, plan_id="pro", days=30, now_ms=now, invoice_id=invoice
            )
    assert (await sub(db)).ends_at == now + 60 * DAY_MS


@pytest.mark.parametrize("existing", [False, True])
async def test_concurrent_payments_add_up(db: Database, clock: ManualClock, existing: bool) -> None:
    now = clock.now_ms()
    base = now
    if existing:
        await credit(db, clock, "OLD", days=10)
        base = now + 10 * DAY_MS
    a, b = await asyncio.gather(
        credit(db, clock, "A", hold_ms=100), credit(db, clock, "B", hold_ms=100)
    )
    assert a is not None and b is not None
    assert (await sub(db)).ends_at == base + 60 * DAY_MS
    # the two periods are back to back, in one order or the other
    assert sorted([(a.starts_at, a.ends_at), (b.starts_at, b.ends_at)]) == [
        (base, base + 30 * DAY_MS),
        (base + 30 * DAY_MS, base + 60 * DAY_MS),
    ]
    async with db.read() as conn:
        assert len(await get_subscriptions(conn, CUSTOMER)) == 1


async def test_crediting_an_invoice_twice_changes_nothing(db: Database, clock: ManualClock) -> None:
    first = await credit(db, clock, "INV1")
    assert first is not None
    clock.advance(HOUR_MS)
    assert await credit(db, clock, "INV1") is None
    assert await credit(db, clock, "INV1", plan="other") is None  # not even for another plan
    assert (await sub(db)).ends_at == first.ends_at
    async with db.read() as conn:
        assert len(await history(conn, CUSTOMER)) == 1
        assert [v.plan_id for v in await get_subscriptions(conn, CUSTOMER)] == ["pro"]


async def test_the_same_invoice_credited_concurrently_counts_once(
    db: Database, clock: ManualClock
) -> None:
    results = await asyncio.gather(*(credit(db, clock, "INV1", hold_ms=100) for _ in range(3)))
    assert sum(r is not None for r in results) == 1
    assert (await sub(db)).ends_at == clock.now_ms() + 30 * DAY_MS


async def test_expired_subscription_renewed_starts_from_now(
    db: Database, clock: ManualClock
) -> None:
    await credit(db, clock, "INV1")
    clock.advance(45 * DAY_MS)
    await run_job(db, clock)
    assert (await sub(db)).status == "expired"
    got = await credit(db, clock, "INV2")
    assert got is not None and not got.renewed
    view = await sub(db)
    now = clock.now_ms()
    assert (view.status, view.started_at, view.ends_at) == ("active", now, now + 30 * DAY_MS)


async def test_ended_but_not_yet_expired_renewal_also_starts_from_now(
    db: Database, clock: ManualClock
) -> None:
    await credit(db, clock, "INV1")
    clock.advance(31 * DAY_MS)  # the expiry job has not run yet
    got = await credit(db, clock, "INV2")
    assert got is not None and not got.renewed
    assert got.ends_at == clock.now_ms() + 30 * DAY_MS
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)  # nothing to expire


async def test_plans_are_independent(db: Database, clock: ManualClock) -> None:
    now = clock.now_ms()
    await credit(db, clock, "P", plan="pro", days=30)
    await credit(db, clock, "B", plan="basic", days=7)
    async with db.read() as conn:
        views = await get_subscriptions(conn, CUSTOMER)
    assert [(v.plan_id, v.ends_at) for v in views] == [
        ("basic", now + 7 * DAY_MS),
        ("pro", now + 30 * DAY_MS),
    ]


async def test_revocation_replays_the_remaining_periods(db: Database, clock: ManualClock) -> None:
    t0 = clock.now_ms()
    await credit(db, clock, "A")
    clock.advance(5 * DAY_MS)
    await credit(db, clock, "B")
    assert (await sub(db)).ends_at == t0 + 60 * DAY_MS
    clock.advance(5 * DAY_MS)
    async with db.transaction() as conn:
        new_end = await revoke_period(conn, invoice_id="A", now_ms=clock.now_ms(), reason="refund")
    # B alone, credited at t0 + 5 d, runs 30 days from then
    assert new_end == t0 + 35 * DAY_MS
    assert (await sub(db)).ends_at == new_end
    async with db.read() as conn:
        a, b = await history(conn, CUSTOMER)
    assert (a.revoked_at, a.revoke_reason) == (clock.now_ms(), "refund")
    assert (b.revoked_at, b.starts_at, b.ends_at) == (None, t0 + 5 * DAY_MS, new_end)
    async with db.transaction() as conn:
        assert await revoke_period(conn, invoice_id="A", now_ms=clock.now_ms(), reason="x") is None
        assert (
            await revoke_period(conn, invoice_id="NOPE", now_ms=clock.now_ms(), reason="x") is None
        )
    got = await credit(db, clock, "C")
    assert got is not None and got.ends_at == new_end + 30 * DAY_MS


async def test_revocation_respects_a_gap_between_periods(db: Database, clock: ManualClock) -> None:
    t0 = clock.now_ms()
    await credit(db, clock, "A")
    clock.advance(40 * DAY_MS)  # lapsed for ten days
    await credit(db, clock, "B")
    async with db.transaction() as conn:
        new_end = await revoke_period(conn, invoice_id="A", now_ms=clock.now_ms(), reason="x")
    assert new_end == t0 + 70 * DAY_MS  # B still starts when it was paid, not earlier


async def test_revoking_the_only_period_ends_it_and_the_customer_is_told(
    db: Database, clock: ManualClock
) -> None:
    await credit(db, clock, "A")
    clock.advance(DAY_MS)
    async with db.transaction() as conn:
        new_end = await revoke_period(conn, invoice_id="A", now_ms=clock.now_ms(), reason="x")
    assert new_end == clock.now_ms()
    async with db.read() as conn:
        assert await count_active(conn, clock.now_ms()) == 0
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 1)
    assert [kind for kind, _ in await messages(db)] == ["subscription.expired"]


def test_replay_periods() -> None:
    assert replay_periods([]) is None
    assert replay_periods([(0, 30)]) == 30 * DAY_MS
    # back to back while running, from the credit time after a gap, in credited order
    assert replay_periods([(10 * DAY_MS, 30), (0, 30)]) == 60 * DAY_MS
    assert replay_periods([(0, 10), (20 * DAY_MS, 10)]) == 30 * DAY_MS


async def test_random_credits_and_revocations_keep_the_replay_invariant(
    db: Database, clock: ManualClock
) -> None:
    rng = random.Random(7)
    credited: list[str] = []
    for step in range(40):
        clock.advance(rng.randrange(0, 20 * DAY_MS))
        async with db.transaction() as conn:
            if credited and rng.random() < 0.3:
                invoice = credited.pop(rng.randrange(len(credited)))
                await revoke_period(conn, invoice_id=invoice, now_ms=clock.now_ms(), reason="t")
            else:
                await ensure_customer(conn, CUSTOMER, clock.now_ms())
                invoice = f"I{step}"
                await credit_period(
                    conn,
                    customer_id=CUSTOMER,
                    plan_id="pro",
                    days=rng.choice([1, 7, 30]),
                    now_ms=clock.now_ms(),
                    invoice_id=invoice,
                )
                credited.append(invoice)
        async with db.read() as conn:
            live = [p for p in await history(conn, CUSTOMER) if p.revoked_at is None]
            view = await get_subscription(conn, CUSTOMER, "pro")
        assert view is not None
        if live:
            assert view.ends_at == replay_periods([(p.credited_at, p.days) for p in live])


async def test_reminders_fire_once_at_three_and_one_day_and_again_after_renewal(
    db: Database, clock: ManualClock
) -> None:
    got = await credit(db, clock, "INV1")
    assert got is not None
    end = got.ends_at
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    clock.set(end - 3 * DAY_MS - 1)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    clock.set(end - 3 * DAY_MS)
    assert await run_job(db, clock) == ({3: 1, 1: 0}, 0)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    clock.set(end - 2 * DAY_MS)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    clock.set(end - DAY_MS)
    assert await run_job(db, clock) == ({3: 0, 1: 1}, 0)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)

    renewed = await credit(db, clock, "INV2")
    assert renewed is not None and renewed.ends_at == end + 30 * DAY_MS
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    clock.set(renewed.ends_at - 3 * DAY_MS)
    assert await run_job(db, clock) == ({3: 1, 1: 0}, 0)
    clock.set(renewed.ends_at - HOUR_MS)
    assert await run_job(db, clock) == ({3: 0, 1: 1}, 0)

    sent = await messages(db)
    assert sent == [
        ("subscription.reminder", {"plan_id": "pro", "ends_at": end, "days_before": 3}),
        ("subscription.reminder", {"plan_id": "pro", "ends_at": end, "days_before": 1}),
        ("subscription.reminder", {"plan_id": "pro", "ends_at": renewed.ends_at, "days_before": 3}),
        ("subscription.reminder", {"plan_id": "pro", "ends_at": renewed.ends_at, "days_before": 1}),
    ]


async def test_inside_the_last_day_only_the_one_day_reminder_is_sent(
    db: Database, clock: ManualClock
) -> None:
    got = await credit(db, clock, "INV1")
    assert got is not None
    clock.set(got.ends_at - 12 * HOUR_MS)  # the job was down when the 3-day one was due
    assert await run_job(db, clock) == ({3: 0, 1: 1}, 0)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    assert [p["days_before"] for _, p in await messages(db)] == [1]


async def test_expiry_tells_the_customer_once(db: Database, clock: ManualClock) -> None:
    got = await credit(db, clock, "INV1")
    assert got is not None
    clock.set(got.ends_at)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 1)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    clock.advance(DAY_MS)
    assert await run_job(db, clock) == ({3: 0, 1: 0}, 0)
    view = await sub(db)
    assert (view.status, days_left(view, clock.now_ms())) == ("expired", 0)
    assert await messages(db) == [
        ("subscription.expired", {"plan_id": "pro", "ends_at": got.ends_at})
    ]
    async with db.read() as conn:
        assert await count_active(conn, clock.now_ms()) == 0
        audience = (await conn.execute(select(outbox.c.audience, outbox.c.customer_id))).one()
    assert tuple(audience) == ("customer", CUSTOMER)


async def test_reminder_options_are_validated(db: Database, clock: ManualClock) -> None:
    async with db.transaction() as conn:
        with pytest.raises(ValueError):
            await run_reminders_and_expiry(conn, now_ms=clock.now_ms(), remind_days=(7,))
        with pytest.raises(ValueError):
            await credit_period(
                conn, customer_id=1, plan_id="pro", days=0, now_ms=0, invoice_id=None
            )


async def test_grants_without_an_invoice_each_count(db: Database, clock: ManualClock) -> None:
    now = clock.now_ms()
    async with db.transaction() as conn:
        await ensure_customer(conn, CUSTOMER, now)
        for _ in range(2):
            await credit_period(
                conn,
                customer_id=CUSTOMER,
                plan_id="pro",
                days=3,
                now_ms=now,
                invoice_id=None,
                source="grant",
            )
    assert (await sub(db)).ends_at == now + 6 * DAY_MS
    async with db.read() as conn:
        sources = (await conn.execute(select(subscription_periods.c.source))).scalars().all()
    assert sources == ["grant", "grant"]


async def test_a_batch_of_credits_ends_where_one_at_a_time_does(
    db: Database, clock: ManualClock
) -> None:
    """Many invoices credited together (new subscriptions, a running one, two for the same
    subscription, one credited already, one whose period was revoked) leave every customer
    with the ends and history that crediting them one by one gives."""
    t0 = clock.now_ms()
    await credit(db, clock, "OLD", customer=2)  # running: the batch extends it
    await credit(db, clock, "DONE", customer=3)  # credited already: nothing changes
    await credit(db, clock, "BACK", customer=4)
    async with db.transaction() as conn:
        await revoke_period(conn, invoice_id="BACK", now_ms=t0, reason="test")
    clock.advance(DAY_MS)
    requests = [
        CreditRequest("NEW1", 1, "pro", 30),
        CreditRequest("NEW2", 2, "pro", 7),
        CreditRequest("TWICE1", 5, "pro", 30),
        CreditRequest("TWICE2", 5, "pro", 7),
        CreditRequest("DONE", 3, "pro", 30),
        CreditRequest("BACK", 4, "pro", 30),
        CreditRequest("BASIC", 1, "basic", 90),
    ]
    async with db.transaction() as conn:
        for customer in (1, 5):
            await ensure_customer(conn, customer, clock.now_ms())
        got = await credit_periods(conn, requests, now_ms=clock.now_ms())
    t1 = clock.now_ms()
    assert got["DONE"] is None
    assert got["BACK"] is not None and got["BACK"].restored
    ends = {
        (customer, plan): (await sub(db, plan, customer)).ends_at
        for customer, plan in [(1, "pro"), (1, "basic"), (2, "pro"), (3, "pro"), (4, "pro")]
    }
    assert ends == {
        (1, "pro"): t1 + 30 * DAY_MS,
        (1, "basic"): t1 + 90 * DAY_MS,
        (2, "pro"): t0 + 37 * DAY_MS,  # 29 days left plus 7
        (3, "pro"): t0 + 30 * DAY_MS,
        (4, "pro"): t0 + 30 * DAY_MS,  # restored as it was credited
    }
    assert (await sub(db, "pro", 5)).ends_at == t1 + 37 * DAY_MS
    async with db.read() as conn:
        spans = [(p.invoice_id, p.starts_at, p.ends_at) for p in await history(conn, 5)]
    assert spans == [
        ("TWICE1", t1, t1 + 30 * DAY_MS),
        ("TWICE2", t1 + 30 * DAY_MS, t1 + 37 * DAY_MS),
    ]
    for invoice in ("NEW1", "NEW2", "BASIC", "TWICE1", "TWICE2"):
        c = got[invoice]
        assert c is not None and not c.restored
    assert got["NEW2"] is not None and got["NEW2"].renewed
    assert got["NEW2"].starts_at == t0 + 30 * DAY_MS
    async with db.transaction() as conn:  # again: every invoice is credited already
        again = await credit_periods(conn, requests, now_ms=clock.now_ms())
    assert set(again.values()) == {None}
