"""Telegram Stars: the ⭐ button, the pre-checkout answer, a successful payment, the renewal
switch under /status, and /refund for admins. Every rule lives in ``payments.stars``; these
handlers make the Bot API calls and hand the rail what Telegram said.

A 30-day plan is sold as a Telegram subscription (``createInvoiceLink`` with the 30-day
period; Telegram charges again every 30 days); any other length as a one-off ``sendInvoice``.
"""

from __future__ import annotations

import logging

from telegram import Bot, LabeledPrice, Update
from telegram.error import BadRequest, TelegramError

from bot import callbacks as cb
from bot import keyboards
from bot.handlers.common import answer, language, refuse_non_admin, user_id
from bot.services import BotContext, Services
from payments import errors
from payments.stars import CURRENCY, SUBSCRIPTION_PERIOD_S, StarsCharge, StarsOrder

log = logging.getLogger(__name__)

ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


async def on_pay(update: Update, context: BotContext) -> None:
    """⭐ Telegram Stars under a plan: the invoice (one-off) or the subscription's pay link."""
    query, uid, chat = update.callback_query, user_id(update), update.effective_chat
    action = cb.parse(query.data if query else None)
    if query is None or uid is None or chat is None or not isinstance(action, cb.PayStars):
        return
    services, lang = context.services, language(update)
    texts = services.texts
    plan = services.catalog.plan(action.plan)
    try:
        order = await services.payments.stars.open_order(uid, action.plan, lang)
    except errors.CustomerBlocked:
        await answer(query, texts.get(lang, "error_blocked"), alert=True)
        return
    except errors.PaymentsError:
        await answer(query, texts.get(lang, "error_unknown_choice"), alert=True)
        return
    assert plan is not None  # the order exists, so the plan does
    await answer(query)
    title = texts.get(lang, "stars_invoice_title", plan=plan.name)[:32]
    prices = [LabeledPrice(title, order.stars)]
    try:
        if order.recurring:
            link = await invoice_link(context.bot, services, lang, order)
            await context.bot.send_message(
                chat.id,
                texts.get(lang, "stars_subscription_offer", plan=plan.name, stars=order.stars),
                reply_markup=keyboards.pay_stars(texts, lang, order.stars, link),
            )
        else:
            description = texts.get(
                lang, "stars_invoice_description", plan=plan.name, days=order.days, invoice=order.id
            )
            await context.bot.send_invoice(
                chat.id,
                title=title,
                description=description[:255],
                payload=order.payload,
                currency=CURRENCY,
                prices=prices,
            )
    except TelegramError as exc:
        log.warning("Stars invoice for %s not sent: %s", order.id, exc)
        await context.bot.send_message(chat.id, texts.get(lang, "stars_unavailable"))


async def invoice_link(bot: Bot, services: Services, lang: str | None, order: StarsOrder) -> str:
    """The order's invoice link (``createInvoiceLink``), made once and remembered: a 30-day
    subscription for a recurring order, else a one-off payment. A Mini App opens it with
    ``Telegram.WebApp.openInvoice``; the chat shows it as a Pay button. Raises
    :class:`~telegram.error.TelegramError` when Telegram makes none."""
    if order.link is not None:
        return order.link
    texts = services.texts
    plan = services.catalog.plan(order.plan_id)
    name = plan.name if plan else order.plan_id
    title = texts.get(lang, "stars_invoice_title", plan=name)[:32]
    if order.recurring:
        description = texts.get(lang, "stars_subscription_description", plan=name, invoice=order.id)
    else:
        description = texts.get(
            lang, "stars_invoice_description", plan=name, days=order.days, invoice=order.id
        )
    link = await bot.create_invoice_link(
        title=title,
        description=description[:255],
        payload=order.payload,
        currency=CURRENCY,
        prices=[LabeledPrice(title, order.stars)],
        subscription_period=SUBSCRIPTION_PERIOD_S if order.recurring else None,
    )
    await services.payments.stars.attach_link(order.id, link)
    return link


async def on_pre_checkout(update: Update, context: BotContext) -> None:
    """Telegram asks whether the payment may go ahead (answered within its 10 seconds, from
    the database alone): yes for the customer's own open order at its price, else no with a
    reason they can read."""
    query = update.pre_checkout_query
    if query is None:
        return
    services, lang = context.services, language(update)
    try:
        verdict = await services.payments.stars.check_checkout(
            query.from_user.id, query.invoice_payload, query.currency, query.total_amount
        )
    except Exception:  # an answer is owed whatever happened: no, and try again
        log.exception("pre-checkout %s could not be checked", query.id)
        await query.answer(ok=False, error_message=services.texts.get(lang, "stars_unavailable"))
        return
    try:
        if verdict.ok:
            await query.answer(ok=True)
        else:
            reason = services.texts.get(lang, f"stars_refused_{verdict.refusal}")
            await query.answer(ok=False, error_message=reason)
    except BadRequest as exc:  # answered too late (a restart): Telegram failed the payment
        log.info("pre-checkout %s answered too late: %s", query.id, exc)


async def on_successful_payment(update: Update, context: BotContext) -> None:
    """Telegram charged the customer: credit it (once, by its charge id) and tell them."""
    message = update.effective_message
    payment = message.successful_payment if message is not None else None
    uid = user_id(update)
    if payment is None or uid is None:
        return
    expires = payment.subscription_expiration_date
    charge = StarsCharge(
        customer_id=uid,
        charge_id=payment.telegram_payment_charge_id,
        payload=payment.invoice_payload,
        stars=payment.total_amount,
        paid_at=int(message.date.timestamp() * 1000) if message is not None else 0,
        currency=payment.currency,
        recurring=bool(payment.is_recurring),
        first=bool(payment.is_first_recurring) or not payment.is_recurring,
        subscription_ends_at=None if expires is None else int(expires.timestamp() * 1000),
    )
    services = context.services
    credited = await services.payments.stars.record_charge(charge)
    if credited.new:
        await services.sender.send_due()  # the customer's message now, not at the next run


async def on_renewal(update: Update, context: BotContext) -> None:
    """Stop (or resume) the renewal of the customer's Telegram subscription."""
    query, uid = update.callback_query, user_id(update)
    action = cb.parse(query.data if query else None)
    if query is None or uid is None or not isinstance(action, cb.StarsRenewal):
        return
    services, lang = context.services, language(update)
    texts, rail = services.texts, services.payments.stars
    sub = await rail.subscription(uid, action.order)
    if sub is None:  # not theirs, or not a paid subscription: change nothing
        await answer(query, texts.get(lang, "stale_button"), alert=True)
        return
    plan = services.catalog.plan(sub.plan_id)
    name = plan.name if plan else sub.plan_id
    try:
        await context.bot.edit_user_star_subscription(
            uid, sub.first_charge_id, is_canceled=not action.on
        )
    except TelegramError as exc:
        await answer(query)
        reason = str(exc)[:200]
        if query.message is not None:
            await context.bot.send_message(
                query.message.chat.id, texts.get(lang, "stars_renewal_failed", reason=reason)
            )
        return
    await rail.set_renewal(uid, action.order, on=action.on)
    await answer(query)
    key = "stars_renewal_now_on" if action.on else "stars_renewal_now_off"
    if query.message is not None:
        await context.bot.send_message(
            query.message.chat.id, texts.get(lang, key, plan=name, until=texts.date(sub.ends_at))
        )


async def refund(update: Update, context: BotContext) -> None:
    """/refund <payment, order or charge id>: Telegram refunds the Stars, the rail revokes what
    they paid for and tells the customer. A charge Telegram refunded already is recorded as
    such (a clear answer, not an error)."""
    if await refuse_non_admin(update, context):
        return
    message = update.effective_message
    if message is None:
        return
    services, lang = context.services, language(update)
    texts, rail = services.texts, services.payments.stars
    args = context.args or []
    if len(args) != 1:
        await message.reply_text(texts.get(lang, "command_refund_usage"))
        return
    payment = await rail.find_payment(args[0])
    if payment is None:
        await message.reply_text(texts.get(lang, "refund_unknown", ref=args[0][:64]))
        return
    if payment.refunded_at is not None:
        await message.reply_text(texts.get(lang, "refund_already", payment=payment.id))
        return
    try:
        await context.bot.refund_star_payment(payment.customer_id, payment.charge_id)
        by = "admin"
    except BadRequest as exc:
        if ALREADY_REFUNDED not in str(exc).upper():
            await message.reply_text(
                texts.get(lang, "refund_failed", payment=payment.id, reason=str(exc)[:200])
            )
            return
        by = "telegram"
    except TelegramError as exc:
        await message.reply_text(
            texts.get(lang, "refund_failed", payment=payment.id, reason=str(exc)[:200])
        )
        return
    done = await rail.record_refund(payment.charge_id, by=by)
    if done is None:
        await message.reply_text(texts.get(lang, "refund_already", payment=payment.id))
        return
    if by == "telegram":
        await message.reply_text(texts.get(lang, "refund_found_refunded", payment=payment.id))
    else:
        plan = services.catalog.plan(payment.plan_id)
        await message.reply_text(
            texts.get(
                lang,
                "refund_done",
                stars=payment.stars,
                payment=payment.id,
                customer=payment.customer_id,
                plan=plan.name if plan else payment.plan_id,
                until=texts.date(done.ends_at),
            )
        )
    await services.sender.send_due()
