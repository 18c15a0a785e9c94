"""The payments core end to end: invoices priced from the fake OKX, deposits polled over HTTP,
invoices settled, subscriptions credited, messages written. Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from payments import states as st
from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS
from payments.storage import Database
from tests.shop import Shop, open_shop


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


async def test_usdt_amount_is_price_plus_offset_never_ending_in_zero(shop: Shop) -> None:
    amounts = [(await shop.buy(customer)).amount_text for customer in range(1, 13)]
    assert len(set(amounts)) == 12
    for text in amounts:
        value = Decimal(text)
        assert Decimal(29) < value <= Decimal("29.145")  # offset capped at 0.5 %
        assert text[-1] != "0" and len(text.split(".")[1]) == 4


async def test_btc_amount_is_rounded_up_to_the_satoshi(shop: Shop) -> None:
    shop.okx.set_price("BTC", "90000")
    invoice = await shop.buy(1, currency="BTC", network="BTC")
    # 29 / 90000 = 0.000322222... -> 0.00032223 rounded up, plus a unique offset of k satoshi
    assert Decimal("0.00032223") <= invoice.amount <= Decimal("0.00032384")
    assert len(invoice.amount_text.split(".")[1]) == 8


async def test_exact_deposit_settles_and_activates_thirty_days_once(shop: Shop) -> None:
    invoice = await shop.buy(1)
    shop.pay(invoice)
    await shop.poll()

    assert (await shop.invoice(invoice.id)).status == st.PAID
    assert await shop.subscription_end(1) == shop.clock.now_ms() + 30 * DAY_MS
    paid = await shop.messages("invoice.paid")
    assert [m["customer_id"] for m in paid] == [1]
    assert paid[0]["payload"]["ends_at"] == shop.clock.now_ms() + 30 * DAY_MS
    before = (await shop.messages(), await shop.periods())

    shop.clock.advance(MINUTE_MS)
    await shop.poll()  # the same history again
    await shop.poll()
    assert (await shop.messages(), await shop.periods()) == before


async def test_state_zero_then_two_goes_processing_then_paid(shop: Shop) -> None:
    invoice = await shop.buy(1)
    dep = shop.pay(invoice, state="0")
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PROCESSING
    assert [m["payload"]["invoice_id"] for m in await shop.messages("payment.detected")] == [
        invoice.id
    ]
    assert await shop.subscription_end(1) is None

    shop.okx.set_deposit(dep, state="2")
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID
    assert await shop.subscription_end(1) is not None


async def test_on_hold_deposit_alerts_admins_and_can_still_settle(shop: Shop) -> None:
    invoice = await shop.buy(1)
    dep = shop.pay(invoice, state="12")
    await shop.poll()
    held = await shop.invoice(invoice.id)
    assert held.status == st.PROCESSING and st.ON_HOLD in held.exceptions
    [alert] = await shop.messages("admin.deposit_on_hold")
    assert (alert["payload"]["dep_id"], alert["payload"]["invoice_id"]) == (dep, invoice.id)

    shop.okx.set_deposit(dep, state="2")
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID


async def test_deposit_created_hours_before_it_succeeds_still_settles(shop: Shop) -> None:
    invoice = await shop.buy(1, currency="BTC", network="BTC")
    dep = shop.pay(invoice, state="0")
    await shop.poll()
    for _ in range(6):  # three hours of polls while the deposit waits for confirmations
        shop.clock.advance(30 * MINUTE_MS)
        await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PROCESSING

    shop.okx.set_deposit(dep, state="2")  # its ts is still the creation time, 3 h ago
    shop.clock.advance(MINUTE_MS)
    report = await shop.poll()
    assert report.swept is False  # found by the re-read of unfinished deposits, not a sweep
    assert (await shop.invoice(invoice.id)).status == st.PAID


async def test_deposit_older_than_the_invoice_never_matches(shop: Shop) -> None:
    invoice = await shop.buy(1)
    dep = shop.pay(invoice, ts=invoice.created_at - 10 * MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PENDING
    assert (await shop.deposit(dep))["disposition"] == st.DEP_UNMATCHED
    assert [m["payload"]["dep_id"] for m in await shop.messages("admin.deposit_unmatched")] == [dep]


async def test_underpayment_within_tolerance_settles_only_when_unambiguous(shop: Shop) -> None:
    shop.okx.add_address("USDT", "USDT-TRC20", "TXsecondAddressForPoolTest00000001")
    alone = await shop.buy(1)  # takes one address of its own
    shop.pay(alone, Decimal(alone.amount_text) - Decimal("0.5"))  # short by ~1.7 %
    await shop.poll()
    assert (await shop.invoice(alone.id)).status == st.PAID

    a = await shop.buy(2)
    b = await shop.buy(3)  # the pool is used up: both share an address
    dep = shop.pay(
        a, Decimal(a.amount_text) - Decimal("0.4"), to="TXunrelatedWallet000000000000000001"
    )
    await shop.poll()
    assert (await shop.invoice(a.id)).status == st.PENDING
    assert (await shop.invoice(b.id)).status == st.PENDING
    row = await shop.deposit(dep)
    assert row["disposition"] == st.DEP_UNMATCHED and row["note"] == "ambiguous"


async def test_partial_payment_gets_a_top_up_that_completes_it(shop: Shop) -> None:
    invoice = await shop.buy(1)  # the only address: its own
    shop.pay(invoice, "20")
    await shop.poll()
    partial = await shop.invoice(invoice.id)
    assert partial.status == st.PROCESSING and st.PAID_PARTIAL in partial.exceptions
    [message] = await shop.messages("payment.partial")
    topup = message["payload"]["topup_amount"]
    assert Decimal(topup) >= Decimal(invoice.amount_text) - 20
    assert topup == partial.topup_amount_text and topup[-1] != "0"
    assert await shop.subscription_end(1) is None

    shop.clock.advance(10 * MINUTE_MS)
    shop.pay(invoice, topup)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID
    assert await shop.subscription_end(1) == shop.clock.now_ms() + 30 * DAY_MS


async def test_overpayment_settles_with_paid_over(shop: Shop) -> None:
    invoice = await shop.buy(1)
    shop.pay(invoice, "35")
    await shop.poll()
    paid = await shop.invoice(invoice.id)
    assert paid.status == st.PAID and st.PAID_OVER in paid.exceptions


async def test_late_payment_settles_when_still_worth_the_price(shop: Shop) -> None:
    invoice = await shop.buy(1)
    shop.clock.advance(3 * HOUR_MS)
    await shop.poll()
    await shop.payments.expire_due()
    assert (await shop.invoice(invoice.id)).status == st.EXPIRED
    assert [m["payload"]["invoice_id"] for m in await shop.messages("invoice.expired")] == [
        invoice.id
    ]

    shop.pay(invoice)
    await shop.poll()
    late = await shop.invoice(invoice.id)
    assert late.status == st.PAID and st.PAID_LATE in late.exceptions
    assert await shop.subscription_end(1) is not None


async def test_a_failed_price_request_does_not_send_a_late_payment_to_an_admin(
    shop: Shop,
) -> None:
    invoice = await shop.buy(1, currency="ETH", network="ERC20")
    shop.clock.advance(5 * HOUR_MS)
    shop.pay(invoice)
    shop.okx.fail_next(2, "server_error", "/api/v5/market/tickers")  # asked again: the third
    tickers = shop.okx.count("/api/v5/market/tickers")
    await shop.poll()
    late = await shop.invoice(invoice.id)
    assert late.status == st.PAID and st.PAID_LATE in late.exceptions
    assert shop.okx.count("/api/v5/market/tickers") - tickers == 3
    assert await shop.messages("admin.late_review") == []
    # prices down for longer than that: an admin decides, as before
    other = await shop.buy(2, currency="ETH", network="ERC20")
    shop.clock.advance(5 * HOUR_MS)
    shop.pay(other)
    shop.okx.fail_next(3, "server_error", "/api/v5/market/tickers")
    await shop.poll()
    review = await shop.invoice(other.id)
    assert review.status == st.EXPIRED and st.PAID_LATE in review.exceptions
    assert [m["payload"]["invoice_id"] for m in await shop.messages("admin.late_review")] == [
        other.id
    ]


async def test_late_payment_worth_less_now_waits_for_an_admin(shop: Shop) -> None:
    invoice = await shop.buy(1, currency="ETH", network="ERC20")
    shop.clock.advance(5 * HOUR_MS)
    shop.okx.set_price("ETH", "2000")  # ETH fell by a third since the invoice
    shop.pay(invoice)
    await shop.poll()
    review = await shop.invoice(invoice.id)
    assert review.status == st.EXPIRED and st.PAID_LATE in review.exceptions
    assert await shop.subscription_end(1) is None
    assert [m["payload"]["invoice_id"] for m in await shop.messages("admin.late_review")] == [
        invoice.id
    ]


async def test_amount_rounded_to_two_decimals_never_exact_matches(shop: Shop) -> None:
    invoices = [await shop.buy(c) for c in range(1, 4)]  # 29.0001, 29.0002, 29.0003
    rounded = Decimal(invoices[0].amount_text).quantize(Decimal("0.01"))  # 29.00
    dep = shop.pay(invoices[0], rounded, to="TXexchangeHotWallet0000000000000001")
    await shop.poll()
    row = await shop.deposit(dep)
    assert row["match_kind"] is None and row["invoice_id"] is None
    assert (row["disposition"], row["note"]) == (st.DEP_UNMATCHED, "ambiguous")
    assert [(await shop.invoice(i.id)).status for i in invoices] == [st.PENDING] * 3


async def test_paying_a_paid_amount_again_never_credits_a_stranger(shop: Shop) -> None:
    first = await shop.buy(1)
    shop.pay(first)
    await shop.poll()
    stranger = await shop.buy(2)  # created right after
    shop.clock.advance(MINUTE_MS)
    again = shop.pay(first)
    await shop.poll()
    assert (await shop.deposit(again))["match_kind"] == st.KIND_DUPLICATE
    assert (await shop.deposit(again))["invoice_id"] == first.id
    assert (await shop.invoice(stranger.id)).status == st.PENDING
    assert await shop.subscription_end(2) is None
    assert await shop.subscription_end(1) == first.created_at + 30 * DAY_MS  # not doubled
    assert st.DUPLICATE in (await shop.invoice(first.id)).exceptions
    assert len(await shop.messages("admin.duplicate_payment")) == 1


async def test_paying_a_cancelled_invoice_goes_to_an_admin(shop: Shop) -> None:
    invoice = await shop.buy(1)
    await shop.payments.invoices.cancel(invoice.id, customer_id=1)
    stranger = await shop.buy(2)
    dep = shop.pay(invoice)
    await shop.poll()
    assert (await shop.deposit(dep))["match_kind"] == st.KIND_AFTER_CLOSE
    assert (await shop.invoice(invoice.id)).status == st.CANCELLED
    assert (await shop.invoice(stranger.id)).status == st.PENDING
    assert await shop.subscription_end(1) is None and await shop.subscription_end(2) is None
    assert len(await shop.messages("admin.payment_after_close")) == 1


async def test_internal_transfer_with_exact_amount_settles(shop: Shop) -> None:
    invoice = await shop.buy(1)
    dep = shop.pay(invoice, type="3")
    assert (await shop.payments.exchange.fetch_deposit_history(dep_id=dep))[0].to_address == ""
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID


async def test_renewal_stacks_onto_the_remaining_days(shop: Shop) -> None:
    first = await shop.buy(1)
    shop.pay(first)
    await shop.poll()
    shop.clock.advance(20 * DAY_MS)  # 10 days left
    second = await shop.buy(1)
    shop.pay(second)
    await shop.poll()
    assert await shop.subscription_end(1) == shop.clock.now_ms() + 40 * DAY_MS


async def test_two_payments_settling_in_one_poll_add_both_periods(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(1, currency="USDC", network="ERC20")
    shop.pay(a)
    shop.pay(b)
    await shop.poll()
    assert await shop.subscription_end(1) == shop.clock.now_ms() + 60 * DAY_MS


async def test_late_short_payment_to_a_reused_address_never_credits_the_new_invoice(
    shop: Shop,
) -> None:
    expired = await shop.buy(1)  # the only address of the chain
    shop.clock.advance(3 * HOUR_MS)
    await shop.poll()
    await shop.payments.expire_due()
    newcomer = await shop.buy(2)  # gets the same address: the only one there is
    assert newcomer.address == expired.address
    # the first customer pays late, short by an exchange fee, to the address they were shown
    dep = shop.pay(expired, Decimal(expired.amount_text) - Decimal("1.5"))
    await shop.poll()
    assert (await shop.invoice(newcomer.id)).status == st.PENDING
    assert (await shop.invoice(newcomer.id)).exceptions == frozenset()
    assert (await shop.deposit(dep))["invoice_id"] != newcomer.id
    assert await shop.subscription_end(2) is None


async def test_an_unfinished_partial_goes_to_an_admin_at_the_end_of_the_window(
    shop: Shop,
) -> None:
    invoice = await shop.buy(1)
    shop.pay(invoice, "20")
    await shop.poll()
    shop.clock.advance(3 * HOUR_MS)
    await shop.poll()
    assert await shop.payments.expire_due() == 0  # still waiting for the top-up
    shop.clock.advance(24 * HOUR_MS)
    await shop.poll()
    assert await shop.payments.expire_due() == 1
    ended = await shop.invoice(invoice.id)
    assert ended.status == st.EXPIRED and st.PAID_PARTIAL in ended.exceptions
    assert [m["customer_id"] for m in await shop.messages("payment.partial_expired")] == [1]
    [alert] = await shop.messages("admin.partial_unfinished")
    assert alert["payload"]["received"] == "20.0000"  # what the admin must refund or accept
    assert [i.id for i in (await shop.payments.admin.pending()).review_invoices] == [invoice.id]
