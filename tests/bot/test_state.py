"""State the Telegram layer keeps in the core: invoice photos, claim waits, customers, and the
admin's grant / user overview / paged queue. Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from payments import states as st
from payments.clock import DAY_MS, MINUTE_MS
from payments.delivery import messages
from payments.errors import InvalidGrant, InvoiceNotFound, UnknownChoice
from payments.invoicing.customers import set_unreachable
from payments.storage import Database
from payments.storage.schema import claim_waits, customers, invoice_messages
from tests.shop import Shop, open_shop


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


async def _rows(shop: Shop, table: Any) -> list[dict[str, Any]]:
    async with shop.db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def _count(shop: Shop, table: Any) -> int:
    async with shop.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


# --- invoice photo messages ----------------------------------------------------------------------


async def test_invoice_messages_are_recorded_once_and_listed_oldest_first(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    photos = shop.payments.photos
    await photos.record(a.id, 1, 500)
    shop.clock.advance(1_000)
    await photos.record(a.id, -100200, 7)  # an admin chat, later (smaller message id)
    await photos.record(a.id, 1, 500)  # a retry after a network error
    await photos.record(b.id, 2, 501)

    assert await photos.of(a.id) == [(1, 500), (-100200, 7)]
    assert await photos.of(b.id) == [(2, 501)]
    assert await photos.of("NOSUCH") == []
    assert await _count(shop, invoice_messages) == 3
    with pytest.raises(InvoiceNotFound):
        await photos.record("NOSUCH", 1, 502)
    assert await _count(shop, invoice_messages) == 3


# --- waiting for a claim -------------------------------------------------------------------------


async def test_claim_wait_expires_is_replaced_and_stops(shop: Shop) -> None:
    waits = shop.payments.claim_waits
    a = await shop.buy(1)
    b = await shop.buy(1, plan="enterprise")
    assert await waits.awaited(1) is None

    await waits.expect(1, a.id)
    assert await waits.awaited(1) == a.id
    shop.clock.advance(29 * MINUTE_MS)
    assert await waits.awaited(1) == a.id
    shop.clock.advance(1 * MINUTE_MS)
    assert await waits.awaited(1) is None  # 30 minutes are up

    await waits.expect(1, a.id, minutes=5)
    await waits.expect(1, b.id)  # the newer wait replaces the older one
    assert await waits.awaited(1) == b.id
    assert [(r["customer_id"], r["invoice_id"]) for r in await _rows(shop, claim_waits)] == [
        (1, b.id)
    ]

    await waits.stop_waiting(1)
    assert await waits.awaited(1) is None
    assert await _count(shop, claim_waits) == 0
    await waits.stop_waiting(1)  # harmless when not waiting


async def test_claim_wait_only_for_the_customers_own_invoice(shop: Shop) -> None:
    waits = shop.payments.claim_waits
    mine = await shop.buy(1)
    theirs = await shop.buy(2)
    await waits.expect(1, mine.id)

    with pytest.raises(InvoiceNotFound):
        await waits.expect(1, theirs.id)
    with pytest.raises(InvoiceNotFound):
        await waits.expect(1, "NOSUCH")
    assert await waits.awaited(1) == mine.id  # the refused call changed nothing
    assert await waits.awaited(2) is None


# --- customers -----------------------------------------------------------------------------------


async def test_touch_creates_updates_language_and_clears_unreachable(shop: Shop) -> None:
    service = shop.payments.customers
    t0 = shop.clock.now_ms()
    assert await service.get(5) is None

    await service.touch(5, "en")
    first = await service.get(5)
    assert first is not None
    assert (first.id, first.language, first.unreachable, first.created_at) == (5, "en", False, t0)

    shop.clock.advance(DAY_MS)
    await service.touch(5, "de")
    await service.touch(5, None)  # Telegram did not say: keep what we know
    async with shop.db.transaction() as conn:
        await set_unreachable(conn, 5, True)  # the customer blocked the bot...
    blocked = await service.get(5)
    assert blocked is not None and blocked.unreachable

    await service.touch(5, None)  # ...and wrote to it again
    back = await service.get(5)
    assert back is not None
    assert (back.language, back.unreachable, back.created_at) == ("de", False, t0)

    await service.touch(6, None)
    assert await service.languages([5, 6, 404]) == {5: "de", 6: None}
    assert await service.languages([]) == {}
    assert await _count(shop, customers) == 2


# --- admin: grant ----------------------------------------------------------------------------


async def test_grant_extends_an_active_subscription_from_its_end(shop: Shop) -> None:
    invoice = await shop.buy(1)
    shop.pay(invoice)
    await shop.poll()
    paid_end = await shop.subscription_end(1)
    assert paid_end == shop.clock.now_ms() + 30 * DAY_MS

    shop.clock.advance(5 * DAY_MS)
    result = await shop.payments.admin.grant(1, "pro", 10)

    assert result.ends_at == paid_end + 10 * DAY_MS  # from the end, not from now
    assert await shop.subscription_end(1) == result.ends_at
    grant = (await shop.periods())[-1]
    assert (grant["source"], grant["invoice_id"], grant["days"]) == ("grant", None, 10)
    told = await shop.messages(messages.SUBSCRIPTION_GRANTED)
    assert [(m["audience"], m["customer_id"], m["payload"]) for m in told] == [
        ("customer", 1, {"plan_id": "pro", "days": 10, "ends_at": paid_end + 10 * DAY_MS})
    ]

    again = await shop.payments.admin.grant(1, "pro", 1)  # a second grant is a second message
    assert again.ends_at == paid_end + 11 * DAY_MS
    assert len(await shop.messages(messages.SUBSCRIPTION_GRANTED)) == 2


async def test_grant_to_an_unknown_customer_creates_them(shop: Shop) -> None:
    now = shop.clock.now_ms()
    result = await shop.payments.admin.grant(77, "enterprise")  # the plan's 30 days

    assert result.ends_at == now + 30 * DAY_MS
    assert await shop.subscription_end(77, "enterprise") == now + 30 * DAY_MS
    customer = await shop.payments.customers.get(77)
    assert customer is not None and customer.created_at == now
    (message,) = await shop.messages(messages.SUBSCRIPTION_GRANTED)
    assert message["payload"] == {"plan_id": "enterprise", "days": 30, "ends_at": result.ends_at}


@pytest.mark.parametrize(
    ("customer", "plan", "days", "error"),
    [
        (88, "pro", 0, InvalidGrant),
        (88, "pro", -3, InvalidGrant),
        (88, "pro", 3651, InvalidGrant),
        (88, "platinum", 10, UnknownChoice),
        (0, "pro", 10, InvalidGrant),
        (1, "pro", 0, InvalidGrant),
        (1, "nope", None, UnknownChoice),
    ],
)
async def test_a_refused_grant_changes_nothing(
    shop: Shop, customer: int, plan: str, days: int | None, error: type[Exception]
) -> None:
    await shop.payments.admin.grant(1, "pro", 3)
    before = (await shop.subscription_end(1), await shop.periods(), await shop.messages())

    with pytest.raises(error) as refused:
        await shop.payments.admin.grant(customer, plan, days)

    assert str(refused.value)  # a message an admin can read
    assert (await shop.subscription_end(1), await shop.periods(), await shop.messages()) == before
    assert await shop.payments.customers.get(customer) is None or customer == 1


async def test_grant_accepts_the_bounds(shop: Shop) -> None:
    now = shop.clock.now_ms()
    assert (await shop.payments.admin.grant(3, "pro", 1)).ends_at == now + DAY_MS
    assert (await shop.payments.admin.grant(4, "pro", 3650)).ends_at == now + 3650 * DAY_MS


# --- admin: a customer's overview and the paged queue ------------------------------------------


async def test_user_overview(shop: Shop) -> None:
    admin = shop.payments.admin
    assert await admin.user(1) is None

    made = []
    for i in range(12):
        view = await shop.buy(1, plan="enterprise" if i == 11 else "pro")  # not handed back
        made.append(view.id)
        if len(made) <= 10:
            await shop.payments.invoices.cancel(view.id, customer_id=1)
        shop.clock.advance(7 * MINUTE_MS)  # under the rate limit of 10 an hour
    assert len(set(made)) == 12
    await admin.grant(1, "enterprise", 5)
    await shop.buy(2)  # someone else's

    overview = await admin.user(1)
    assert overview is not None
    assert overview.customer.id == 1
    assert [i.id for i in overview.invoices] == made[::-1][:10]  # newest first
    assert overview.open_invoices == 2
    assert [(s.plan_id, s.status) for s in overview.subscriptions] == [("enterprise", "active")]


async def test_pending_pages_carry_totals(shop: Shop) -> None:
    admin = shop.payments.admin
    empty = await admin.pending()
    assert (empty.open_total, empty.review_total, empty.unmatched_total) == (0, 0, 0)

    bought = []
    for customer in (1, 2, 3):
        bought.append((await shop.buy(customer)).id)
        shop.clock.advance(1_000)
    shop.okx.add_deposit("USDT", "USDT-TRC20", "5", to="TXnotOurs000000000000000000000000001")
    await shop.poll()

    first = await admin.pending(limit=2)
    second = await admin.pending(limit=2, offset=2)
    assert (first.open_total, first.review_total, first.unmatched_total) == (3, 0, 1)
    assert (second.open_total, second.unmatched_total) == (3, 1)
    assert [i.id for i in first.open_invoices] == bought[::-1][:2]
    assert [i.id for i in second.open_invoices] == bought[:1]
    assert len(first.unmatched) == 1 and second.unmatched == []
    assert first.unmatched[0].disposition == st.DEP_UNMATCHED


# --- the subscription job --------------------------------------------------------------------


async def test_remind_and_expire_runs_every_batch(shop: Shop) -> None:
    for customer in (1, 2, 3):
        await shop.payments.admin.grant(customer, "pro", 1)
    await shop.payments.admin.grant(4, "pro", 20)

    report = await shop.payments.remind_and_expire(batch=1)  # three transactions of one
    assert (report.reminded, report.expired, report.more) == ({3: 0, 1: 3}, 0, False)
    assert len(await shop.messages("subscription.reminder")) == 3
    assert (await shop.payments.remind_and_expire()).reminders == 0  # told once

    shop.clock.advance(DAY_MS)
    report = await shop.payments.remind_and_expire(batch=2)
    assert (report.expired, report.reminders) == (3, 0)
    assert sorted(m["customer_id"] for m in await shop.messages("subscription.expired")) == [
        1,
        2,
        3,
    ]
