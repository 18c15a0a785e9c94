"""The minute cycle: OKX trouble never raises, admins are told once per outage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from payments import states as st
from payments.clock import HOUR_MS, MINUTE_MS
from payments.deposits.cycle import PaymentCycle
from payments.errors import CryptoUnavailable
from payments.storage import Database
from tests.shop import Shop, open_shop


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


async def test_an_outage_is_told_once_and_its_end_once(shop: Shop) -> None:
    cycle = PaymentCycle(shop.payments)
    invoice = await shop.buy(1)
    shop.pay(invoice)
    shop.okx.fail_rate(1.0, ("server_error", "rate_limit"))
    for _ in range(12):  # twelve minutes of failed polls
        report = await cycle.run()
        assert report.poll is None and report.error
        shop.clock.advance(MINUTE_MS)
    assert len(await shop.messages("admin.okx_unreachable")) == 1
    assert (await shop.invoice(invoice.id)).status == st.PENDING

    shop.okx.clear_faults()
    report = await cycle.run()
    assert report.error is None and report.poll is not None
    assert (await shop.invoice(invoice.id)).status == st.PAID
    await cycle.run()
    assert len(await shop.messages("admin.okx_recovered")) == 1


async def test_a_short_blip_is_not_worth_a_message(shop: Shop) -> None:
    cycle = PaymentCycle(shop.payments)
    shop.okx.fail_next(2, "timeout")
    await cycle.run()
    await cycle.run()
    shop.clock.advance(MINUTE_MS)
    await cycle.run()
    assert await shop.messages("admin.okx_unreachable") == []
    assert await shop.messages("admin.okx_recovered") == []


async def test_a_refused_key_is_told_at_once_and_only_once(shop: Shop) -> None:
    cycle = PaymentCycle(shop.payments)
    shop.okx.secret = "rotated-on-okx"  # the merchant deleted or changed the key
    for _ in range(3):
        report = await cycle.run()
        assert report.poll is None
        shop.clock.advance(MINUTE_MS)
    [alert] = await shop.messages("admin.okx_auth_failed")
    assert "rotated-on-okx" not in alert["payload"]["error"]


async def test_an_outage_that_turns_into_a_refused_key_is_told_again(shop: Shop) -> None:
    cycle = PaymentCycle(shop.payments)
    shop.okx.fail_rate(1.0, ("server_error",))
    for _ in range(7):
        await cycle.run()
        shop.clock.advance(MINUTE_MS)
    assert len(await shop.messages("admin.okx_unreachable")) == 1
    shop.okx.clear_faults()
    shop.okx.secret = "rotated-on-okx"  # OKX is back, but the key no longer works
    for _ in range(3):
        await cycle.run()
        shop.clock.advance(MINUTE_MS)
    assert len(await shop.messages("admin.okx_auth_failed")) == 1
    assert len(await shop.messages("admin.okx_unreachable")) == 1


async def test_invoices_still_expire_while_okx_is_down_only_after_a_completed_poll(
    shop: Shop,
) -> None:
    cycle = PaymentCycle(shop.payments)
    invoice = await shop.buy(1)
    await cycle.run()
    shop.clock.advance(3 * HOUR_MS)
    shop.okx.fail_rate(1.0, ("server_error",))
    assert (await cycle.run()).expired == 0  # no completed poll after the expiry: wait
    shop.okx.clear_faults()
    assert (await cycle.run()).expired == 1
    assert (await shop.invoice(invoice.id)).status == st.EXPIRED


async def test_while_okx_refuses_the_key_no_crypto_invoice_is_made_until_it_accepts_it(
    shop: Shop,
) -> None:
    cycle = PaymentCycle(shop.payments)
    await shop.buy(1)  # the key works: invoices are made
    shop.okx.secret, secret = "rotated-on-okx", shop.okx.secret  # the key stops working
    await cycle.run()
    with pytest.raises(CryptoUnavailable):
        await shop.buy(2)
    with pytest.raises(CryptoUnavailable):  # nor is an open one handed back: it cannot be matched
        await shop.buy(1)
    assert len(await shop.messages("admin.okx_auth_failed")) == 1
    shop.okx.secret = secret  # the merchant fixed the key on OKX
    await cycle.run()
    assert (await shop.buy(2)).status == st.PENDING
    assert len(await shop.messages("admin.okx_recovered")) == 1


async def test_a_key_check_that_okx_answers_is_remembered(shop: Shop) -> None:
    """A later start that finds the key refused knows it worked once: an outage, not a setting
    (a database whose key never passed is tested at start-up: tests/e2e/test_main.py)."""
    assert await shop.payments.key_ever_accepted() is True  # open_shop ran the start-up checks
