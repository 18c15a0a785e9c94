"""The invoice: create it and send the photo; then Check payment, I paid: claim it, Cancel."""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot, InputFile, Message, Update
from telegram.error import BadRequest, TelegramError

from bot import callbacks as cb
from bot import invoice_card, keyboards
from bot.handlers.common import answer, language, user_id
from bot.refusals import invoice_refusal
from bot.services import BotContext, Services
from payments import InvoiceView, errors
from payments import states as st

log = logging.getLogger(__name__)


async def create_invoice(
    update: Update, context: BotContext, plan_id: str, currency: str, network: str
) -> None:
    query, uid, chat = update.callback_query, user_id(update), update.effective_chat
    if query is None or uid is None:
        return
    if chat is None:  # the menu message is gone: nothing to answer in
        await answer(query, context.services.texts.get(language(update), "stale_button"))
        return
    services, lang = context.services, language(update)
    await services.directory_settled()
    try:
        view = await services.payments.invoices.create(
            uid, plan_id, currency, network, language=lang
        )
    except errors.PaymentsError as exc:
        await answer(query)
        plan = services.catalog.plan(plan_id)
        stars = plan is not None and plan.stars is not None
        markup = (
            None  # crypto unavailable (OKX refuses the key): offer Stars when the plan has them
        )
        if stars and plan is not None and isinstance(exc, errors.CryptoUnavailable):
            markup = keyboards.stars_instead(services.texts, lang, plan)
        await context.bot.send_message(
            chat.id,
            _creation_error(services, lang, exc, currency, network, stars=stars),
            reply_markup=markup,
        )
        if isinstance(exc, errors.NoFreeAmount):
            services.payments.check_capacity_soon()  # one at a time, one a minute
        return
    answered = asyncio.ensure_future(answer(query))  # the spinner stops while the QR renders
    try:
        await send_invoice_photo(context, services, chat.id, lang, view)
    finally:
        await answered


async def send_invoice_photo(
    context: BotContext, services: Services, chat_id: int, lang: str | None, view: InvoiceView
) -> Message:
    texts = services.texts
    if view.reused:
        await context.bot.send_message(chat_id, texts.get(lang, "invoice_reused"))
    png = await services.qr.render(
        invoice_card.payload(view, services.settings.qr_payload),
        invoice_card.image_lines(texts, lang, view),
    )
    message = await context.bot.send_photo(
        chat_id,
        photo=InputFile(png, filename=f"invoice-{view.id}.png"),
        caption=invoice_card.caption(texts, lang, view),
        reply_markup=keyboards.invoice(texts, lang, view),
    )
    await services.photos.record(view.id, chat_id, message.message_id)
    return message


def _creation_error(
    services: Services,
    lang: str | None,
    exc: errors.PaymentsError,
    currency: str,
    code: str,
    *,
    stars: bool = False,
) -> str:
    coin = services.catalog.coin(currency)
    chosen = coin.network(code) if coin else None
    refusal = invoice_refusal(
        services.texts,
        lang,
        exc,
        coin=currency,
        network=chosen.label if chosen else code,
        max_open=services.settings.max_open_invoices,
        stars=stars,
    )
    if refusal.status == 500:
        log.warning("invoice creation refused: %s", type(exc).__name__)
    return refusal.text


async def _own_invoice(update: Update, context: BotContext, invoice_id: str) -> InvoiceView | None:
    """The invoice when it belongs to whoever pressed; otherwise answer politely, None."""
    query, uid = update.callback_query, user_id(update)
    if query is None or uid is None:
        return None
    services, lang = context.services, language(update)
    try:
        return await services.payments.invoices.get(invoice_id, customer_id=uid)
    except errors.InvoiceNotFound:
        await answer(query, services.texts.get(lang, "not_yours"), alert=True)
        return None


async def on_check(update: Update, context: BotContext) -> None:
    """Reads the database; asks for at most one debounced poll. Never calls OKX per tap."""
    query = update.callback_query
    action = cb.parse(query.data if query else None)
    if query is None or not isinstance(action, cb.CheckInvoice):
        return
    view = await _own_invoice(update, context, action.invoice)
    if view is None:
        return
    services, lang = context.services, language(update)
    if view.status in st.OPEN_STATUSES:
        services.poll.request()
    await answer(query, check_text(services, lang, view), alert=True)
    await refresh_caption(services, query.message, lang, view)


def check_text(services: Services, lang: str | None, view: InvoiceView) -> str:
    texts = services.texts
    if view.frozen or (
        view.status in st.UNPAID_STATUSES and view.exceptions & {st.ON_HOLD, st.PAID_LATE}
    ):
        return texts.get(lang, "check_review", invoice=view.id)
    if view.status == st.PAID:
        return texts.get(lang, "check_paid", invoice=view.id)
    if view.topup_amount_text and view.status in st.OPEN_STATUSES:
        return texts.get(
            lang, "check_partial", invoice=view.id, topup=view.topup_amount_text, coin=view.currency
        )
    if view.status == st.PROCESSING:
        return texts.get(lang, "check_processing", invoice=view.id)
    if view.status == st.PENDING:
        return texts.get(lang, "check_pending", invoice=view.id)
    return texts.get(
        lang, "check_closed", invoice=view.id, status=status_word(services, lang, view.status)
    )


def status_word(services: Services, lang: str | None, status: str) -> str:
    return services.texts.get(lang, f"status_{status}")


async def refresh_caption(
    services: Services, message: object, lang: str | None, view: InvoiceView
) -> None:
    """An ended invoice's photo says so (and loses its buttons), whoever notices first."""
    if not isinstance(message, Message) or not message.photo:
        return
    if invoice_card.banner_key(view) is None:
        return
    try:
        await message.edit_caption(
            caption=invoice_card.caption(services.texts, lang, view), reply_markup=None
        )
    except BadRequest as exc:  # "message is not modified": someone got there first
        log.debug("caption edit refused: %s", exc)
    except TelegramError as exc:  # the outbox edits it too when the invoice ends
        log.warning("could not refresh an invoice photo: %s", exc)


async def on_claim(update: Update, context: BotContext) -> None:
    query, uid = update.callback_query, user_id(update)
    action = cb.parse(query.data if query else None)
    if query is None or uid is None or not isinstance(action, cb.ClaimInvoice):
        return
    view = await _own_invoice(update, context, action.invoice)
    if view is None:
        return
    services, lang = context.services, language(update)
    if view.status not in st.UNPAID_STATUSES:
        await answer(query, check_text(services, lang, view), alert=True)
        return
    await services.payments.claim_waits.expect(uid, view.id)
    await answer(query)
    if query.message is not None:
        await context.bot.send_message(
            query.message.chat.id, services.texts.get(lang, "claim_prompt", invoice=view.id)
        )


async def on_cancel(update: Update, context: BotContext) -> None:
    query, uid = update.callback_query, user_id(update)
    action = cb.parse(query.data if query else None)
    if query is None or uid is None or not isinstance(action, cb.CancelInvoice):
        return
    view = await _own_invoice(update, context, action.invoice)
    if view is None:
        return
    services, lang = context.services, language(update)
    text, cancelled = await cancel_invoice(context, services, uid, lang, view)
    await answer(query, text, alert=cancelled is None)
    # pressed under the /cancel choice (not under the photo): say it in the chat too
    if cancelled is not None and isinstance(query.message, Message) and not query.message.photo:
        await context.bot.send_message(query.message.chat.id, text)


async def cancel_invoice(
    context: BotContext, services: Services, uid: int, lang: str | None, view: InvoiceView
) -> tuple[str, InvoiceView | None]:
    """Cancel an invoice with nothing received, and mark its photos "CANCELLED - do not pay":
    (what to tell the customer, the cancelled invoice or None when refused)."""
    texts = services.texts
    try:
        cancelled = await services.payments.invoices.cancel(view.id, customer_id=uid)
    except errors.InvalidTransition:
        current = await services.payments.invoices.get(view.id)
        return refusal(services, lang, current), None
    await mark_photos(context.bot, services, lang, cancelled)
    return texts.get(lang, "cancel_done", invoice=view.id), cancelled


async def mark_photos(bot: Bot, services: Services, lang: str | None, view: InvoiceView) -> None:
    """Re-caption the invoice's photos in the chat for ``view`` (cancelled: "do not pay") and
    drop their buttons. Best effort: the invoice is what it is whatever Telegram answers."""
    for chat_id, message_id in await services.photos.of(view.id):
        await _edit_photo(bot, services, chat_id, message_id, lang, view)


def refusal(services: Services, lang: str | None, view: InvoiceView) -> str:
    """Why ``view`` cannot be cancelled."""
    texts = services.texts
    if view.status == st.PROCESSING:
        reason = texts.get(lang, "cancel_reason_received")
    else:
        reason = texts.get(
            lang, "cancel_reason_closed", status=status_word(services, lang, view.status)
        )
    return texts.get(lang, "cancel_refused", invoice=view.id, reason=reason)


async def _edit_photo(
    bot: Bot,
    services: Services,
    chat_id: int,
    message_id: int,
    lang: str | None,
    view: InvoiceView,
) -> None:
    try:
        await bot.edit_message_caption(
            chat_id=chat_id,
            message_id=message_id,
            caption=invoice_card.caption(services.texts, lang, view),
            reply_markup=None,
        )
    except BadRequest as exc:  # not modified, or the customer deleted the photo
        log.debug("caption edit refused: %s", exc)
    except TelegramError as exc:  # the invoice is cancelled all the same; say that first
        log.warning("could not mark an invoice photo cancelled: %s", exc)
