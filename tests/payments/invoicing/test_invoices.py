"""Creating invoices: uniqueness under concurrency, the address pool, caps, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from payments import states as st
from payments.clock import HOUR_MS, MINUTE_MS
from payments.config import PaymentSettings
from payments.errors import (
    BelowMinimumDeposit,
    DepositsDisabled,
    InvalidTransition,
    InvoiceNotFound,
    InvoiceRateLimited,
    NoFreeAmount,
    QuoteUnavailable,
    TooManyOpenInvoices,
    UnknownChoice,
)
from payments.storage import Database
from tests.shop import Shop, open_shop


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        await opened.payments.quotes.quote("USDT")
        yield opened


async def test_fifty_concurrent_invoices_get_distinct_amounts_and_pool_addresses(
    shop: Shop,
) -> None:
    shop.okx.add_address("USDT", "USDT-TRC20", "TXpoolSecond00000000000000000000002")
    shop.okx.add_address("USDT", "USDT-TRC20", "TXpoolThird000000000000000000000003")
    await shop.payments.refresh_directory()

    first_three = await asyncio.gather(*(shop.buy(c) for c in range(1, 4)))
    assert len({i.address for i in first_three}) == 3  # each its own address
    rest = await asyncio.gather(*(shop.buy(c) for c in range(4, 51)))
    invoices = [*first_three, *rest]
    assert len({i.amount_text for i in invoices}) == 50
    assert all(not i.amount_text.endswith("0") for i in invoices)


async def test_an_address_of_its_own_makes_a_small_underpayment_unambiguous(shop: Shop) -> None:
    shop.okx.add_address("USDT", "USDT-TRC20", "TXpoolSecond00000000000000000000002")
    await shop.payments.refresh_directory()
    a = await shop.buy(1)
    b = await shop.buy(2)
    assert a.address != b.address
    shop.pay(b, "25")  # far below tolerance, but to b's own address: a partial of b
    await shop.poll()
    assert st.PAID_PARTIAL in (await shop.invoice(b.id)).exceptions
    assert (await shop.invoice(a.id)).status == st.PENDING


async def test_same_choice_again_returns_the_open_invoice(shop: Shop) -> None:
    first = await shop.buy(1)
    again = await shop.buy(1)
    assert again.id == first.id and again.reused
    shop.clock.advance(100 * MINUTE_MS)  # less than 30 minutes left: a fresh one
    fresh = await shop.buy(1)
    assert fresh.id != first.id and not fresh.reused


async def test_open_invoice_cap_and_hourly_rate_limit(shop: Shop) -> None:
    made = [
        await shop.buy(1, currency=c, network=n)
        for c, n in (("USDT", "TRC20"), ("USDT", "ERC20"), ("USDC", "ERC20"))
    ]
    with pytest.raises(TooManyOpenInvoices):
        await shop.buy(1, currency="USDT", network="BEP20")
    for invoice in made:  # an honest customer who cancels is not locked out...
        await shop.payments.invoices.cancel(invoice.id, customer_id=1)
    for _ in range(7):  # ten invoices within the hour in all
        extra = await shop.buy(1, currency="USDT", network="BEP20")
        await shop.payments.invoices.cancel(extra.id, customer_id=1)
    with pytest.raises(InvoiceRateLimited):  # ...but ten an hour is the limit
        await shop.buy(1, currency="SOL", network="SOL")
    assert len(await shop.table("invoices")) == 10
    shop.clock.advance(HOUR_MS)
    assert (await shop.buy(1, currency="SOL", network="SOL")).status == st.PENDING


async def test_refusals_change_nothing(shop: Shop) -> None:
    with pytest.raises(UnknownChoice):
        await shop.buy(1, plan="gold")
    with pytest.raises(UnknownChoice):
        await shop.buy(1, currency="DOGE", network="DOGE")
    with pytest.raises(UnknownChoice):
        await shop.buy(1, network="TON")
    shop.okx.set_chain("USDT-ERC20", can_dep=False)
    await shop.payments.refresh_directory()
    with pytest.raises(DepositsDisabled):
        await shop.buy(1, network="ERC20")
    shop.okx.set_chain("USDT-BSC", min_dep="50")
    await shop.payments.refresh_directory()
    with pytest.raises(BelowMinimumDeposit, match="minimum deposit"):
        await shop.buy(1, network="BEP20")
    assert await shop.table("invoices") == []


async def test_a_stale_price_is_refused(shop: Shop) -> None:
    shop.okx.set_price("BTC", "90000", ts=shop.clock.now_ms() - 61_000)
    shop.payments.quotes.invalidate()
    with pytest.raises(QuoteUnavailable, match="try again shortly"):
        await shop.buy(1, currency="BTC", network="BTC")
    assert await shop.table("invoices") == []


async def test_no_free_amount_says_busy(db: Database) -> None:
    tiny_cap = PaymentSettings(
        offset_cap_percent=Decimal("0.001"),
        offset_cap_max_percent=Decimal("0.001"),  # never widened
        unpaid_amount_budget_percent=Decimal(100),  # no share kept for paying customers
    )
    async with open_shop(db, tiny_cap) as shop:
        # 0.001 % of 29 USDT is 0.00029: only 29.0001 and 29.0002 (29.0000 ends in 0)
        made = [await shop.buy(c) for c in range(1, 3)]
        assert sorted(i.amount_text for i in made) == ["29.0001", "29.0002"]
        with pytest.raises(NoFreeAmount, match="busy"):
            await shop.buy(3)
        assert len(await shop.table("invoices")) == 2


async def test_customers_only_see_and_cancel_their_own(shop: Shop) -> None:
    invoice = await shop.buy(1)
    with pytest.raises(InvoiceNotFound):
        await shop.payments.invoices.get(invoice.id, customer_id=2)
    with pytest.raises(InvoiceNotFound):
        await shop.payments.invoices.cancel(invoice.id, customer_id=2)
    assert (await shop.invoice(invoice.id)).status == st.PENDING
    shop.pay(invoice)
    await shop.poll()
    with pytest.raises(InvalidTransition):
        await shop.payments.invoices.cancel(invoice.id, customer_id=1)


async def test_expiry_waits_for_a_completed_poll(shop: Shop) -> None:
    invoice = await shop.buy(1)
    await shop.poll()
    shop.clock.advance(3 * HOUR_MS)
    assert await shop.payments.expire_due() == 0  # no poll since it ran out: not yet
    await shop.poll()
    assert await shop.payments.expire_due() == 1
    assert (await shop.invoice(invoice.id)).status == st.EXPIRED


async def test_one_customer_racing_for_invoices_still_gets_at_most_three(shop: Shop) -> None:
    choices = [("USDT", "TRC20"), ("USDT", "ERC20"), ("USDT", "BEP20"), ("USDT", "SOL")]
    choices += [("USDC", "ERC20"), ("USDC", "SOL")]
    results = await asyncio.gather(
        *(shop.buy(7, currency=c, network=n) for c, n in choices), return_exceptions=True
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(made) == 3
    assert all(isinstance(r, TooManyOpenInvoices) for r in refused)
    assert len(await shop.table("invoices")) == 3
