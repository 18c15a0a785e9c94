"""The customer's own things: /status, /history, /help, /cancel, and free text (a claim's tx hash
or withdrawal ID when one is awaited, else the help)."""

from __future__ import annotations

from telegram import Update

from bot import keyboards
from bot.handlers.checkout import cancel_invoice, refusal, status_word
from bot.handlers.common import language, user_id
from bot.services import BotContext, Services
from payments import errors
from payments import states as st
from payments.deposits import claims
from payments.stars import StarsPayment
from payments.subscriptions import days_left, is_active

# the reasons of a refused claim the customer is told in so many words (else "other")
CLAIM_REASONS = frozenset(
    {"already_attached", "other_currency", "older_than_invoice", "after_invoice_window", "blocked"}
)


async def status(update: Update, context: BotContext) -> None:
    message, uid = update.effective_message, user_id(update)
    if message is None or uid is None:
        return
    services, lang = context.services, language(update)
    texts = services.texts
    now = services.payments.okx_clock.now_ms()
    subscriptions = await services.storefront.subscriptions(uid)
    lines = []
    for sub in subscriptions:
        plan = services.catalog.plan(sub.plan_id)
        name = plan.name if plan else sub.plan_id
        if is_active(sub, now):
            lines.append(
                texts.get(
                    lang,
                    "status_line",
                    plan=name,
                    until=texts.date(sub.ends_at),
                    days_left=days_left(sub, now),
                )
            )
        else:
            lines.append(
                texts.get(lang, "status_expired_line", plan=name, until=texts.date(sub.ends_at))
            )
    renewing = []  # Telegram subscriptions: (order, plan name, renewal on)
    for star_sub in await services.payments.stars.subscriptions_of(uid):
        plan = services.catalog.plan(star_sub.plan_id)
        name = plan.name if plan else star_sub.plan_id
        if star_sub.ends_at is None or star_sub.ends_at <= now:
            continue  # ended: nothing left to renew or stop
        key = "stars_renewal_line" if star_sub.renewal_on else "stars_renewal_off_line"
        lines.append(
            texts.get(
                lang, key, plan=name, stars=star_sub.stars, until=texts.date(star_sub.ends_at)
            )
        )
        renewing.append((star_sub.order_id, name, star_sub.renewal_on))
    if not any(is_active(s, now) for s in subscriptions):
        lines.insert(0, texts.get(lang, "status_none"))
    else:
        lines.insert(0, texts.get(lang, "status_title"))
    await message.reply_text(
        "\n".join(lines), reply_markup=keyboards.stars_renewals(texts, lang, renewing)
    )


async def history(update: Update, context: BotContext) -> None:
    message, uid = update.effective_message, user_id(update)
    if message is None or uid is None:
        return
    services, lang = context.services, language(update)
    texts = services.texts
    entries = await services.storefront.timeline(uid, limit=10)
    if not entries:
        await message.reply_text(texts.get(lang, "history_none"))
        return
    lines = [texts.get(lang, "history_title")]
    for entry in entries:
        if isinstance(entry, StarsPayment):
            lines.append(_stars_line(services, lang, entry))
            continue
        view = entry.invoice
        tx = "".join(texts.get(lang, "history_tx", tx=t) for t in entry.tx_ids[:2])
        lines.append(
            texts.get(
                lang,
                "history_line",
                date=texts.date(view.created_at),
                invoice=view.id,
                plan=view.plan_name,
                amount=view.amount_text,
                coin=view.currency,
                status=status_word(services, lang, view.status),
                tx=_html(tx),
            )
        )
    await message.reply_text("\n".join(lines))


def _stars_line(services: Services, lang: str | None, payment: StarsPayment) -> str:
    texts = services.texts
    plan = services.catalog.plan(payment.plan_id)
    refunded = payment.refunded_at is not None
    return texts.get(
        lang,
        "history_stars_line",
        date=texts.date(payment.paid_at),
        payment=payment.id,
        plan=plan.name if plan else payment.plan_id,
        stars=payment.stars,
        status=status_word(services, lang, "refunded" if refunded else st.PAID),
        renewal=texts.get(lang, "history_stars_renewal") if payment.renewal else "",
    )


async def help_command(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is not None:
        key = "help" if context.services.payments.crypto else "help_stars"
        await message.reply_text(context.services.texts.get(language(update), key))


async def cancel(update: Update, context: BotContext) -> None:
    """/cancel: the open invoice with nothing received; a choice when there are several; the
    reason when the only open ones have already received a payment."""
    message, uid = update.effective_message, user_id(update)
    if message is None or uid is None:
        return
    services, lang = context.services, language(update)
    texts = services.texts
    await services.payments.claim_waits.stop_waiting(uid)
    open_views = [
        v
        for v in await services.payments.invoices.list_for_customer(uid, limit=50)
        if v.status in st.OPEN_STATUSES
    ]
    pending = [v for v in open_views if v.status == st.PENDING]
    if not open_views:
        await message.reply_text(texts.get(lang, "cancel_none"))
    elif not pending:  # a payment has been seen on each: say so rather than "nothing open"
        await message.reply_text(refusal(services, lang, open_views[0]))
    elif len(pending) == 1:
        text, _ = await cancel_invoice(context, services, uid, lang, pending[0])
        await message.reply_text(text)
    else:
        await message.reply_text(
            texts.get(lang, "cancel_pick"),
            reply_markup=keyboards.cancel_choices(texts, lang, pending),
        )


async def text(update: Update, context: BotContext) -> None:
    """Free text: a claim reference when one is awaited, else the help, at most once every few
    seconds per customer (a claim reference is always answered; claims have their own limit)."""
    message, uid = update.effective_message, user_id(update)
    if message is None or uid is None:
        return
    services, lang = context.services, language(update)
    invoice_id = None if message.text is None else await services.payments.claim_waits.awaited(uid)
    if invoice_id is None or message.text is None:
        if services.free_text.due(uid):
            await message.reply_text(services.texts.get(lang, "unknown"))
        return
    await message.reply_text(await claim(services, uid, lang, invoice_id, message.text))


async def claim(
    services: Services, uid: int, lang: str | None, invoice_id: str, reference: str
) -> str:
    texts = services.texts
    try:
        result = await services.payments.claims.claim(invoice_id, uid, reference)
    except errors.InvoiceNotFound:
        await services.payments.claim_waits.stop_waiting(uid)
        return texts.get(lang, "claim_expired")
    if result.outcome == claims.REJECTED and result.reason == claims.BAD_REFERENCE:
        return claim_text(services, lang, invoice_id, result)  # keep waiting for a proper one
    if result.outcome == claims.NOT_FOUND:
        services.poll.request()
        return claim_text(services, lang, invoice_id, result)
    await services.payments.claim_waits.stop_waiting(uid)
    return claim_text(services, lang, invoice_id, result)


def claim_text(
    services: Services, lang: str | None, invoice_id: str, result: claims.ClaimResult
) -> str:
    """What the customer is told of a claim's ``result`` (the chat and the JSON API)."""
    texts = services.texts
    if result.outcome == claims.REJECTED and result.reason == claims.BAD_REFERENCE:
        return texts.get(lang, "claim_bad_reference")
    if result.outcome == claims.NOT_FOUND:
        return texts.get(lang, "claim_not_found")
    if result.outcome == claims.REJECTED and result.reason == claims.RATE_LIMITED:
        return texts.get(lang, "claim_rate_limited")
    if result.outcome == claims.ATTACHED:
        outcome = (
            "claim_attached_paid" if result.invoice_status == st.PAID else "claim_attached_waiting"
        )
        return texts.get(
            lang, "claim_attached", invoice=invoice_id, outcome=texts.get(lang, outcome)
        )
    if result.outcome == claims.ADMIN:
        return texts.get(lang, "claim_admin")
    return texts.get(
        lang, "claim_rejected", invoice=invoice_id, reason=_reason(services, lang, result)
    )


def _reason(services: Services, lang: str | None, result: claims.ClaimResult) -> str:
    texts = services.texts
    reason = result.reason
    if reason.startswith("invoice_"):
        status = reason.removeprefix("invoice_")
        return texts.get(
            lang, "claim_reason_invoice_closed", status=status_word(services, lang, status)
        )
    if reason in CLAIM_REASONS:
        return texts.get(lang, f"claim_reason_{reason}")
    return texts.get(lang, "claim_reason_other")


def _html(text: str) -> object:
    from bot.texts import Html

    return Html(text)
