"""The one error handler: log what happened (never a secret), tell the customer politely.

Jobs' exceptions arrive here too (``update`` is None, ``context.job`` set): they are logged and
the job runs again at its next interval; nothing stops the bot.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.handlers.common import language
from bot.services import BotContext

log = logging.getLogger("bot.errors")


async def on_error(update: object, context: BotContext) -> None:
    error = context.error
    if context.job is not None:
        if _transient(error):  # the job runs again at its next interval
            log.warning("job %s: a Telegram request failed: %s", context.job.name, error)
            return
        log.error("job %s failed: %s", context.job.name, _describe(error), exc_info=error)
        return
    if isinstance(error, Forbidden):
        log.info("a user blocked the bot while we answered: %s", error)
        return
    if _transient(error):
        log.warning("Telegram request failed while handling an update: %s", error)
        return
    log.error("unhandled error while handling an update: %s", _describe(error), exc_info=error)
    if isinstance(update, Update):
        await _tell_user(update, context)


async def _tell_user(update: Update, context: BotContext) -> None:
    """A polite line, never internals: as the button's alert when the query is still open
    (the handler may have answered it already), else as a message in a private chat."""
    try:
        text = context.services.texts.get(language(update), "error_generic")
    except RuntimeError:  # not started (services closed): nothing sensible to say
        return
    query = update.callback_query
    if query is not None:
        try:
            await query.answer(text, show_alert=True)
            return
        except TelegramError as exc:
            log.debug("the query was answered already: %s", exc)
    chat = update.effective_chat
    if chat is None or chat.type != "private":
        return
    try:
        await context.bot.send_message(chat.id, text)
    except TelegramError as exc:
        log.warning("could not tell the user about the error: %s", exc)


def _transient(error: BaseException | None) -> bool:
    """A 429, a time-out or a 5xx from Telegram. BadRequest is a NetworkError in PTB's tree,
    but it means our request is wrong."""
    return isinstance(error, RetryAfter) or (
        isinstance(error, NetworkError) and not isinstance(error, BadRequest)
    )


def _describe(error: BaseException | None) -> str:
    return "unknown" if error is None else type(error).__name__
