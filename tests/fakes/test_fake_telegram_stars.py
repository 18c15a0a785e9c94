"""Telegram Stars in the fake Bot API, through PTB's Bot: invoices, pre-checkout queries,
payments, subscriptions and their renewals, refunds and the Star ledger."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    TransactionPartnerUser,
    Update,
)
from telegram.error import BadRequest, RetryAfter, TelegramError

from fakes.telegram import FakeTelegram
from fakes.telegram_stars import Payment
from fakes.telegram_state import ChatMessage

ALICE, BOB = 4242, 4343
MONTH = 2_592_000
T0 = 2_000_000_000  # a payment's date, far from the wall clock
TOO_OLD = "Query is too old and response timeout expired or query id is invalid"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(hang_s=0.3) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as b:
        yield b


async def updates(bot: Bot) -> tuple[Update, ...]:
    """Every pending update (confirmed), as PTB parses them."""
    got = await bot.get_updates(timeout=0)
    if got:
        await bot.get_updates(offset=got[-1].update_id + 1, timeout=0)
    return got


async def decided(payment: Payment) -> Payment:
    assert await asyncio.to_thread(payment.done.wait, 5), "the payment was never decided"
    return payment


async def paid(
    fake: FakeTelegram,
    bot: Bot,
    user_id: int,
    invoice: ChatMessage | str,
    *,
    lose_update: bool = False,
    now_s: float | None = None,
) -> Payment:
    """``user_id`` pays and the bot says yes at once (the pre-checkout query is consumed)."""
    payment = fake.pay(user_id, invoice, lose_update=lose_update, now_s=now_s)
    [update] = await updates(bot)
    assert update.pre_checkout_query is not None
    assert await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
    await decided(payment)
    assert payment.outcome == "paid"
    return payment


async def plan_link(bot: Bot, stars: int = 250, payload: str = "sub-1") -> str:
    prices = [LabeledPrice("Gold, 30 days", stars)]
    return await bot.create_invoice_link(
        "Gold", "30 days of Gold", payload, "XTR", prices, subscription_period=MONTH
    )


def raw_call(fake: FakeTelegram, method: str, **params: str) -> tuple[int, dict[str, object]]:
    """A form-encoded call made by hand (for input PTB would never send)."""
    data = urllib.parse.urlencode(params).encode()
    url = f"{fake.base_url}{fake.token}/{method}"
    try:
        with urllib.request.urlopen(url, data, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- issuing invoices -------------------------------------------------------------------------


async def test_send_invoice_is_a_message_with_the_invoice(fake: FakeTelegram, bot: Bot) -> None:
    pay = InlineKeyboardMarkup([[InlineKeyboardButton("Pay ⭐250", pay=True)]])
    prices = [LabeledPrice("Gold", 250)]
    message = await bot.send_invoice(
        ALICE, "Gold", "30 days of Gold", "inv-1", "XTR", prices, reply_markup=pay
    )
    assert message.invoice is not None and message.chat.id == ALICE
    invoice = message.invoice
    assert (invoice.title, invoice.description, invoice.start_parameter) == (
        "Gold",
        "30 days of Gold",
        "",
    )
    assert (invoice.currency, invoice.total_amount) == ("XTR", 250)
    [issued] = fake.invoices(ALICE)
    assert (issued.payload, issued.amount, issued.currency) == ("inv-1", 250, "XTR")
    assert issued.subscription_period is None and issued.link is None
    assert issued.message is not None and issued.message.message_id == message.message_id
    assert fake.invoices(BOB) == [] and fake.invoice_links() == []


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"prices": [LabeledPrice("a", 1), LabeledPrice("b", 2)]}, "STARS_INVOICE_INVALID"),
        ({"prices": [LabeledPrice("a", 0)]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"payload": "p" * 129}, "INVOICE_PAYLOAD_INVALID"),
        ({"title": "t" * 33}, "TITLE_INVALID"),
        ({"currency": "USD"}, "PAYMENT_PROVIDER_INVALID"),
        ({"api_kwargs": {"subscription_period": MONTH}}, "subscription_period"),
        (
            {"reply_markup": InlineKeyboardMarkup([[InlineKeyboardButton("x", "data")]])},
            "REPLY_MARKUP_BUY_EMPTY",
        ),
    ],
)
async def test_send_invoice_refuses_what_telegram_refuses(
    fake: FakeTelegram, bot: Bot, change: dict[str, object], description: str
) -> None:
    args: dict[str, object] = {"title": "Gold", "description": "30 days", "payload": "inv-1"}
    args |= {"currency": "XTR", "prices": [LabeledPrice("Gold", 250)]} | change
    with pytest.raises(BadRequest, match=rf"(?i){description}"):
        await bot.send_invoice(ALICE, **args)  # type: ignore[arg-type]
    assert fake.invoices() == [] and fake.bot_messages(ALICE) == []


async def test_prices_that_are_not_json_are_refused(fake: FakeTelegram) -> None:
    status, body = raw_call(
        fake,
        "sendInvoice",
        chat_id=str(ALICE),
        title="Gold",
        description="30 days",
        payload="inv-1",
        currency="XTR",
        prices="[{not json",
    )
    assert status == 400
    assert body["description"] == "Bad Request: can't parse prices JSON object"


async def test_invoice_links_with_and_without_a_subscription_period(
    fake: FakeTelegram, bot: Bot
) -> None:
    once = await bot.create_invoice_link(
        "Gold", "30 days of Gold", "inv-2", "XTR", [LabeledPrice("Gold", 300)]
    )
    monthly = await plan_link(bot, 250)
    every_30_days = await bot.create_invoice_link(
        "Gold",
        "30 days",
        "sub-2",
        "XTR",
        [LabeledPrice("Gold", 250)],
        subscription_period=dt.timedelta(days=30),
    )
    assert all(link.startswith("https://t.me/$") for link in (once, monthly, every_30_days))
    assert len({once, monthly, every_30_days}) == 3
    links = fake.invoice_links()
    assert [(i.link, i.payload, i.amount, i.subscription_period) for i in links] == [
        (once, "inv-2", 300, None),
        (monthly, "sub-1", 250, MONTH),
        (every_30_days, "sub-2", 250, MONTH),
    ]
    assert fake.invoices() == []
    with pytest.raises(BadRequest, match=r"(?i)SUBSCRIPTION_PERIOD_INVALID"):
        await bot.create_invoice_link(
            "Gold", "1 day", "sub-3", "XTR", [LabeledPrice("Gold", 9)], subscription_period=86400
        )
    with pytest.raises(BadRequest, match=r"(?i)CURRENCY_TOTAL_AMOUNT_INVALID"):
        await plan_link(bot, 10_001)  # above a subscription's ceiling, fine once
    await bot.create_invoice_link("Gold", "once", "inv-3", "XTR", [LabeledPrice("Gold", 10_001)])
    assert len(fake.invoice_links()) == 4


# --- paying -----------------------------------------------------------------------------------


async def test_a_payment_the_bot_accepts_arrives_as_successful_payment(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.user(ALICE, "Alice")
    message = await bot.send_invoice(
        ALICE, "Gold", "30 days", "inv-1", "XTR", [LabeledPrice("Gold", 250)]
    )
    [issued] = fake.invoices(ALICE)
    assert issued.message is not None and issued.message.message_id == message.message_id
    payment = fake.pay(ALICE, issued.message, now_s=T0)
    assert not payment.done.is_set()
    [update] = await updates(bot)
    query = update.pre_checkout_query
    assert query is not None and query.from_user.id == ALICE
    assert (query.currency, query.total_amount, query.invoice_payload) == ("XTR", 250, "inv-1")
    assert query.id == payment.query_id
    assert await bot.answer_pre_checkout_query(query.id, ok=True)
    await decided(payment)
    assert payment.outcome == "paid" and payment.charge_id and payment.date == T0
    assert payment.answered_in_s is not None and 0 <= payment.answered_in_s < 5
    [update] = await updates(bot)
    assert update.message is not None and update.message.from_user is not None
    assert update.message.chat.id == ALICE and update.message.from_user.id == ALICE
    assert update.update_id == payment.update_id
    got = update.message.successful_payment
    assert got is not None
    assert (got.currency, got.total_amount, got.invoice_payload) == ("XTR", 250, "inv-1")
    assert got.telegram_payment_charge_id == payment.charge_id
    assert got.provider_payment_charge_id == ""
    assert got.is_recurring is None and got.subscription_expiration_date is None
    [tx] = fake.star_transactions()
    assert tx["id"] == payment.charge_id and (tx["amount"], tx["date"]) == (250, T0)
    assert tx["source"]["user"]["id"] == ALICE and tx["source"]["invoice_payload"] == "inv-1"
    assert "receiver" not in tx and "subscription_period" not in tx["source"]
    with pytest.raises(BadRequest, match=TOO_OLD):  # answered once already
        await bot.answer_pre_checkout_query(query.id, ok=True)
    second = await paid(fake, bot, BOB, issued.message)  # another user, another charge
    assert second.charge_id != payment.charge_id


async def test_a_refused_payment_charges_nothing(fake: FakeTelegram, bot: Bot) -> None:
    link = await bot.create_invoice_link(
        "Gold", "30 days", "inv-1", "XTR", [LabeledPrice("Gold", 250)]
    )
    payment = fake.pay(ALICE, link)
    [update] = await updates(bot)
    assert update.pre_checkout_query is not None
    query_id = update.pre_checkout_query.id
    status, body = raw_call(
        fake, "answerPreCheckoutQuery", pre_checkout_query_id=query_id, ok="false"
    )
    assert status == 400 and body["description"] == "Bad Request: ERROR_MESSAGE_EMPTY"
    assert not payment.done.is_set()  # a refused answer leaves the query open
    assert await bot.answer_pre_checkout_query(query_id, ok=False, error_message="Sold out")
    await decided(payment)
    assert payment.outcome == "refused: Sold out" and payment.charge_id is None
    assert payment.answered_in_s is not None
    assert await updates(bot) == () and fake.star_transactions() == []


async def test_an_unanswered_query_times_out_and_a_late_answer_is_refused(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.precheckout_deadline_s = 0.3
    link = await bot.create_invoice_link(
        "Gold", "30 days", "inv-1", "XTR", [LabeledPrice("Gold", 250)]
    )
    payment = fake.pay(ALICE, link)
    [update] = await updates(bot)
    assert update.pre_checkout_query is not None
    await decided(payment)
    assert payment.outcome == "timed out" and payment.charge_id is None
    with pytest.raises(BadRequest, match=TOO_OLD):
        await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
    assert payment.outcome == "timed out" and payment.answered_in_s is None
    assert await updates(bot) == () and fake.star_transactions() == []


async def test_an_answer_held_past_the_deadline_is_too_late(fake: FakeTelegram, bot: Bot) -> None:
    fake.precheckout_deadline_s = 0.3
    link = await bot.create_invoice_link("Gold", "d", "inv-1", "XTR", [LabeledPrice("G", 5)])
    payment = fake.pay(ALICE, link)
    [update] = await updates(bot)
    assert update.pre_checkout_query is not None
    hold = fake.hold_next("answerPreCheckoutQuery")
    answering = asyncio.create_task(
        bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
    )
    assert await asyncio.to_thread(hold.taken.wait, 5)
    await decided(payment)  # the deadline passes while the answer is held
    hold.release()
    with pytest.raises(BadRequest, match=TOO_OLD):
        await answering
    assert payment.outcome == "timed out" and fake.star_transactions() == []


async def test_a_lost_update_still_charges_the_user(fake: FakeTelegram, bot: Bot) -> None:
    link = await bot.create_invoice_link("Gold", "d", "inv-1", "XTR", [LabeledPrice("G", 70)])
    payment = await paid(fake, bot, ALICE, link, lose_update=True)
    assert payment.charge_id and payment.update_id is None
    assert await updates(bot) == ()
    assert [tx["id"] for tx in fake.star_transactions()] == [payment.charge_id]


async def test_a_fault_on_the_answer_leaves_the_query_open_for_a_retry(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # else reading retry_after warns (an error here)
    fake.fail_next("sendInvoice", "429")
    with pytest.raises(RetryAfter):
        await bot.send_invoice(ALICE, "Gold", "d", "inv-1", "XTR", [LabeledPrice("G", 5)])
    assert fake.invoices() == []
    await bot.send_invoice(ALICE, "Gold", "d", "inv-1", "XTR", [LabeledPrice("G", 5)])
    [issued] = fake.invoices(ALICE)
    assert issued.message is not None
    payment = fake.pay(ALICE, issued.message)
    [update] = await updates(bot)
    assert update.pre_checkout_query is not None
    fake.fail_next("answerPreCheckoutQuery", "500")
    with pytest.raises(TelegramError):
        await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
    assert not payment.done.is_set()
    assert await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
    assert (await decided(payment)).outcome == "paid"
    assert fake.faults_injected["500"] == 1 and fake.faults_injected["429"] == 1


# --- subscriptions ----------------------------------------------------------------------------


async def test_a_subscription_renews_every_30_days(fake: FakeTelegram, bot: Bot) -> None:
    link = await plan_link(bot, 250)
    first = fake.pay(ALICE, link, now_s=T0)
    [update] = await updates(bot)
    assert update.pre_checkout_query is not None
    await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)
    await decided(first)
    [update] = await updates(bot)
    got = update.message.successful_payment if update.message else None
    assert got is not None and got.telegram_payment_charge_id == first.charge_id
    assert got.is_recurring is True and got.is_first_recurring is True
    assert got.subscription_expiration_date == dt.datetime.fromtimestamp(T0 + MONTH, dt.UTC)
    [sub] = fake.subscriptions(ALICE)
    assert (sub.charge_ids, sub.expiration_date) == ([first.charge_id], T0 + MONTH)
    assert sub.renewal_on and not sub.ended and sub.link == link

    assert fake.charge_renewals(T0 + MONTH - 1) == []
    [renewal] = fake.charge_renewals(T0 + MONTH)
    assert renewal.outcome == "paid" and renewal.done.is_set() and renewal.date == T0 + MONTH
    assert renewal.charge_id not in (None, first.charge_id)
    [update] = await updates(bot)
    got = update.message.successful_payment if update.message else None
    assert got is not None and got.telegram_payment_charge_id == renewal.charge_id
    assert got.is_recurring is True and not got.is_first_recurring
    assert got.subscription_expiration_date == dt.datetime.fromtimestamp(T0 + 2 * MONTH, dt.UTC)
    assert got.invoice_payload == "sub-1" and got.total_amount == 250
    [sub] = fake.subscriptions(ALICE)
    assert sub.charge_ids == [first.charge_id, renewal.charge_id]
    newest_first = (await bot.get_star_transactions()).transactions
    assert [t.id for t in newest_first] == [renewal.charge_id, first.charge_id]
    source = newest_first[0].source
    assert isinstance(source, TransactionPartnerUser)
    assert source.subscription_period == dt.timedelta(seconds=MONTH)

    fake.fail_renewal(ALICE)  # not enough Stars: the subscription ends silently
    assert fake.charge_renewals(T0 + 5 * MONTH) == []
    [sub] = fake.subscriptions(ALICE)
    assert sub.ended and not sub.renewal_on and len(sub.charge_ids) == 2
    assert await updates(bot) == () and len(fake.star_transactions()) == 2
    with pytest.raises(BadRequest, match=r"(?i)SUBSCRIPTION_EXPIRED"):
        await bot.edit_user_star_subscription(ALICE, renewal.charge_id, is_canceled=False)


async def test_canceling_stops_renewals_and_resuming_restarts_them(
    fake: FakeTelegram, bot: Bot
) -> None:
    first = await paid(fake, bot, ALICE, await plan_link(bot), now_s=T0)
    await updates(bot)
    assert first.charge_id is not None
    assert await bot.edit_user_star_subscription(ALICE, first.charge_id, is_canceled=True)
    assert not fake.subscriptions(ALICE)[0].renewal_on
    assert fake.charge_renewals(T0 + MONTH - 1) == []
    assert await bot.edit_user_star_subscription(ALICE, first.charge_id, is_canceled=False)
    [renewal] = fake.charge_renewals(T0 + MONTH)
    assert fake.subscriptions(ALICE)[0].charge_ids == [first.charge_id, renewal.charge_id]

    assert renewal.charge_id is not None  # any charge of it names the subscription
    assert await bot.edit_user_star_subscription(ALICE, renewal.charge_id, is_canceled=True)
    assert fake.charge_renewals(T0 + 2 * MONTH) == []
    [sub] = fake.subscriptions(ALICE)
    assert sub.ended and len(sub.charge_ids) == 2
    with pytest.raises(BadRequest, match=r"(?i)SUBSCRIPTION_EXPIRED"):
        await bot.edit_user_star_subscription(ALICE, first.charge_id, is_canceled=False)
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ID_INVALID"):
        await bot.edit_user_star_subscription(BOB, first.charge_id, is_canceled=True)
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ID_INVALID"):
        await bot.edit_user_star_subscription(ALICE, "stxNoSuchCharge", is_canceled=True)


# --- refunds and the ledger -------------------------------------------------------------------


async def test_a_refund_goes_through_once(fake: FakeTelegram, bot: Bot) -> None:
    first = await paid(fake, bot, ALICE, await plan_link(bot, 250), now_s=T0)
    await updates(bot)
    assert first.charge_id is not None
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(BOB, first.charge_id)  # not Bob's
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(ALICE, "stxNoSuchCharge")
    assert await bot.refund_star_payment(ALICE, first.charge_id)
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(ALICE, first.charge_id)
    [sub] = fake.subscriptions(ALICE)
    assert not sub.renewal_on  # a refund cancels the renewals
    assert fake.charge_renewals(T0 + MONTH) == []
    [charge, refund] = (await bot.get_star_transactions()).transactions[::-1]
    assert refund.id == charge.id == first.charge_id and refund.amount == 250
    assert refund.source is None and isinstance(refund.receiver, TransactionPartnerUser)
    assert refund.receiver.user.id == ALICE and refund.receiver.invoice_payload == "sub-1"
    assert await updates(bot) == ()


async def test_a_refund_by_telegram_support_shows_in_the_ledger_only(
    fake: FakeTelegram, bot: Bot
) -> None:
    link = await bot.create_invoice_link("Gold", "d", "inv-1", "XTR", [LabeledPrice("G", 90)])
    payment = await paid(fake, bot, ALICE, link, now_s=T0)
    await updates(bot)
    assert payment.charge_id is not None
    fake.refund_elsewhere(payment.charge_id)
    assert await updates(bot) == ()
    ledger = fake.star_transactions()
    assert [("source" in t, "receiver" in t, t["id"]) for t in ledger] == [
        (True, False, payment.charge_id),
        (False, True, payment.charge_id),
    ]
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(ALICE, payment.charge_id)


async def test_star_transactions_page_newest_first(fake: FakeTelegram, bot: Bot) -> None:
    link = await bot.create_invoice_link("Gold", "d", "inv-1", "XTR", [LabeledPrice("G", 10)])
    charges = []
    for n, when in enumerate((T0 + 20, T0, T0 + 10)):  # paid out of date order
        payment = await paid(fake, bot, ALICE + n, link, now_s=when)
        await updates(bot)
        charges.append((when, payment.charge_id))
    by_date = [charge for _, charge in sorted(charges, reverse=True)]
    page1 = (await bot.get_star_transactions(limit=2)).transactions
    page2 = (await bot.get_star_transactions(offset=2, limit=2)).transactions
    assert [t.id for t in page1 + page2] == by_date
    assert [int(t.date.timestamp()) for t in page1] == [T0 + 20, T0 + 10]
    assert all(t.amount == 10 and isinstance(t.source, TransactionPartnerUser) for t in page1)
    assert (await bot.get_star_transactions(offset=3)).transactions == ()
    assert [t["id"] for t in fake.star_transactions()] == by_date[::-1]
    with pytest.raises(BadRequest, match=r"(?i)LIMIT_INVALID"):
        await bot.get_star_transactions(limit=101)
    fake.fail_next("getStarTransactions", "500")
    with pytest.raises(TelegramError):
        await bot.get_star_transactions()


async def test_reset_forgets_every_invoice_payment_and_transaction(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.precheckout_deadline_s = 0.2
    link = await plan_link(bot)
    await paid(fake, bot, ALICE, link)
    await updates(bot)
    waiting = fake.pay(BOB, link)
    fake.reset()
    assert fake.invoice_links() == [] and fake.subscriptions() == []
    assert fake.star_transactions() == [] and fake.precheckout_deadline_s == 10.0
    await asyncio.sleep(0.4)
    assert not waiting.done.is_set()  # its deadline was dropped with it
    with pytest.raises(ValueError, match="no invoice link"):
        fake.pay(ALICE, link)
