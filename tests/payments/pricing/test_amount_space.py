"""One customer cannot lock a coin's unique amounts for the others: held amounts are capped per
customer over their whole hold, customers who never paid share a budget, the range widens when
the usual one is full, an admin can block a hoarder, and refusals are counted and cheap.

Small amount ranges and a manual clock stand in for the real sizes and hours. Both databases.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from payments import errors
from payments import states as st
from payments.clock import HOUR_MS, MINUTE_MS
from payments.config import PaymentSettings
from payments.storage import Database
from tests.shop import Shop, open_shop

# 0.003 % of 29 USDT is 0.00087: eight amounts, 29.0001 ... 29.0008 (29.0000 ends in 0)
EIGHT = Decimal("0.003")
# 0.001 %: two amounts, 29.0001 and 29.0002
TWO = Decimal("0.001")


async def pays(shop: Shop, customer: int) -> None:
    """The customer buys and pays: from now on they are a customer who has paid."""
    invoice = await shop.buy(customer)
    shop.pay(invoice)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID


async def test_one_account_cannot_hold_more_amounts_than_its_cap(db: Database) -> None:
    settings = PaymentSettings(max_held_amounts=4)
    async with open_shop(db, settings) as shop:
        held: list[str] = []
        for _ in range(4):  # create and cancel: every cancelled invoice keeps its amount
            invoice = await shop.buy(66)
            held.append(invoice.amount_text)
            await shop.payments.invoices.cancel(invoice.id, customer_id=66)
            shop.clock.advance(10 * MINUTE_MS)
        with pytest.raises(errors.TooManyHeldAmounts) as refused:
            await shop.buy(66)
        # the honest retry hint: when the first held amount's hold ends (created + 2 h + 24 h)
        first_hold_ends = 26 * HOUR_MS - 4 * 10 * MINUTE_MS
        assert refused.value.retry_after_ms == first_hold_ends
        assert len(await shop.table("invoices")) == 4
        assert (await shop.buy(2)).status == st.PENDING  # everyone else is served

        shop.clock.advance(first_hold_ends)
        assert (await shop.buy(66)).status == st.PENDING  # one amount is free again


async def test_accounts_that_never_paid_leave_the_rest_of_the_amounts_to_paying_ones(
    db: Database,
) -> None:
    settings = PaymentSettings(offset_cap_percent=EIGHT, offset_cap_max_percent=EIGHT)
    async with open_shop(db, settings) as shop:
        await pays(shop, 1)  # holds one of the eight amounts (paid invoices hold theirs too)
        hoarded = 0
        for account in range(100, 110):  # fresh accounts that never pay
            for network in ("TRC20", "ERC20", "BEP20"):  # three open invoices each
                try:
                    await shop.buy(account, network=network)
                    hoarded += 1
                except errors.NoFreeAmount as exc:
                    assert isinstance(exc, errors.UnpaidBudgetExhausted)
                    assert exc.retry_after_ms is not None and exc.retry_after_ms > 0
        assert hoarded == 4  # half of the eight
        # a customer who has paid before still gets an amount
        assert (await shop.buy(1)).status == st.PENDING


async def test_the_range_widens_when_the_usual_one_is_full(db: Database) -> None:
    settings = PaymentSettings(
        offset_cap_percent=TWO,
        offset_cap_max_percent=EIGHT,
        unpaid_amount_budget_percent=Decimal(100),
    )
    async with open_shop(db, settings) as shop:
        amounts = [(await shop.buy(customer)).amount_text for customer in range(1, 6)]
        assert amounts[:2] == ["29.0001", "29.0002"]  # the usual range, cheapest first
        assert amounts[2:] == ["29.0003", "29.0004", "29.0005"]  # then the wider one
        assert len(set(amounts)) == 5


async def test_block_stops_a_hoarder_and_frees_what_received_nothing(db: Database) -> None:
    settings = PaymentSettings(
        offset_cap_percent=EIGHT,
        offset_cap_max_percent=EIGHT,
        unpaid_amount_budget_percent=Decimal(100),
    )
    async with open_shop(db, settings) as shop:
        paid_part = await shop.buy(66)
        shop.pay(paid_part, "10")  # this one received money: it keeps its amount
        await shop.poll()
        for _ in range(7):
            try:
                invoice = await shop.buy(66)
            except errors.TooManyOpenInvoices:
                break
            await shop.payments.invoices.cancel(invoice.id, customer_id=66)
        taken = {i["amount_units"] for i in await shop.table("invoices")}
        assert len(taken) == 8
        with pytest.raises(errors.NoFreeAmount):
            await shop.buy(2)

        result = await shop.payments.admin.block(66)
        assert (result.freed, result.cancelled) == (7, 0)
        assert (await shop.buy(2)).status == st.PENDING  # a freed amount
        with pytest.raises(errors.CustomerBlocked):
            await shop.buy(66, currency="USDC", network="ERC20")
        part = await shop.invoice(paid_part.id)
        assert part.status == st.PROCESSING  # money on it: untouched, still the admin's
        claim = await shop.payments.claims.claim(paid_part.id, 66, "ab" * 32)
        assert (claim.outcome, claim.reason) == ("rejected", "blocked")

        assert await shop.payments.admin.unblock(66)
        assert (await shop.buy(66, currency="USDC", network="ERC20")).status == st.PENDING


async def test_refusals_count_towards_the_hourly_limit_without_a_new_invoice(
    db: Database,
) -> None:
    settings = PaymentSettings(
        offset_cap_percent=TWO,
        offset_cap_max_percent=TWO,
        unpaid_amount_budget_percent=Decimal(100),
    )
    async with open_shop(db, settings) as shop:
        await shop.buy(1)
        await shop.buy(2)  # both amounts are held now
        # the first amount is free again when its hold (2 h + 24 h) and its quarantine end
        free_again = 26 * HOUR_MS + shop.payments.settings.amount_quarantine_ms
        for _ in range(settings.invoices_per_hour):
            with pytest.raises(errors.NoFreeAmount) as busy:
                await shop.buy(3)
            assert busy.value.retry_after_ms == free_again
        with pytest.raises(errors.InvoiceRateLimited) as limited:
            await shop.buy(3)  # refused without looking: ten refusals this hour
        assert limited.value.retry_after_ms == HOUR_MS
        assert len(await shop.table("invoices")) == 2
        shop.clock.advance(HOUR_MS)
        with pytest.raises(errors.NoFreeAmount) as busy:  # the hour is over; still busy
            await shop.buy(3)
        assert busy.value.retry_after_ms == free_again - HOUR_MS


async def test_a_burst_of_refusals_starts_one_capacity_check(db: Database) -> None:
    async with open_shop(db) as shop:
        for _ in range(200):
            shop.payments.check_capacity_soon()
        checks = [t for t in asyncio.all_tasks() if t.get_name() == "capacity-check"]
        assert len(checks) == 1
        await checks[0]
        shop.payments.check_capacity_soon()  # within the minute: not again
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "capacity-check"]
        shop.clock.advance(MINUTE_MS)
        shop.payments.check_capacity_soon()
        [again] = [t for t in asyncio.all_tasks() if t.get_name() == "capacity-check"]
        await again
