"""Claims by tx hash / withdrawal ID, and what admins do by hand. Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from payments import states as st
from payments.clock import DAY_MS, MINUTE_MS
from payments.deposits import claims as cl
from payments.errors import InvalidTransition, InvoiceNotFound
from payments.storage import Database
from tests.shop import Shop, open_shop

SHARED = "TXexchangeHotWallet0000000000000001"  # not one of ours: inexact, no address owner


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


async def _unmatched_deposit(shop: Shop, invoice_amount: str, short: str, **fields: Any) -> str:
    """Two invoices of about the same price: a short payment is ambiguous and waits."""
    dep = shop.okx.add_deposit(
        "USDT", "USDT-TRC20", Decimal(invoice_amount) - Decimal(short), to=SHARED, **fields
    )
    await shop.poll()
    assert (await shop.deposit(dep))["disposition"] == st.DEP_UNMATCHED
    return dep


async def test_a_claim_picks_an_ambiguous_payment_only_among_its_candidates(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    tx = "cd" * 32
    dep = await _unmatched_deposit(shop, a.amount_text, "0.3", tx_id=tx)
    assert (await shop.deposit(dep))["note"] == "ambiguous"

    # a was one of the two candidates: its claim settles it
    result = await shop.payments.claims.claim(a.id, 1, tx)
    assert result.outcome == cl.ATTACHED and result.dep_id == dep
    assert (await shop.invoice(a.id)).status == st.PAID
    # b, the other candidate, claiming it too goes to an admin; nothing moves
    result = await shop.payments.claims.claim(b.id, 2, tx)
    assert (result.outcome, result.reason) == (cl.ADMIN, "claimed_twice")
    assert (await shop.deposit(dep))["invoice_id"] == a.id
    assert (await shop.invoice(b.id)).status == st.PENDING

    # an invoice made after the decision fits the amount today, but was no candidate then:
    # the public tx hash alone gets it nothing, an admin decides
    await shop.buy(3)
    other = await _unmatched_deposit(shop, b.amount_text, "0.3", tx_id="ce" * 32)
    late = await shop.buy(4)
    result = await shop.payments.claims.claim(late.id, 4, "ce" * 32)
    assert (result.outcome, result.reason) == (cl.ADMIN, "candidate_of_others")
    assert (await shop.deposit(other))["disposition"] == st.DEP_UNMATCHED
    assert (await shop.invoice(late.id)).status == st.PENDING


async def test_claim_attaches_when_only_the_claimant_fits(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    tx = "ef" * 32
    dep = await _unmatched_deposit(shop, a.amount_text, "0.3", tx_id=tx)
    await shop.payments.invoices.cancel(b.id, customer_id=2)

    result = await shop.payments.claims.claim(a.id, 1, "  " + tx + "\n")
    assert result.outcome == cl.ATTACHED and result.dep_id == dep
    assert (await shop.invoice(a.id)).status == st.PAID
    assert await shop.subscription_end(1) == shop.clock.now_ms() + 30 * DAY_MS
    assert (await shop.deposit(dep))["match_kind"] == st.KIND_CLAIM


async def test_second_claim_of_the_same_deposit_goes_to_an_admin(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    tx = "12" * 32
    dep = await _unmatched_deposit(shop, a.amount_text, "0.3", tx_id=tx)
    await shop.payments.invoices.cancel(b.id, customer_id=2)
    assert (await shop.payments.claims.claim(a.id, 1, tx)).outcome == cl.ATTACHED

    c = await shop.buy(3)
    result = await shop.payments.claims.claim(c.id, 3, tx)
    assert result.outcome == cl.ADMIN and result.reason == "claimed_twice"
    assert (await shop.deposit(dep))["invoice_id"] == a.id  # nothing moved
    assert [m["payload"]["invoice_id"] for m in await shop.messages("admin.claim_review")][
        -1
    ] == c.id


async def test_claim_refuses_other_currency_older_and_attached_deposits(shop: Shop) -> None:
    invoice = await shop.buy(1)
    shop.okx.add_deposit("USDC", "USDC-ERC20", "29.3", tx_id="0x" + "aa" * 32)
    shop.okx.add_deposit(
        "USDT", "USDT-TRC20", "29.2", to=SHARED, tx_id="bb" * 32, ts=invoice.created_at - DAY_MS
    )
    someone = await shop.buy(2)
    attached = shop.pay(someone, tx_id="cc" * 32)
    await shop.poll()
    claims = shop.payments.claims
    assert (await claims.claim(invoice.id, 1, "0X" + "AA" * 32)).reason == "other_currency"
    assert (await claims.claim(invoice.id, 1, "bb" * 32)).reason == "older_than_invoice"
    assert (await claims.claim(invoice.id, 1, "cc" * 32)).reason == "already_attached"
    assert (await claims.claim(invoice.id, 1, "nothing-like-it")).outcome == cl.NOT_FOUND
    assert (await claims.claim(invoice.id, 1, "bad ref!")).reason == "bad_reference"
    assert (await shop.invoice(invoice.id)).status == st.PENDING
    assert (await shop.deposit(attached))["invoice_id"] == someone.id


async def test_claims_are_rate_limited_per_customer_and_a_refused_one_changes_nothing(
    shop: Shop,
) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    tx = "9e" * 32
    dep = await _unmatched_deposit(shop, a.amount_text, "0.3", tx_id=tx)
    await shop.payments.invoices.cancel(b.id, customer_id=2)  # now the deposit fits a alone
    claims = shop.payments.claims
    limit = shop.payments.settings.claims_per_hour
    for n in range(limit):  # a block explorer's worth of guesses
        assert (await claims.claim(a.id, 1, f"guess-{n:04d}")).outcome == cl.NOT_FOUND
    before = await shop.table("claims")
    refused = await claims.claim(a.id, 1, tx)  # even the right one, while limited
    assert (refused.outcome, refused.reason) == (cl.REJECTED, cl.RATE_LIMITED)
    assert await shop.table("claims") == before
    assert (await shop.deposit(dep))["invoice_id"] is None
    assert (await shop.invoice(a.id)).status == st.PENDING
    # a malformed reference says so, limited or not (it is not a claim)
    assert (await claims.claim(a.id, 1, "bad ref!")).reason == cl.BAD_REFERENCE
    # another customer is not held back
    c = await shop.buy(3, currency="USDC", network="ERC20")
    assert (await claims.claim(c.id, 3, "their-own-guess")).outcome == cl.NOT_FOUND
    # an hour after the first guesses, the customer may claim again
    shop.clock.advance(60 * MINUTE_MS)
    assert (await claims.claim(a.id, 1, tx)).outcome == cl.ATTACHED
    assert (await shop.invoice(a.id)).status == st.PAID


async def test_claim_of_someone_elses_invoice_is_not_found(shop: Shop) -> None:
    invoice = await shop.buy(1)
    with pytest.raises(InvoiceNotFound):
        await shop.payments.claims.claim(invoice.id, 2, "ab" * 32)


async def test_claim_by_okx_withdrawal_id_for_an_internal_transfer(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    dep = shop.okx.add_deposit(
        "USDT", "USDT-TRC20", Decimal(a.amount_text) - Decimal("0.2"), type="3", from_wd_id="77001"
    )
    await shop.poll()
    assert (await shop.deposit(dep))["note"] == "ambiguous"
    await shop.payments.invoices.cancel(b.id, customer_id=2)
    result = await shop.payments.claims.claim(a.id, 1, "77001")
    assert result.outcome == cl.ATTACHED
    assert (await shop.invoice(a.id)).status == st.PAID


async def test_admin_confirms_an_unmatched_deposit(shop: Shop) -> None:
    a = await shop.buy(1)
    await shop.buy(2)
    dep = await _unmatched_deposit(shop, a.amount_text, "0.3")
    overview = await shop.payments.admin.pending()
    assert [d.dep_id for d in overview.unmatched] == [dep]

    result = await shop.payments.admin.confirm(a.id, dep)
    assert result.status == st.PAID
    paid = await shop.invoice(a.id)
    assert paid.status == st.PAID and st.MARKED in paid.exceptions
    assert await shop.subscription_end(1) == shop.clock.now_ms() + 30 * DAY_MS
    assert [m["customer_id"] for m in await shop.messages("invoice.paid")] == [1]
    assert (await shop.payments.admin.pending()).unmatched == []


async def test_admin_confirm_without_deposit_needs_a_second_tap(shop: Shop) -> None:
    invoice = await shop.buy(1)
    with pytest.raises(InvalidTransition):
        await shop.payments.admin.confirm(invoice.id)
    assert (await shop.invoice(invoice.id)).status == st.PENDING
    await shop.payments.admin.confirm(invoice.id, force=True)
    assert (await shop.invoice(invoice.id)).status == st.PAID
    with pytest.raises(InvalidTransition):
        await shop.payments.admin.confirm(invoice.id, force=True)
    assert await shop.subscription_end(1) == shop.clock.now_ms() + 30 * DAY_MS  # credited once


async def test_admin_cannot_confirm_with_an_attached_deposit(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    dep = shop.pay(a)
    await shop.poll()
    with pytest.raises(InvalidTransition):
        await shop.payments.admin.confirm(b.id, dep)
    assert (await shop.invoice(b.id)).status == st.PENDING


async def test_reassign_moves_the_deposit_and_revokes_the_old_period(shop: Shop) -> None:
    a = await shop.buy(1)
    b = await shop.buy(2)
    dep = shop.pay(a)
    await shop.poll()
    assert await shop.subscription_end(1) is not None
    shop.clock.advance(MINUTE_MS)
    await shop.payments.admin.reassign(dep, b.id)
    assert (await shop.invoice(a.id)).status == st.PENDING  # as before it was paid
    assert (await shop.invoice(b.id)).status == st.PAID
    end = await shop.subscription_end(1)
    assert end is not None and end <= shop.clock.now_ms()  # revoked: nothing left
    assert await shop.subscription_end(2) == shop.clock.now_ms() + 30 * DAY_MS


async def test_reassign_refuses_a_deposit_in_another_coin(shop: Shop) -> None:
    usdt = await shop.buy(1)
    btc = await shop.buy(2, currency="BTC", network="BTC")
    dep = shop.pay(usdt)
    await shop.poll()
    with pytest.raises(InvalidTransition, match="USDT"):
        await shop.payments.admin.reassign(dep, btc.id)
    assert (await shop.invoice(usdt.id)).status == st.PAID
    assert (await shop.invoice(btc.id)).status == st.PENDING


async def test_refunded_blocks_the_deposit_and_revokes_the_period(shop: Shop) -> None:
    invoice = await shop.buy(1)
    dep = shop.pay(invoice)
    await shop.poll()
    await shop.payments.admin.refunded(dep)
    assert (await shop.deposit(dep))["disposition"] == st.DEP_REFUNDED
    assert (await shop.invoice(invoice.id)).status == st.PENDING  # as before it was paid
    end = await shop.subscription_end(1)
    assert end is not None and end <= shop.clock.now_ms()
    await shop.poll()  # a refunded deposit is never matched again
    assert (await shop.deposit(dep))["disposition"] == st.DEP_REFUNDED


async def test_admin_reject_marks_invalid(shop: Shop) -> None:
    invoice = await shop.buy(1)
    await shop.payments.admin.reject(invoice.id)
    rejected = await shop.invoice(invoice.id)
    assert rejected.status == st.INVALID and st.MARKED in rejected.exceptions


async def test_the_queue_lists_a_case_once_and_forgets_it_once_decided(shop: Shop) -> None:
    partial = await shop.buy(1)
    shop.pay(partial, "10")  # alone on its address: a partial payment
    await shop.poll()
    paid = await shop.buy(2)
    shop.pay(paid)
    await shop.poll()
    shop.clock.advance(MINUTE_MS)
    second = shop.pay(paid)  # the same amount again: a duplicate, money to give back
    await shop.poll()

    queue = await shop.payments.admin.pending()
    assert [i.id for i in queue.review_invoices] == [paid.id, partial.id]
    assert queue.open_invoices == [] and (queue.open_total, queue.review_total) == (0, 2)

    await shop.payments.admin.confirm(partial.id, force=True)
    await shop.payments.admin.refunded(second)
    queue = await shop.payments.admin.pending()
    assert (queue.open_total, queue.review_total, queue.unmatched_total) == (0, 0, 0)
