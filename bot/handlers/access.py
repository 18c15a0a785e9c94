"""Paid chats: joins and leaves (``chat_member``), join requests, the bot's own rights
(``my_chat_member``), ``/join`` for customers and ``/members`` for admins."""

from __future__ import annotations

import logging

from telegram import ChatMemberUpdated, Update
from telegram.error import TelegramError

from bot.access import is_in_chat
from bot.handlers.common import language, refuse_non_admin, user_id
from bot.services import BotContext

log = logging.getLogger(__name__)


async def on_chat_member(update: Update, context: BotContext) -> None:
    change: ChatMemberUpdated | None = update.chat_member
    access = context.services.access
    if change is None or change.chat.id not in access.chats:
        return
    chat_id, user = change.chat.id, change.new_chat_member.user
    was_in, is_in = is_in_chat(change.old_chat_member), is_in_chat(change.new_chat_member)
    if user.is_bot or was_in == is_in:
        return
    if not is_in:
        await access.service.left(chat_id, user.id)
        return
    link = change.invite_link
    own = link.invite_link if link is not None and link.creator.id == context.bot.id else None
    outcome = await access.service.joined(chat_id, user.id, own)
    if outcome.kind == "intruder":
        log.info("chat %s: %s used a link made for %s; removing", chat_id, user.id, outcome.buyer)
        await access.expel(chat_id, user.id, outcome.link)
    if outcome.reinvite is not None:
        await access.invite(outcome.reinvite, replaced=True)


async def on_join_request(update: Update, context: BotContext) -> None:
    request = update.chat_join_request
    access = context.services.access
    if request is None or request.chat.id not in access.chats:
        return
    try:
        if await access.service.may_join(request.chat.id, request.from_user.id):
            await request.approve()
        else:
            await request.decline()
    except TelegramError as exc:  # handled by another admin meanwhile, or rights lost
        log.warning("chat %s: join request of %s: %s", request.chat.id, request.from_user.id, exc)


async def on_my_chat_member(update: Update, context: BotContext) -> None:
    """The bot's own status or rights changed in a paid chat: check them all again."""
    change = update.my_chat_member
    access = context.services.access
    if change is not None and change.chat.id in access.chats:
        await access.check_rights()


async def join(update: Update, context: BotContext) -> None:
    """/join: links to the paid chats the customer's subscriptions include and they are not in."""
    services, who, message = context.services, user_id(update), update.effective_message
    if who is None or message is None:
        return
    lang, texts = language(update), services.texts
    await services.access.not_in(who)  # "in every chat" only when Telegram says so
    on_the_way, joined = await services.access.service.request_links(who, services.access.titles)
    if on_the_way:
        await message.reply_text(texts.get(lang, "join_on_the_way", count=on_the_way))
        await services.sender.send_due()
    elif joined:
        await message.reply_text(texts.get(lang, "join_all_joined"))
    else:
        await message.reply_text(texts.get(lang, "join_nothing"))


async def members(update: Update, context: BotContext) -> None:
    """/members <plan>: per chat of the plan, how many are in, and whose access ends next."""
    if await refuse_non_admin(update, context):
        return
    services, message = context.services, update.effective_message
    if message is None:
        return
    texts, access = services.texts, services.access
    with_chats = sorted(access.service.plan_chats)
    if not with_chats:
        await message.reply_text(texts.get(None, "members_none"))
        return
    args = context.args or []
    if len(args) != 1 or args[0] not in with_chats:
        await message.reply_text(texts.get(None, "members_usage", plans=", ".join(with_chats)))
        return
    lines: list[str] = []
    for chat in await access.service.members(args[0]):
        lines.append(
            texts.get(
                None,
                "members_chat",
                chat=access.title(chat.chat_id),
                chat_id=chat.chat_id,
                members=chat.members,
                invited=chat.invited,
            )
        )
        lines += [
            texts.get(None, "members_next", customer=customer, until=texts.date(until))
            for customer, until in chat.next_ends
        ]
    await message.reply_text("\n".join(lines))
