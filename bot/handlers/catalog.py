"""The shop window: /start, /plans, and plan -> coin -> network menus."""

from __future__ import annotations

import asyncio
import html
import time
import weakref

from telegram import InlineKeyboardMarkup, Update

from bot import callbacks as cb
from bot import keyboards
from bot.handlers import checkout
from bot.handlers.common import answer, edit_or_send, language, user_id
from bot.services import BotContext
from bot.texts import stars_price, usd
from payments import Network, Plan
from payments.invoicing import Storefront
from payments.subscriptions import days_left, is_active

# The coins and networks taking deposits change when the directory is refreshed (hourly); every
# menu tap read them from the database. A stale menu is harmless: creating the invoice checks
# the chain again. Empty answers are not kept (OKX may be back in a moment).
OFFERED_TTL_S = 2.0
_offered: weakref.WeakKeyDictionary[Storefront, tuple[float, dict[str, list[Network]]]] = (
    weakref.WeakKeyDictionary()
)


async def offered(storefront: Storefront) -> dict[str, list[Network]]:
    """``storefront.offered()``, reused for OFFERED_TTL_S seconds."""
    now = time.monotonic()
    kept = _offered.get(storefront)
    if kept is not None and now - kept[0] < OFFERED_TTL_S:
        return kept[1]
    fresh = await storefront.offered()
    if fresh:
        _offered[storefront] = (now, fresh)
    return fresh


def price(context: BotContext, plan: Plan) -> str:
    """A plan's price as the customer pays it: in Stars when the shop sells for Stars only."""
    if not context.services.payments.crypto and plan.stars is not None:
        return stars_price(plan.stars)
    return usd(plan.price_usd)


def plans_keyboard(context: BotContext, lang: str | None) -> InlineKeyboardMarkup:
    """The plans, and "Open checkout" when the bot knows its Mini App."""
    services = context.services
    return keyboards.plans(
        services.texts,
        lang,
        services.catalog,
        stars_only=not services.payments.crypto,
        mini_app=services.mini_app_url,
    )


async def start(update: Update, context: BotContext) -> None:
    await _menu(update, context, welcome=True)


async def plans(update: Update, context: BotContext) -> None:
    await _menu(update, context, welcome=False)


async def _menu(update: Update, context: BotContext, *, welcome: bool) -> None:
    message, uid = update.effective_message, user_id(update)
    if message is None or uid is None:
        return
    lang = language(update)
    await message.reply_text(
        await menu_text(context, uid, lang, welcome=welcome),
        reply_markup=plans_keyboard(context, lang),
    )


def greeting(context: BotContext, lang: str | None) -> str:
    """The /start greeting: SHOP_NAME in its title, WELCOME_TEXT (plain text) as its body."""
    services = context.services
    texts, settings = services.texts, services.settings
    if settings.shop_name:
        title = texts.get(lang, "welcome_title_shop", shop=settings.shop_name)
    else:
        title = texts.get(lang, "welcome_title")
    if settings.welcome_text:
        body = html.escape(settings.welcome_text, quote=False)
    elif not services.payments.crypto:
        body = texts.get(lang, "welcome_stars")
    else:
        body = texts.get(lang, "welcome_both" if services.catalog.stars_plans else "welcome")
    return f"{title} {body}"


async def menu_text(context: BotContext, uid: int, lang: str | None, *, welcome: bool) -> str:
    services = context.services
    texts = services.texts
    lines = [greeting(context, lang) if welcome else texts.get(lang, "plans_title")]
    now = services.payments.okx_clock.now_ms()
    for sub in await services.storefront.subscriptions(uid):
        if is_active(sub, now):
            plan = services.catalog.plan(sub.plan_id)
            lines.append(
                texts.get(
                    lang,
                    "current_subscription",
                    plan=plan.name if plan else sub.plan_id,
                    until=texts.date(sub.ends_at),
                    days_left=days_left(sub, now),
                )
            )
    for plan in services.catalog.plans:
        lines.append(
            texts.get(
                lang,
                "plan_line",
                name=plan.name,
                price=price(context, plan),
                days=plan.days,
                description=plan.description,
            )
        )
    return "\n\n".join(lines)


async def on_menu(update: Update, context: BotContext) -> None:
    query, uid = update.callback_query, user_id(update)
    if query is None or uid is None:
        return
    await answer(query)
    lang = language(update)
    await edit_or_send(
        query,
        await menu_text(context, uid, lang, welcome=False),
        plans_keyboard(context, lang),
    )


async def on_plan(update: Update, context: BotContext) -> None:
    """A plan was picked (or Renew pressed): offer the coins that take deposits now."""
    query = update.callback_query
    action = cb.parse(query.data if query else None)
    if query is None or not isinstance(action, cb.ChoosePlan | cb.Renew):
        return
    services, lang = context.services, language(update)
    texts = services.texts
    plan = services.catalog.plan(action.plan)
    if plan is None:
        await answer(query, texts.get(lang, "error_unknown_choice"), alert=True)
        return
    answered = asyncio.ensure_future(answer(query))  # no round trip before the menu
    try:
        if services.payments.crypto:
            await services.directory_settled()
            open_coins = await offered(services.storefront)
            coins = [c for c in services.catalog.coins if c.symbol in open_coins]
            key = "no_coins" if not coins and plan.stars is None else "choose_coin"
        else:  # Telegram Stars only: every plan has a Stars price, and there is no coin
            coins, key = [], "choose_stars"
        text = texts.get(lang, key, plan=plan.name, price=price(context, plan), days=plan.days)
        markup = keyboards.coins(texts, lang, plan, coins)
        if isinstance(action, cb.Renew) and query.message is not None:
            await query.get_bot().send_message(query.message.chat.id, text, reply_markup=markup)
        else:
            await edit_or_send(query, text, markup)
    finally:
        await answered


async def on_coin(update: Update, context: BotContext) -> None:
    """A coin was picked: its networks, or straight to the invoice when there is only one."""
    query = update.callback_query
    action = cb.parse(query.data if query else None)
    if query is None or not isinstance(action, cb.ChooseCoin):
        return
    services, lang = context.services, language(update)
    texts = services.texts
    plan, coin = services.catalog.plan(action.plan), services.catalog.coin(action.coin)
    await services.directory_settled()
    networks = (await offered(services.storefront)).get(action.coin, [])
    if plan is None or coin is None or not networks:
        await answer(query, texts.get(lang, "error_unknown_choice"), alert=True)
        return
    if len(networks) == 1 and len(coin.networks) == 1:
        await checkout.create_invoice(update, context, plan.id, coin.symbol, networks[0].code)
        return
    answered = asyncio.ensure_future(answer(query))
    try:
        await edit_or_send(
            query,
            texts.get(lang, "choose_network", coin=coin.symbol),
            keyboards.networks(texts, lang, plan, coin, networks),
        )
    finally:
        await answered


async def on_network(update: Update, context: BotContext) -> None:
    query = update.callback_query
    action = cb.parse(query.data if query else None)
    if query is None or not isinstance(action, cb.ChooseNetwork):
        return
    await checkout.create_invoice(update, context, action.plan, action.coin, action.network)
