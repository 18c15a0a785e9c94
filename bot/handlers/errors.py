"""The one error handler: log what happened (never a secret), tell the customer politely.

Jobs' exceptions arrive here too (``update`` is None, ``context.job`` set): they are logged and
the job runs again at its next interval; nothing stops the bot.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, TelegramError

from bot.handlers.common import language
from bot.services import BotContext

log = logging.getLogger("bot.errors")


async def on_error(update: object, context: BotContext) -> None:
    error = context.error
    if context.job is not None:
        log.error("job %s failed: %s", context.job.name, _describe(error), exc_info=error)
        return
    if isinstance(error, Forbidden):
        log.info("a user blocked the bot while we answered: %s", error)
        return
    if isinstance(error, NetworkError):
        log.warning("Telegram request failed while handling an update: %s", error)
        return
    log.error("unhandled error while handling an update: %s", _describe(error), exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.effective_chat.type != "private":
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
        text = context.services.texts.get(language(update), "error_generic")
        await context.bot.send_message(update.effective_chat.id, text)
    except (TelegramError, RuntimeError) as exc:
        log.warning("could not tell the user about the error: %s", exc)


def _describe(error: BaseException | None) -> str:
    return "unknown" if error is None else type(error).__name__
