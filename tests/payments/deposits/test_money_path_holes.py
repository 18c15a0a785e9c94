"""The money path against someone who picks the worst sequence on purpose: each test is one
attack or mistake that once stalled payments, credited someone who did not pay, or credited one
deposit twice, run through the real core against the fake OKX on both databases. What is
asserted is what a customer or an admin would see: invoice statuses, subscription ends, the
admin queue and its messages.

The model-based test that looks for such sequences by itself is
tests/soak/test_money_model.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from fakes.okx import FakeOkx
from payments import states as st
from payments.catalog import load_catalog
from payments.clock import HOUR_MS, MINUTE_MS, ManualClock
from payments.config import PaymentSettings
from payments.deposits import claims as cl
from payments.exchange.okx import OkxExchange
from payments.money import format_amount
from payments.storage import Database
from payments.storage.schema import deposit_candidates
from payments.wiring import Payments
from tests.money_model import PLANS
from tests.shop import Shop, open_shop

EXCHANGE_HOT_WALLET = "TXexchangeHotWallet0000000000000001"  # not ours: no address owner


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


async def unmatched_reasons(shop: Shop) -> dict[str, str]:
    return {
        row["dep_id"]: row["note"]
        for row in await shop.table("deposits")
        if row["disposition"] == st.DEP_UNMATCHED
    }


# --- 1. dust in a coin the shop does not sell ----------------------------------------------------


async def test_dust_in_coins_the_shop_does_not_sell_never_delays_an_honest_payment(
    db: Database,
) -> None:
    # ten minutes into an hour: admins hear of dust at most once an hour
    async with open_shop(db, clock=ManualClock(1_790_002_800_000 + 10 * MINUTE_MS)) as shop:
        await _dust_delays_nobody(shop)


async def _dust_delays_nobody(shop: Shop) -> None:
    waiting = await shop.buy(1)
    first = shop.pay(waiting, state="0")  # seen, waiting for confirmations
    await shop.poll()
    assert (await shop.invoice(waiting.id)).status == st.PROCESSING

    # anyone who has seen an invoice can send tokens OKX credits to its public address
    dust = [shop.okx.add_deposit("TRX", "TRX-TRC20", "1", to=waiting.address) for _ in range(30)]
    dust.append(shop.okx.add_deposit("USDT", "USDT-Polygon", "0.01", to=waiting.address))
    honest = await shop.buy(2)
    shop.pay(honest)
    shop.okx.set_deposit(first, state="2")
    shop.clock.advance(MINUTE_MS)
    await shop.poll()

    # one poll: both honest payments are settled, the dust is kept for an admin, told once
    assert (await shop.invoice(waiting.id)).status == st.PAID
    assert (await shop.invoice(honest.id)).status == st.PAID
    assert await shop.subscription_end(1) is not None and await shop.subscription_end(2)
    reasons = await unmatched_reasons(shop)
    assert {reasons[d] for d in dust} == {"not_sold"}
    assert len(reasons) == len(dust)  # nothing else was quarantined
    [alert] = await shop.messages("admin.deposits_not_sold")
    assert alert["payload"]["count"] == len(dust)
    assert await shop.messages("admin.deposit_unmatched") == []  # no alert per dust deposit

    # more dust within the hour: no more admin messages
    shop.okx.add_deposit("TRX", "TRX-TRC20", "2", to=waiting.address)
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert len(await shop.messages("admin.deposits_not_sold")) == 1
    assert set((await unmatched_reasons(shop)).values()) == {"not_sold"}


async def test_no_price_never_sends_a_payment_to_the_admin_queue(shop: Shop) -> None:
    a, b = await shop.buy(1), await shop.buy(2, currency="BTC", network="BTC")
    shop.pay(a)
    shop.pay(b)
    shop.okx.fail_rate(1.0, kinds=("server_error",), path_prefix="/api/v5/market")
    shop.payments.quotes.invalidate()
    await shop.poll()  # every price request fails during this poll
    shop.okx.clear_faults()
    assert (await shop.invoice(a.id)).status == st.PAID
    assert (await shop.invoice(b.id)).status == st.PAID  # an on-time payment needs no price
    assert await unmatched_reasons(shop) == {}


# --- 2. public tx hashes ---------------------------------------------------------------------


async def test_a_late_payment_cannot_be_taken_by_claiming_its_public_tx_hash(shop: Shop) -> None:
    victim = await shop.buy(1)
    shop.clock.advance(27 * HOUR_MS)  # past victim's monitoring window (2 h + 24 h)
    attacker = await shop.buy(66)  # pending, same plan and coin
    tx = "7a" * 32
    dep = shop.pay(victim, tx_id=tx, to=EXCHANGE_HOT_WALLET)  # the victim's own amount
    await shop.poll()
    assert (await shop.deposit(dep))["note"] == "after_window"

    result = await shop.payments.claims.claim(attacker.id, 66, tx)
    assert result.outcome == cl.ADMIN  # an admin decides, with the claim as evidence
    assert (await shop.invoice(attacker.id)).status == st.PENDING
    assert await shop.subscription_end(66) is None
    [review] = await shop.messages("admin.claim_review")
    assert review["payload"]["invoice_id"] == attacker.id


async def test_a_late_payment_guessed_for_a_stranger_goes_to_an_admin_when_its_payer_claims(
    shop: Shop,
) -> None:
    """Found by the model-based test: three days after the victim's invoice expired, the victim
    pays it by internal transfer, rounded to cents; a stranger's invoice made that minute is the
    only one within tolerance, and the poll gives it the money. The victim's claim by the
    withdrawal ID must reach an admin (who can move the money back), not be refused because
    the deposit is taken, whatever became of the victim's invoice."""
    victim = await shop.buy(1)
    shop.clock.advance(3 * 24 * HOUR_MS)
    rounded = Decimal(victim.amount_text).quantize(Decimal("0.01"))
    dep = shop.pay(victim, rounded, type="3", from_wd_id="88001")
    stranger = await shop.buy(66)
    await shop.poll()
    assert (await shop.deposit(dep))["invoice_id"] == stranger.id  # a guess by its amount
    assert (await shop.invoice(stranger.id)).status == st.PAID

    result = await shop.payments.claims.claim(victim.id, 1, "88001")
    assert (result.outcome, result.reason) == (cl.ADMIN, "held_by_another_invoice")
    [review] = await shop.messages("admin.claim_review")
    assert review["payload"]["invoice_id"] == victim.id
    assert review["payload"]["dep_id"] == dep


async def test_a_second_payment_cannot_be_claimed_once_the_first_settles(shop: Shop) -> None:
    victim = await shop.buy(1)
    first = shop.pay(victim, state="0")
    await shop.poll()
    attacker = await shop.buy(66)
    tx = "5b" * 32
    # the victim pays again, an exchange having taken 0.5 USDT fee, to the same address
    second = shop.pay(victim, Decimal(victim.amount_text) - Decimal("0.5"), tx_id=tx)
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.deposit(second))["disposition"] == st.DEP_UNMATCHED
    assert (await shop.invoice(attacker.id)).status == st.PENDING  # never a stranger's

    assert (await shop.payments.claims.claim(attacker.id, 66, tx)).outcome == cl.ADMIN
    shop.okx.set_deposit(first, state="2")
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(victim.id)).status == st.PAID
    # the same claim once the victim's invoice is paid: still an admin's, never attached
    assert (await shop.payments.claims.claim(attacker.id, 66, tx)).outcome == cl.ADMIN
    assert (await shop.deposit(second))["disposition"] == st.DEP_UNMATCHED
    assert await shop.subscription_end(66) is None


# --- 3. one view of a deposit, for polls and claims alike ------------------------------------


SIX_DECIMALS = PLANS  # USDT counted in millionths (tests/money_model.py)


async def test_a_claim_for_a_six_decimal_coin_sees_what_the_poller_saw(
    db: Database, tmp_path: Path
) -> None:
    plans = tmp_path / "plans.toml"
    plans.write_text(SIX_DECIMALS)
    clock = ManualClock()
    okx = FakeOkx(clock=clock).start()
    exchange = OkxExchange(
        okx.api_key, okx.secret, okx.passphrase, base_url=okx.base_url, clock=clock, throttle=False
    )
    payments = Payments.wire(db, exchange, load_catalog(plans), PaymentSettings(), clock)
    try:
        await payments.start_checks(allow_unsafe_key=False)
        a = await payments.invoices.create(1, "pro", "USDT", "TRC20")
        b = await payments.invoices.create(2, "pro", "USDT", "TRC20")
        short = Decimal(a.amount_text) - Decimal("0.3")
        tx = "6c" * 32
        dep = okx.add_deposit("USDT", "USDT-TRC20", short, to=EXCHANGE_HOT_WALLET, tx_id=tx)
        await payments.poller.poll()
        # the poller judged it at scale 6: it fits both a and b, so it waits for a claim
        assert (await payments.invoices.get(a.id)).status == st.PENDING
        assert (await payments.invoices.get(b.id)).status == st.PENDING
        assert (await payments.admin.pending()).unmatched[0].dep_id == dep
        async with db.read() as conn:
            kept = await conn.execute(select(deposit_candidates.c.invoice_id))
            assert sorted(kept.scalars()) == sorted([a.id, b.id])

        # c was made after that decision: the amount fits it today, but a claim with the
        # public tx hash gets c nothing (it would, judged alone with the wrong scale)
        c = await payments.invoices.create(3, "pro", "USDT", "TRC20")
        assert (await payments.claims.claim(c.id, 3, tx)).outcome == cl.ADMIN
        assert (await payments.invoices.get(c.id)).status == st.PENDING
        assert (await payments.admin.pending()).unmatched[0].dep_id == dep
    finally:
        await exchange.close()
        okx.stop()


# --- 4. a part-paid invoice and someone else's money ------------------------------------------


async def test_a_part_paid_invoice_is_never_completed_with_someone_elses_money(
    shop: Shop,
) -> None:
    a = await shop.buy(1)  # takes the one pool address for itself
    shop.pay(a, "20")
    await shop.poll()
    part = await shop.invoice(a.id)
    assert part.status == st.PROCESSING and part.topup_amount_text is not None

    shop.clock.advance(2 * HOUR_MS + MINUTE_MS)  # a's invoice time is over, its window is not
    await shop.poll()
    b = await shop.buy(2)
    assert b.address == a.address  # shared: the address is still a's, not b's own
    shop.pay(b, "9.1")  # b's money to the address it was shown
    shop.okx.add_deposit("USDT", "USDT-TRC20", "9.1", type="3")  # a stranger's internal transfer
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(a.id)).status == st.PROCESSING  # still waiting for its top-up
    assert await shop.subscription_end(1) is None

    # a's own top-up amount completes it
    shop.pay(a, part.topup_amount_text)
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(a.id)).status == st.PAID


async def test_a_paid_invoices_address_is_nobody_elses_own_until_its_quarantine_ends(
    shop: Shop,
) -> None:
    a = await shop.buy(1)
    shop.pay(a)
    await shop.poll()
    assert (await shop.invoice(a.id)).status == st.PAID
    b = await shop.buy(2)
    # a's payer sends a second, fee-reduced payment to the address a was given
    second = shop.pay(a, Decimal(a.amount_text) - Decimal("0.5"))
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(b.id)).status == st.PENDING
    assert (await shop.deposit(second))["note"] == "possible_duplicate"
    assert (await shop.deposit(second))["candidate_invoice_id"] == a.id

    shop.clock.advance(shop.payments.settings.address_quarantine_ms)
    c = await shop.buy(3)
    assert c.address == a.address  # the address is free for a new invoice of its own again


# --- 5. admin mistakes, and undoing them -------------------------------------------------------


async def test_a_mistaken_reassign_undone_leaves_both_customers_as_they_were(shop: Shop) -> None:
    a = await shop.buy(1)
    dep = shop.pay(a)
    await shop.poll()
    b = await shop.buy(2)
    end_before = await shop.subscription_end(1)

    shop.clock.advance(MINUTE_MS)
    await shop.payments.admin.reassign(dep, b.id)  # the wrong invoice
    assert await shop.subscription_end(2) is not None
    assert (await shop.subscription_end(1) or 0) <= shop.clock.now_ms()  # taken back
    shop.clock.advance(MINUTE_MS)
    await shop.payments.admin.reassign(dep, a.id)  # undone

    assert (await shop.invoice(a.id)).status == st.PAID
    assert await shop.subscription_end(1) == end_before
    assert (await shop.subscription_end(2) or 0) <= shop.clock.now_ms()
    assert (await shop.invoice(b.id)).status == st.PENDING  # as it was before the mistake
    live = [p for p in await shop.periods() if p["revoked_at"] is None]
    assert [p["invoice_id"] for p in live] == [a.id]  # one deposit, one period


async def paid_with_top_up(shop: Shop, customer: int) -> tuple[str, str, str]:
    """An invoice paid as 20 USDT, then its unique top-up: (invoice, first, top-up) ids."""
    invoice = await shop.buy(customer)
    first = shop.pay(invoice, "20")
    await shop.poll()
    topup = (await shop.invoice(invoice.id)).topup_amount_text
    assert topup is not None
    second = shop.pay(invoice, topup)
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID
    return invoice.id, first, second


async def test_moving_a_top_up_away_takes_back_the_period_it_completed(shop: Shop) -> None:
    invoice_id, _first, topup = await paid_with_top_up(shop, 1)
    other = await shop.buy(3)
    shop.clock.advance(MINUTE_MS)
    await shop.payments.admin.reassign(topup, other.id)

    assert (await shop.invoice(other.id)).status == st.PAID
    left = await shop.invoice(invoice_id)
    assert left.status == st.EXPIRED and st.PAID_PARTIAL in left.exceptions
    assert (await shop.subscription_end(1) or 0) <= shop.clock.now_ms()
    live = {p["invoice_id"] for p in await shop.periods() if p["revoked_at"] is None}
    assert live == {other.id}
    queue = await shop.payments.admin.pending()
    assert invoice_id in {i.id for i in queue.review_invoices}  # 20 USDT to confirm or refund
    assert [m["payload"]["invoice_id"] for m in await shop.messages("invoice.revoked")] == [
        invoice_id
    ]


async def test_refunding_the_top_up_of_a_paid_invoice_takes_back_its_period(shop: Shop) -> None:
    invoice_id, first, topup = await paid_with_top_up(shop, 1)
    shop.clock.advance(MINUTE_MS)
    await shop.payments.admin.refunded(topup)
    assert (await shop.invoice(invoice_id)).status == st.EXPIRED
    assert (await shop.subscription_end(1) or 0) <= shop.clock.now_ms()
    # and the first 20 refunded too: nothing is left on it and nothing left to decide
    await shop.payments.admin.refunded(first)
    assert (await shop.invoice(invoice_id)).status == st.EXPIRED
    assert invoice_id not in {i.id for i in (await shop.payments.admin.pending()).review_invoices}


async def test_a_refund_undone_by_confirming_again_restores_the_period(shop: Shop) -> None:
    a = await shop.buy(1)
    dep = shop.pay(a)
    await shop.poll()
    end_before = await shop.subscription_end(1)
    shop.clock.advance(HOUR_MS)
    await shop.payments.admin.refunded(dep)
    assert (await shop.invoice(a.id)).status == st.PENDING  # as before it was paid
    shop.clock.advance(HOUR_MS)
    await shop.payments.admin.confirm(a.id, force=True)  # it was not refunded after all
    assert await shop.subscription_end(1) == end_before


async def test_refunding_a_second_payment_leaves_what_the_admin_confirmed(shop: Shop) -> None:
    a = await shop.buy(1)
    shop.pay(a, "20")
    await shop.poll()
    await shop.payments.admin.confirm(a.id, force=True)  # the admin accepts 20 USDT
    end = await shop.subscription_end(1)
    second = shop.pay(a)  # the customer pays the whole amount again: a duplicate
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    await shop.payments.admin.refunded(second)  # given back: what a was paid with is unchanged
    assert (await shop.invoice(a.id)).status == st.PAID
    assert await shop.subscription_end(1) == end


# --- lower severity ------------------------------------------------------------------------------


async def test_an_exact_amount_too_early_for_its_invoice_is_judged_against_every_candidate(
    shop: Shop,
) -> None:
    fits = await shop.buy(2)
    shop.clock.advance(10 * MINUTE_MS)
    later = await shop.buy(1)
    # later's exact amount, but sent before later existed: it is not later's. Judged as an
    # inexact payment it is within fits' tolerance, and fits is its only candidate.
    shop.pay(later, to=EXCHANGE_HOT_WALLET, ts=fits.created_at + MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(fits.id)).status == st.PAID
    assert (await shop.invoice(later.id)).status == st.PENDING


async def test_a_payment_still_unconfirmed_when_its_window_ends_goes_to_an_admin(
    shop: Shop,
) -> None:
    settings = shop.payments.settings
    a = await shop.buy(1)
    dep = shop.pay(a, state="0")  # never confirmed
    await shop.poll()
    shop.clock.advance(settings.ttl_ms + settings.monitor_ms + MINUTE_MS)
    await shop.poll()
    await shop.payments.expire_due()
    ended = await shop.invoice(a.id)
    assert ended.status == st.EXPIRED  # no longer one of the customer's open invoices
    assert a.id in {i.id for i in (await shop.payments.admin.pending()).review_invoices}
    [alert] = await shop.messages("admin.payment_unsettled")
    assert alert["payload"]["invoice_id"] == a.id
    # OKX confirms it after all: it still pays
    shop.okx.set_deposit(dep, state="2")
    shop.clock.advance(MINUTE_MS)
    await shop.payments.poller.poll()
    assert (await shop.invoice(a.id)).status == st.PAID


async def test_an_invoice_whose_deposit_vanished_goes_to_an_admin(shop: Shop) -> None:
    a = await shop.buy(1)
    dep = shop.pay(a, state="0")
    await shop.poll()
    shop.okx.remove_deposit(dep)  # a reorg: OKX no longer has the record
    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert not (await shop.invoice(a.id)).frozen  # one miss could be OKX's hiccup
    shop.clock.advance(11 * MINUTE_MS)
    await shop.poll()
    frozen = await shop.invoice(a.id)
    assert frozen.frozen and frozen.status == st.PROCESSING
    assert a.id in {i.id for i in (await shop.payments.admin.pending()).review_invoices}
    assert [m["payload"]["reason"] for m in await shop.messages("admin.invoice_frozen")] == [
        "vanished"
    ]
    # frozen for an admin, it does not hold one of the customer's three open-invoice slots
    for network in ("ERC20", "BEP20", "SOL"):
        await shop.buy(1, network=network)


async def test_a_rejected_invoice_with_money_lists_the_money_to_return(shop: Shop) -> None:
    a = await shop.buy(1)
    shop.pay(a, "20")
    await shop.poll()
    await shop.payments.admin.reject(a.id)
    assert (await shop.invoice(a.id)).status == st.INVALID
    assert a.id in {i.id for i in (await shop.payments.admin.pending()).review_invoices}


class Ahead:
    """OKX's clock, 7 minutes ahead of this host's."""

    def __init__(self, host: ManualClock) -> None:
        self.host = host

    def now_ms(self) -> int:
        return self.host.now_ms() + 7 * MINUTE_MS


async def test_the_okx_clock_is_measured_before_the_first_invoice(db: Database) -> None:
    host = ManualClock()
    okx_time = Ahead(host)
    okx = FakeOkx(clock=okx_time).start()
    exchange = OkxExchange(
        okx.api_key,
        okx.secret,
        okx.passphrase,
        base_url=okx.base_url,
        clock=okx_time,
        throttle=False,
    )
    payments = Payments.wire(db, exchange, load_catalog(), PaymentSettings(), host)
    try:
        await payments.start_checks(allow_unsafe_key=False)
        invoice = await payments.invoices.create(1, "pro", "USDT", "TRC20")
        assert abs(invoice.created_at - okx_time.now_ms()) < 1_000
    finally:
        await exchange.close()
        okx.stop()


def test_amounts_below_a_millionth_are_written_in_fixed_point() -> None:
    assert format_amount(Decimal("0.00000001"), Decimal("0.00000001")) == "0.00000001"
    assert format_amount(Decimal("1E-7"), Decimal("0.0000001")) == "0.0000001"
    assert format_amount(Decimal(29), Decimal("0.0001")) == "29.0000"
