"""Shop figures (/stats) and capacity alerts at realistic prices. Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from payments import states as st
from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS
from payments.delivery import messages
from payments.errors import NoFreeAmount
from payments.ops.capacity import amount_range
from payments.pricing.allocation import amount_candidates, free_amounts, reserve_amount
from payments.storage import Database, schema
from tests.helpers_db import add_invoice
from tests.shop import Shop, open_shop


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


# --- stats -----------------------------------------------------------------------------------


async def test_stats_sum_exact_amounts_per_plan_and_coin_by_window(shop: Shop) -> None:
    old = await shop.buy(1)  # pro, USDT
    shop.pay(old)
    await shop.poll()
    shop.clock.advance(2 * DAY_MS)

    fresh = await shop.buy(2)  # pro, USDT, paid a little over: what arrived counts
    big = await shop.buy(3, "enterprise", "BTC", "BTC")
    over = Decimal(fresh.amount_text) + Decimal("0.37")
    over_dep = shop.pay(fresh, over)
    shop.pay(big)
    stray = shop.okx.add_deposit("USDT", "USDT-TRC20", "3.5", to="TXnotOurs00000000000000000000001")
    await shop.poll()
    unpaid = await shop.buy(4)  # open: counts nowhere
    assert (await shop.invoice(fresh.id)).status == st.PAID
    assert (await shop.invoice(big.id)).status == st.PAID
    assert (await shop.invoice(unpaid.id)).status == st.PENDING
    assert (await shop.deposit(stray))["disposition"] == st.DEP_UNMATCHED
    assert (await shop.deposit(over_dep))["match_kind"] == st.KIND_OVER

    stats = await shop.payments.stats()

    day, month = stats.windows["24h"], stats.windows["30d"]
    assert day.paid_invoices == 2
    assert day.count_by_plan == {"pro": 1, "enterprise": 1}
    assert day.usd_by_plan == {"pro": Decimal(29), "enterprise": Decimal(99)}
    assert day.usd_total == Decimal(128)
    assert day.coin_by_currency == {"USDT": over, "BTC": Decimal(big.amount_text)}
    assert month.paid_invoices == 3
    assert month.count_by_plan == {"pro": 2, "enterprise": 1}
    assert month.usd_by_plan == {"pro": Decimal(58), "enterprise": Decimal(99)}
    assert month.usd_total == Decimal(157)
    assert month.coin_by_currency == {
        "USDT": Decimal(old.amount_text) + over,
        "BTC": Decimal(big.amount_text),
    }
    for value in [*month.usd_by_plan.values(), *month.coin_by_currency.values()]:
        assert isinstance(value, Decimal)
    assert str(month.coin_by_currency["USDT"]) == str(Decimal(old.amount_text) + over)
    assert stats.active_subscribers == 3
    assert stats.unmatched_deposits == 1
    assert sum(stats.outbox.values()) == len(await shop.messages())
    assert stats.outbox["pending"] == len(await shop.messages())

    shop.clock.advance(29 * DAY_MS)  # the first subscription has ended; the month moved on
    later = await shop.payments.stats()
    assert later.windows["24h"].paid_invoices == 0 and later.windows["24h"].usd_total == 0
    assert later.windows["30d"].count_by_plan == {"pro": 1, "enterprise": 1}
    assert later.active_subscribers == 2


# --- amounts: the count agrees with the allocator ----------------------------------------------


async def test_free_amounts_is_what_the_allocator_can_still_hand_out(db: Database) -> None:
    now = 1_790_000_000_000
    base, step, cap = 1_000, 1, 30  # 1000..1030 without 1000, 1010, 1020, 1030: 27 amounts
    async with db.transaction() as conn:
        await add_invoice(conn, "OLD", currency="BTC")
        await add_invoice(conn, "NEW", currency="BTC")
        held = {
            1001: now + HOUR_MS,  # held
            1002: now - HOUR_MS,  # released an hour ago: quarantined
            1003: now - DAY_MS,  # released 24 h ago: free again
            1004: now - 3 * DAY_MS,  # free again
            1010: now + HOUR_MS,  # ends in 0: never a candidate anyway
            999: now + HOUR_MS,  # below the range
        }
        await conn.execute(
            schema.reservations.insert(),
            [
                {
                    "currency": "BTC",
                    "amount_units": amount,
                    "invoice_id": "OLD",
                    "kind": "main",
                    "address": None,
                    "taken_at": now - 3 * DAY_MS,
                    "held_until": until,
                }
                for amount, until in held.items()
            ],
        )
        args: dict[str, Any] = {
            "currency": "BTC",
            "base_units": base,
            "step_units": step,
            "cap_units": cap,
            "now_ms": now,
        }
        free = await free_amounts(conn, **args)
        assert free == 27 - 2
        taken = []
        with pytest.raises(NoFreeAmount):
            for _ in range(100):
                taken.append(
                    await reserve_amount(
                        conn,
                        **args,
                        invoice_id="NEW",
                        kind="main",
                        address=None,
                        held_until=now + HOUR_MS,
                    )
                )
        assert len(taken) == free
        assert sorted(taken) == sorted(set(amount_candidates(base, step, cap)) - {1001, 1002})
        assert await free_amounts(conn, **args) == 0


# --- amounts: BTC at $90,000 ---------------------------------------------------------------------


async def _hold(shop: Shop, invoice_id: str, amounts: list[int], until: int) -> None:
    async with shop.db.transaction() as conn:
        await conn.execute(
            schema.reservations.insert(),
            [
                {
                    "currency": "BTC",
                    "amount_units": amount,
                    "invoice_id": invoice_id,
                    "kind": "main",
                    "address": None,
                    "taken_at": shop.clock.now_ms(),
                    "held_until": until,
                }
                for amount in amounts
            ],
        )


async def test_low_btc_amounts_alert_admins_once_a_day(shop: Shop) -> None:
    payments = shop.payments
    # midday UTC, so that the next check a day later is another UTC day
    shop.clock.set(shop.clock.now_ms() // DAY_MS * DAY_MS + 12 * HOUR_MS)
    assert await payments.check_capacity() == []

    first = await shop.buy(1, "pro", "BTC", "BTC")
    async with shop.db.read() as conn:
        row = (
            await conn.execute(
                select(schema.invoices.c.base_units).where(schema.invoices.c.id == first.id)
            )
        ).one()
    pro = payments.catalog.plan("pro")
    btc = payments.catalog.coin("BTC")
    assert pro is not None and btc is not None
    span = amount_range(pro, btc, Decimal(90_000), payments.settings.offset_cap_percent)
    assert span.base_units == row.base_units == 32_223  # 0.00032223 BTC, as the invoice has
    amounts = amount_candidates(span.base_units, span.step_units, span.cap_units)
    assert len(amounts) == 146  # about 150, as the README says
    assert first.amount == Decimal(amounts[0]) / 10**8

    now = shop.clock.now_ms()
    await _hold(shop, first.id, amounts[1:120], now + 26 * HOUR_MS)  # 120 held with `first`
    await _hold(shop, first.id, amounts[120:125], now - 2 * HOUR_MS)  # quarantined
    await _hold(shop, first.id, amounts[125:131], now - 25 * HOUR_MS)  # free again

    warnings = await payments.check_capacity()
    assert [(w.currency, w.plan_id, w.what, w.free, w.total, w.announced) for w in warnings] == [
        ("BTC", "pro", "amounts", 146 - 125, 146, True)
    ]
    (message,) = await shop.messages(messages.ADMIN_CAPACITY)
    assert message["audience"] == "admins"
    assert message["payload"] == {
        "currency": "BTC",
        "plan_id": "pro",
        "free": 21,
        "total": 146,
        "what": "amounts",
    }

    shop.clock.advance(3 * HOUR_MS)  # the same UTC day: still low, not told again
    again = await payments.check_capacity()
    assert [(w.free, w.announced) for w in again] == [(21, False)]
    assert len(await shop.messages(messages.ADMIN_CAPACITY)) == 1

    shop.clock.advance(DAY_MS)  # the next day: the quarantined five are free again, still low
    shop.okx.remove_price("ETH")  # a coin without a price is skipped quietly
    next_day = await payments.check_capacity()
    assert [(w.plan_id, w.free, w.announced) for w in next_day] == [("pro", 26, True)]
    assert [m["payload"]["free"] for m in await shop.messages(messages.ADMIN_CAPACITY)] == [21, 26]


async def test_no_free_btc_amount_at_all(shop: Shop) -> None:
    first = await shop.buy(1, "pro", "BTC", "BTC")
    pro, btc = shop.payments.catalog.plan("pro"), shop.payments.catalog.coin("BTC")
    assert pro is not None and btc is not None
    span = amount_range(pro, btc, Decimal(90_000), shop.payments.settings.offset_cap_percent)
    amounts = amount_candidates(span.base_units, span.step_units, span.cap_units)
    await _hold(shop, first.id, amounts[1:], shop.clock.now_ms() + 26 * HOUR_MS)

    # the usual range is full: the next invoice comes from the wider one, and admins hear
    wider = await shop.buy(2, "pro", "BTC", "BTC")
    assert wider.amount > Decimal(span.base_units + span.cap_units).scaleb(-8)
    (warning,) = await shop.payments.check_capacity()
    assert (warning.plan_id, warning.free, warning.total) == ("pro", 0, 146)


# --- addresses -----------------------------------------------------------------------------------


async def test_address_pool_exhausted_alerts_admins(shop: Shop) -> None:
    shop.okx.add_address("USDT", "USDT-TRC20", "TXpoolSecond00000000000000000000002")
    shop.okx.add_address("USDT", "USDT-TRC20", "TXpoolThird000000000000000000000003")
    await shop.payments.refresh_directory()
    payments = shop.payments

    a = await shop.buy(1)
    await shop.buy(2)
    assert await payments.check_capacity() == []  # one address is still free

    await shop.buy(3)
    warnings = await payments.check_capacity()
    assert [(w.currency, w.chain, w.what, w.free, w.total) for w in warnings] == [
        ("USDT", "USDT-TRC20", "addresses", 0, 3)
    ]
    (message,) = await shop.messages(messages.ADMIN_CAPACITY)
    assert message["payload"] == {
        "currency": "USDT",
        "chain": "USDT-TRC20",
        "free": 0,
        "total": 3,
        "what": "addresses",
    }
    await payments.check_capacity()
    assert len(await shop.messages(messages.ADMIN_CAPACITY)) == 1

    await payments.invoices.cancel(a.id, customer_id=1)
    shop.clock.advance(MINUTE_MS)  # its address is quarantined: a's payer may still pay to it
    assert [w.what for w in await payments.check_capacity()] == ["addresses"]
    shop.clock.advance(payments.settings.address_quarantine_ms)  # back in the pool
    assert [w.what for w in await payments.check_capacity() if w.what == "addresses"] == []
