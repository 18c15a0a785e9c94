"""Small helpers every handler module shares."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.services import BotContext
from payments.ops import COUNT_CAP

log = logging.getLogger(__name__)


def count_text(count: int) -> str:
    """An admin view's count: exact up to COUNT_CAP, "1000+" above (the count stopped there)."""
    return f"{COUNT_CAP}+" if count > COUNT_CAP else str(count)


def language(update: Update) -> str | None:
    user = update.effective_user
    return user.language_code if user else None


def user_id(update: Update) -> int | None:
    user = update.effective_user
    return user.id if user else None


async def refuse_non_admin(update: Update, context: BotContext) -> bool:
    """True (after telling them) when the sender is not in ADMIN_IDS: admin commands and
    buttons change nothing for anyone else."""
    services = context.services
    if services.is_admin(user_id(update)):
        return False
    text = services.texts.get(language(update), "admin_only")
    if update.callback_query is not None:
        await answer(update.callback_query, text, alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text)
    return True


async def answer(query: CallbackQuery, text: str | None = None, *, alert: bool = False) -> None:
    """Always answer a callback query (the client shows a spinner until we do)."""
    try:
        await query.answer(text[:200] if text else None, show_alert=alert)
    except BadRequest as exc:  # too old to answer ("query is too old"): nothing to do
        log.debug("callback answer refused: %s", exc)


async def edit_or_send(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Replace a menu message's text; when it cannot be edited (a photo, too old), send anew."""
    message = query.message
    if isinstance(message, Message) and message.text is not None:
        try:
            await message.edit_text(text, reply_markup=markup)
            return
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return
            log.debug("menu edit refused, sending a new message: %s", exc)
    if message is not None:
        await query.get_bot().send_message(message.chat.id, text, reply_markup=markup)
