"""What Telegram asks of a bot that sells: /terms (the terms of sale) and /paysupport (how to
reach the merchant about a payment, and an item in the admins' queue)."""

from __future__ import annotations

from telegram import Update

from bot.handlers.common import language, user_id
from bot.services import BotContext
from bot.terms import terms_message


async def terms(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None:
        return
    services = context.services
    settings = services.settings
    text = terms_message(services.texts, language(update), settings.terms_text, settings.terms_url)
    await message.reply_text(text)


async def paysupport(update: Update, context: BotContext) -> None:
    """The contact (SUPPORT_CONTACT) when set, and the admins told (one alert a customer per 10
    minutes; none for a blocked customer). The customer is answered every time."""
    message, uid, user = update.effective_message, user_id(update), update.effective_user
    if message is None or uid is None or user is None:
        return
    services, lang = context.services, language(update)
    texts = services.texts
    request = await services.payments.support.request(
        uid, username=user.username, name=user.full_name
    )
    contact = services.settings.support_contact
    parts = [texts.get(lang, "paysupport_contact", contact=contact)] if contact else []
    if request.outcome != "blocked":  # told now, or less than 10 minutes ago
        parts.append(texts.get(lang, "paysupport_told"))
    elif not parts:
        parts.append(texts.get(lang, "paysupport_blocked"))
    await message.reply_text("\n\n".join(parts))
