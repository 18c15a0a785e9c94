"""Telegram Stars end to end: the real bot against the fake Bot API (which plays Telegram's
payment side: invoices, pre-checkout with its 10-second deadline, charges, renewals every 30
days, refunds and the Stars ledger). What the customer and the admins read is asserted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.jobs import STARS_LEDGER
from bot.services import BotApplication
from fakes.telegram_stars import Payment
from payments.catalog import default_plans_path
from payments.clock import DAY_MS, MINUTE_MS
from payments.storage.schema import star_payments, subscription_periods
from tests.botkit import ADMIN, BotWorld, Customer
from tests.conftest import backends

CLUB = -1001999000111
PRO_STARS, QUARTER_STARS = 1500, 4000
MONTH_S = 2_592_000


def stars_plans(tmp_path: Path, pro_stars: int = PRO_STARS, name: str = "plans.toml") -> Path:
    """The bundled plans, Pro (30 days, a paid chat) also for Stars, and a 90-day Quarter sold
    for Stars as a one-off payment."""
    text = default_plans_path().read_text(encoding="utf-8")
    text = text.replace('id = "pro"\n', f'id = "pro"\nstars = {pro_stars}\nchats = [{CLUB}]\n', 1)
    text = text.replace(
        "[[coins]]",
        '[[plans]]\nid = "quarter"\nname = "Quarter"\nprice_usd = "79"\ndays = 90\n'
        f"stars = {QUARTER_STARS}\n\n[[coins]]",
        1,
    )
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@asynccontextmanager
async def stars_world(tmp_path: Path, backend: str = "sqlite") -> AsyncIterator[BotWorld]:
    env = {"PLANS_FILE": str(stars_plans(tmp_path))}
    async with BotWorld.open(tmp_path, env=env, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        yield world


def now_s(world: BotWorld) -> float:
    return world.clock.now_ms() / 1000


async def paid(world: BotWorld, payment: Payment) -> Payment:
    await world.tg.wait_for(payment.done.is_set, 15, "the payment to be decided")
    return payment


async def subscribe(world: BotWorld, customer: Customer) -> Payment:
    """/start -> Pro -> ⭐: the pay link (a 30-day subscription), paid at the bot's now."""
    welcome = await customer.send("/start")
    assert "in crypto straight to the shop's OKX account, or with Telegram Stars" in welcome.plain
    await customer.press("Pro", expect="Which coin")
    offer = await customer.press("Telegram Stars", expect="every 30 days")
    [(label, link)] = [(b.text, b.url) for row in offer_rows(offer) for b in row]
    assert label == f"Pay ⭐ {PRO_STARS}" and link is not None
    [issued] = [i for i in world.tg.invoice_links() if i.link == link]
    assert (issued.currency, issued.amount, issued.subscription_period) == (
        "XTR",
        PRO_STARS,
        MONTH_S,
    )
    payment = await paid(world, world.tg.pay(customer.id, link, now_s=now_s(world)))
    assert payment.outcome == "paid", payment.outcome
    return payment


def offer_rows(message: Any) -> list[list[Any]]:
    markup = message.reply_markup or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    return [[_Button(b) for b in row] for row in rows]


class _Button:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.text: str = raw.get("text", "")
        self.url: str | None = raw.get("url")


async def run_ledger(application: BotApplication) -> None:
    """One run of the Stars ledger job now, as the job queue runs it."""
    assert application.job_queue is not None
    [job] = application.job_queue.get_jobs_by_name(STARS_LEDGER)
    await job.run(application)


def day(world: BotWorld, ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


@pytest.mark.parametrize("backend", backends())
async def test_a_stars_subscription_renews_once_and_a_failed_renewal_lets_it_end(
    tmp_path: Path, backend: str
) -> None:
    async with stars_world(tmp_path, backend) as world, world.running():
        alice = world.customer(6101)
        start = world.clock.now_ms()
        payment = await subscribe(world, alice)
        first = await alice.wait_text("Payment received: 1500 Stars")
        assert f"Pro is active until {day(world, start + 30 * DAY_MS)}" in first.plain
        assert "turn that off any time in /status" in first.plain
        await world.tg.wait_for(
            lambda: any("Paid in Stars" in m.plain for m in world.tg.bot_messages(ADMIN)),
            15,
            "the admins' alert",
        )
        link_message = await alice.wait_text("Join with this link", timeout=15)
        link = link_message.plain.split()[-1]
        assert world.tg.join_by_link(alice.id, link) == "joined"
        await world.settled()  # the bot saw the join before time moves on

        world.clock.advance(27 * DAY_MS)  # no "renew now" for a subscription Telegram renews
        await asyncio.sleep(1)  # several runs of the subscriptions job
        await world.settled()
        assert alice.count("ends on") == 0
        world.clock.advance(3 * DAY_MS + 10 * MINUTE_MS)  # Telegram's charge is a moment late
        await asyncio.sleep(1)
        await world.settled()
        assert alice.id in world.tg.members(CLUB) and alice.count("has ended") == 0
        [renewal] = world.tg.charge_renewals(now_s(world))
        renewed = await alice.wait_text("Pro renewed (1500 Stars)", timeout=15)
        assert day(world, start + 60 * DAY_MS) in renewed.plain
        # the same update delivered again: nothing more
        assert renewal.charge_id is not None and payment.charge_id != renewal.charge_id
        world.tg.add_update(successful_payment(world, alice, renewal))
        await world.settled()
        assert alice.count("Pro renewed (") == 1
        assert len([p for p in await world.rows(subscription_periods)]) == 2

        world.tg.fail_renewal(alice.id)
        world.clock.advance(30 * DAY_MS)
        assert world.tg.charge_renewals(now_s(world)) == []
        await asyncio.sleep(1)
        await world.settled()
        assert alice.count("has ended") == 0  # the renewal may still come, for a day
        world.clock.advance(DAY_MS)
        await alice.wait_text("subscription has ended", timeout=15)
        await alice.wait_text("so you were removed from", timeout=15)
        assert alice.id not in world.tg.members(CLUB)


def successful_payment(world: BotWorld, customer: Customer, payment: Payment) -> dict[str, Any]:
    """The ``successful_payment`` update of ``payment`` as Telegram would send it again."""
    user = {"id": customer.id, "is_bot": False, "first_name": f"User{customer.id}"}
    chat = {"id": customer.id, "type": "private", "first_name": user["first_name"]}
    paid_at = int(payment.date or now_s(world))
    details: dict[str, Any] = {
        "currency": "XTR",
        "total_amount": payment.total_amount,
        "invoice_payload": payment.invoice_payload,
        "telegram_payment_charge_id": payment.charge_id,
        "provider_payment_charge_id": "",
    }
    if payment.subscription_period:
        details |= {"is_recurring": True, "subscription_expiration_date": paid_at + MONTH_S}
    message = {"message_id": 900_000 + paid_at % 1000, "date": paid_at, "chat": chat}
    return {"message": message | {"from": user, "successful_payment": details}}


@pytest.mark.parametrize("backend", backends())
async def test_renewal_off_and_on_and_an_admin_refund_takes_the_time_back_once(
    tmp_path: Path, backend: str
) -> None:
    async with stars_world(tmp_path, backend) as world, world.running():
        alice, admin = world.customer(6201), world.customer(ADMIN)
        await subscribe(world, alice)
        await alice.wait_text("Payment received: 1500 Stars")

        status = await alice.send("/status", expect="Telegram renews")
        assert "Telegram renews Pro every 30 days for 1500 Stars" in status.plain
        stopped = await alice.press("Stop renewing Pro", expect="Renewal of Pro is off")
        assert "stays active until" in stopped.plain
        [sub] = world.tg.subscriptions(alice.id)
        assert not sub.renewal_on
        status = await alice.send("/status", expect="Renewal of Pro is off")
        await alice.press("Renew Pro again", expect="renew Pro every 30 days again")
        [sub] = world.tg.subscriptions(alice.id)
        assert sub.renewal_on

        [row] = await world.rows(star_payments)
        done = await admin.send(f"/refund {row['invoice_id']}", expect="Refunded")
        assert f"Refunded 1500 Stars of payment {row['id']} to customer {alice.id}" in done.plain
        await alice.wait_text("were refunded", timeout=15)
        again = await admin.send(f"/refund {row['id']}", expect="refunded already")
        assert "Nothing changed" in again.plain
        assert "no active subscription" in (await alice.send("/status")).plain
        [sub] = world.tg.subscriptions(alice.id)
        assert not sub.renewal_on  # Telegram stops renewing a refunded subscription
        unknown = await admin.send("/refund NOPE1234", expect="No Telegram Stars payment")
        assert "Nothing changed" in unknown.plain
        assert "for the shop's admins" in (await alice.send("/refund x")).plain


@pytest.mark.parametrize("backend", backends())
async def test_a_payment_whose_update_was_lost_is_credited_by_the_ledger_once(
    tmp_path: Path, backend: str
) -> None:
    async with stars_world(tmp_path, backend) as world, world.running() as application:
        alice, admin = world.customer(6301), world.customer(ADMIN)
        await alice.send("/start")
        await alice.press("Quarter", expect="Which coin")
        await alice.press("Telegram Stars")
        await world.tg.wait_for(lambda: world.tg.invoices(alice.id), 15, "the invoice")
        [issued] = world.tg.invoices(alice.id)
        assert (issued.amount, issued.subscription_period) == (QUARTER_STARS, None)
        assert issued.message is not None
        payment = await paid(
            world, world.tg.pay(alice.id, issued.message, lose_update=True, now_s=now_s(world))
        )
        assert payment.outcome == "paid"
        await world.settled()
        assert alice.count("Payment received") == 0  # the update never came

        world.clock.advance(2 * MINUTE_MS)
        await run_ledger(application)
        got = await alice.wait_text("Payment received: 4000 Stars", timeout=15)
        assert "Quarter is active until" in got.plain
        await run_ledger(application)
        world.tg.add_update(successful_payment(world, alice, payment))  # it arrives after all
        await world.settled()
        await world.tg.wait_idle(5)
        assert alice.count("Payment received") == 1
        assert len(await world.rows(subscription_periods)) == 1

        # refunded by Telegram's support: the ledger says so, the time goes back
        assert payment.charge_id is not None
        world.tg.refund_elsewhere(payment.charge_id, now_s=now_s(world))
        world.clock.advance(MINUTE_MS)
        await run_ledger(application)
        await alice.wait_text("were refunded", timeout=15)
        [row] = await world.rows(star_payments)
        assert row["refund_source"] == "telegram"
        again = await admin.send(f"/refund {row['id']}", expect="refunded already")
        assert "Nothing changed" in again.plain


async def test_a_stale_or_foreign_invoice_is_refused_at_pre_checkout_in_time(
    tmp_path: Path,
) -> None:
    async with stars_world(tmp_path) as world, world.running():
        alice, mallory = world.customer(6401), world.customer(6402)
        await alice.send("/start")
        await alice.press("Pro", expect="Which coin")
        offer = await alice.press("Telegram Stars", expect="every 30 days")
        [[button]] = offer_rows(offer)
        assert button.url is not None

        theirs = await paid(world, world.tg.pay(mallory.id, button.url))
        assert str(theirs.outcome).startswith("refused: This invoice was made for someone else")
        assert theirs.answered_in_s is not None and theirs.answered_in_s < 10

        world.clock.advance(121 * MINUTE_MS)  # past the invoice's two hours
        stale = await paid(world, world.tg.pay(alice.id, button.url))
        assert str(stale.outcome).startswith("refused: This invoice has expired")
        await world.settled()
        assert alice.count("Payment received") == 0 and mallory.count("Payment received") == 0


async def test_an_invoice_repriced_since_is_refused_and_a_fresh_one_goes_through(
    tmp_path: Path,
) -> None:
    async with stars_world(tmp_path) as world:
        alice = world.customer(6501)
        async with world.running():
            await alice.send("/start")
            await alice.press("Pro", expect="Which coin")
            offer = await alice.press("Telegram Stars", expect="every 30 days")
            [[old]] = offer_rows(offer)
        world.env["PLANS_FILE"] = str(stars_plans(tmp_path, pro_stars=1800, name="repriced.toml"))
        async with world.running():
            assert old.url is not None
            refused = await paid(world, world.tg.pay(alice.id, old.url))
            assert str(refused.outcome).startswith("refused: The price has changed")
            payment = await subscribe_at(world, alice, 1800)
            assert payment.outcome == "paid"
            await alice.wait_text("Payment received: 1800 Stars", timeout=15)


async def subscribe_at(world: BotWorld, customer: Customer, stars: int) -> Payment:
    await customer.send("/start")
    await customer.press("Pro", expect="Which coin")
    offer = await customer.press("Telegram Stars", expect=f"⭐ {stars} every 30 days")
    [[button]] = offer_rows(offer)
    assert button.url is not None
    return await paid(world, world.tg.pay(customer.id, button.url, now_s=now_s(world)))
