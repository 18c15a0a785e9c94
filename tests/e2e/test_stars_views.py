"""Telegram Stars where admins and customers look: /stats and /user after a Stars payment and
a refund, and the customer's /history listing both rails, newest first. The real bot against
the fake Bot API and the fake OKX, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from payments.clock import MINUTE_MS
from payments.storage.schema import star_payments
from tests.botkit import ADMIN, BotWorld, Customer, address_of, amount_of, invoice_id_of
from tests.conftest import backends
from tests.e2e.test_stars import QUARTER_STARS, now_s, paid, stars_world, subscribe


async def buy_quarter_in_stars(world: BotWorld, customer: Customer) -> None:
    """/start -> Quarter -> ⭐: a one-off invoice message, paid."""
    await customer.send("/start")
    await customer.press("Quarter", expect="Which coin")
    await customer.press("Telegram Stars")
    await world.tg.wait_for(lambda: world.tg.invoices(customer.id), 15, "the invoice")
    [issued] = world.tg.invoices(customer.id)
    assert issued.message is not None
    payment = await paid(world, world.tg.pay(customer.id, issued.message, now_s=now_s(world)))
    assert payment.outcome == "paid", payment.outcome
    await customer.wait_text(f"Payment received: {QUARTER_STARS} Stars", timeout=15)


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


@pytest.mark.parametrize("backend", backends())
async def test_stats_user_and_history_show_stars_beside_crypto_before_and_after_a_refund(
    tmp_path: Path, backend: str
) -> None:
    async with stars_world(tmp_path, backend) as world, world.running():
        alice, bob, admin = world.customer(6801), world.customer(6802), world.customer(ADMIN)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo))
        await alice.wait_text("Payment received for invoice", timeout=15)
        world.clock.advance(MINUTE_MS)  # the Stars payment comes after the crypto invoice
        await subscribe(world, alice)
        await alice.wait_text("Payment received: 1500 Stars", timeout=15)
        await buy_quarter_in_stars(world, bob)
        [alices] = [r for r in await world.rows(star_payments) if r["customer_id"] == alice.id]

        history = (await alice.send("/history", expect="recent invoices")).plain
        lines = history.splitlines()
        stars_line = line_with(history, alices["id"])
        crypto_line = line_with(history, invoice_id_of(photo))
        assert stars_line.endswith("· Pro · ⭐ 1500 Stars · paid"), stars_line
        assert crypto_line.endswith("· paid") and "USDT" in crypto_line
        assert lines.index(stars_line) < lines.index(crypto_line)  # newest first
        assert QUARTER_STARS not in {int(w) for w in history.split() if w.isdigit()}  # Bob's

        report = (await admin.send("/stats", expect="Stats")).plain
        stars = "Telegram Stars: 2 paid, 5500 Stars received, 0 refunded (0 Stars), 5500 Stars kept"
        assert report.count(stars) == 2, report  # the last 24 h and 30 days
        assert "Last 24h: 1 paid, $29.00" in report, report  # crypto counts crypto only

        overview = (await admin.send(f"/user {alice.id}", expect="Customer")).plain
        assert "Telegram Stars" in overview, overview
        assert (
            f"Telegram renews Pro every 30 days for 1500 Stars (order {alices['invoice_id']})"
            in (overview)
        )
        line = line_with(overview, alices["id"])
        assert "· Pro · ⭐ 1500 ·" in line and "refunded" not in line and "renewal" not in line
        assert invoice_id_of(photo) in overview  # the crypto invoice is still listed

        await admin.send(f"/refund {alices['id']}", expect="Refunded")
        await alice.wait_text("were refunded", timeout=15)

        report = (await admin.send("/stats", expect="Stats")).plain
        after = "2 paid, 5500 Stars received, 1 refunded (1500 Stars), 4000 Stars kept"
        assert report.count(after) == 2, report
        overview = (await admin.send(f"/user {alice.id}", expect="Customer")).plain
        assert "Renewal of Pro is off" in overview and "Telegram renews" not in overview
        assert "· refunded " in line_with(overview, alices["id"])
        history = (await alice.send("/history", expect="recent invoices")).plain
        assert line_with(history, alices["id"]).endswith("⭐ 1500 Stars · refunded")

        bobs = (await admin.send(f"/user {bob.id}", expect="Customer")).plain
        assert "⭐ 4000" in bobs and "Telegram renews" not in bobs  # a one-off: nothing renews
