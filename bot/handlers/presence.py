"""Every private update says the customer is reachable and which language they use.

Runs first (handler group -1) and never stops the update. The database is touched once per
customer and language every few minutes, not on every tap: the flag only tells admins whether
messages reach the customer, and the outbox tries every message anyway.
"""

from __future__ import annotations

from telegram import Update

from bot.handlers.common import language
from bot.services import BotContext


async def touch(update: Update, context: BotContext) -> None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or user.is_bot or chat is None or chat.type != "private":
        return
    services = context.services
    if services.seen.due((user.id, language(update))):
        await services.customers.touch(user.id, language(update))
