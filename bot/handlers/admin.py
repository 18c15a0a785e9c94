"""Admin commands (ADMIN_IDS only): /pending, /confirm, /reject, /reassign, /refunded, /stats,
/export, /user, /grant, /simulate_deposit (test mode), and the Confirm / Reject buttons of
/pending.

Anyone else gets a plain refusal and nothing changes. Authorisation is by the Telegram user id of
whoever sent the update (a forwarded admin message carries the forwarder's id, not the admin's).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from decimal import Decimal, InvalidOperation

from telegram import CallbackQuery, InlineKeyboardMarkup, Update

from bot import callbacks as cb
from bot import keyboards
from bot.handlers.common import answer, count_text, refuse_non_admin
from bot.services import BotContext, Services
from bot.texts import Html
from payments import errors
from payments.facts import DepositFacts, InvoiceFacts
from payments.money import format_amount
from payments.ops import AdminResult, BadRange, export_range, to_csv
from payments.subscriptions import days_left, is_active

log = logging.getLogger(__name__)

PAGE_SIZE = 5


_refuse = refuse_non_admin


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, reply_markup=markup)


async def _send(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """The outcome of a button, as a new message in the chat of the button (or, for a button
    without its message, in the admin's private chat: an action is never done silently)."""
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    await query.get_bot().send_message(chat_id, text, reply_markup=markup)


async def _attempt(
    update: Update, services: Services, action: Awaitable[AdminResult]
) -> AdminResult | None:
    """The action's result, or None after telling the admin why it was refused."""
    try:
        return await action
    except errors.PaymentsError as exc:
        await _reply(update, services.texts.get(None, "admin_refused", reason=str(exc)))
        return None


async def _crypto_off(update: Update, context: BotContext) -> bool:
    """A crypto-only command in a shop selling for Telegram Stars only: say so (True)."""
    if context.services.payments.crypto:
        return False
    await _reply(update, context.services.texts.get(None, "admin_crypto_off"))
    return True


def _args(context: BotContext) -> list[str]:
    return [a.strip() for a in (context.args or []) if a.strip()]


_TELEGRAM_ID = re.compile(r"[0-9]{1,16}")  # ASCII digits only: "²".isdigit() is True
_DAYS = re.compile(r"[0-9]{1,6}")


def _number(text: str, shape: re.Pattern[str]) -> int | None:
    """A whole number written in ASCII digits within ``shape``; None for anything else."""
    return int(text) if shape.fullmatch(text) else None


# --- /pending ------------------------------------------------------------------------------------


async def pending(update: Update, context: BotContext) -> None:
    if await _refuse(update, context):
        return
    text, markup = await pending_page(context.services, 0)
    await _reply(update, text, markup)


async def on_page(update: Update, context: BotContext) -> None:
    query = update.callback_query
    action = cb.parse(query.data if query else None)
    if query is None or not isinstance(action, cb.AdminPage) or await _refuse(update, context):
        return
    await answer(query)
    text, markup = await pending_page(context.services, action.page)
    await _send(query, text, markup)


async def pending_page(services: Services, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    texts = services.texts
    queue = services.payments.admin
    overview = await queue.pending(limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    totals = (overview.open_total, overview.review_total, overview.unmatched_total)
    if not any(totals):
        empty = "admin_pending_empty" if services.payments.crypto else "admin_crypto_off"
        return texts.get(None, empty), None
    pages = max(-(-t // PAGE_SIZE) for t in totals)
    if page >= pages:  # an old "Older »" after the queue shrank: its last page
        page = pages - 1
        overview = await queue.pending(limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    lines = [texts.get(None, "admin_pending_title", page=page + 1, pages=pages)]
    buttons: list[str] = []
    sections = (
        ("admin_pending_review", overview.review_invoices, overview.review_total),
        ("admin_pending_open", overview.open_invoices, overview.open_total),
    )
    for key, invoices, total in sections:
        if invoices:
            lines.append("")
            lines.append(texts.get(None, key, total=total))
            for invoice in invoices:
                lines.append(_invoice_line(services, invoice))
                if invoice.id not in buttons:
                    buttons.append(invoice.id)
    if overview.unmatched:
        lines.append("")
        lines.append(texts.get(None, "admin_pending_unmatched", total=overview.unmatched_total))
        lines.extend(_deposit_line(services, d) for d in overview.unmatched)
    return "\n".join(lines), keyboards.pending_page(texts, buttons, page, pages)


def _invoice_line(services: Services, invoice: InvoiceFacts) -> str:
    texts = services.texts
    plan = services.catalog.plan(invoice.plan_id)
    exceptions = ", ".join(sorted(invoice.exceptions | ({"frozen"} if invoice.frozen else set())))
    return texts.get(
        None,
        "admin_invoice_line",
        invoice=invoice.id,
        plan=plan.name if plan else invoice.plan_id,
        amount=format_amount(invoice.amount, invoice.step),
        coin=invoice.currency,
        network=invoice.network,
        status=invoice.status,
        exceptions=f" ({exceptions})" if exceptions else "",
        customer=invoice.customer_id,
        date=texts.date(invoice.created_at),
    )


def _deposit_line(services: Services, deposit: DepositFacts) -> str:
    texts = services.texts
    tx = f" · tx {deposit.tx_id}" if deposit.tx_id else ""
    hint = ""
    if deposit.candidate_invoice_id:
        hint = texts.get(None, "admin_deposit_hint", invoice=deposit.candidate_invoice_id)
    return texts.get(
        None,
        "admin_deposit_line",
        deposit=deposit.dep_id,
        amount=deposit.amount_text,
        coin=deposit.currency,
        chain=deposit.chain,
        state=deposit.state,
        date=texts.date(deposit.ts),
        tx=tx,
        hint=Html(hint),
    )


# --- decisions -----------------------------------------------------------------------------------


async def confirm(update: Update, context: BotContext) -> None:
    if await _refuse(update, context) or await _crypto_off(update, context):
        return
    args, texts = _args(context), context.services.texts
    if len(args) not in (1, 2):
        await _reply(update, texts.get(None, "admin_usage_confirm"))
        return
    invoice_id = args[0].upper()
    text, markup = await _confirm(context.services, invoice_id, args[1] if len(args) > 1 else None)
    await _reply(update, text, markup)


async def on_confirm(update: Update, context: BotContext) -> None:
    query = update.callback_query
    action = cb.parse(query.data if query else None)
    if query is None or not isinstance(action, cb.AdminConfirm) or await _refuse(update, context):
        return
    await answer(query)
    text, markup = await _confirm(context.services, action.invoice, None, force=action.force)
    await _send(query, text, markup)


async def _confirm(
    services: Services, invoice_id: str, deposit: str | None, *, force: bool = False
) -> tuple[str, InlineKeyboardMarkup | None]:
    texts = services.texts
    try:
        result = await services.payments.admin.confirm(invoice_id, deposit, force=force)
    except errors.PaymentsError as exc:
        second_tap = isinstance(exc, errors.InvalidTransition) and "second confirmation" in str(exc)
        if second_tap and deposit is None and not force:
            return await _ask_force(services, invoice_id)
        return texts.get(None, "admin_refused", reason=str(exc)), None
    until = texts.date(result.ends_at)
    return texts.get(None, "admin_confirmed", invoice=invoice_id, until=until), None


async def _ask_force(
    services: Services, invoice_id: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    view, texts = await services.payments.invoices.get(invoice_id), services.texts
    key = "admin_confirm_without_deposit"
    text = texts.get(None, key, invoice=view.id, plan=view.plan_name, customer=view.customer_id)
    return text, keyboards.force_confirm(texts, invoice_id)


async def reject(update: Update, context: BotContext) -> None:
    if await _refuse(update, context) or await _crypto_off(update, context):
        return
    args, texts = _args(context), context.services.texts
    if len(args) != 1:
        await _reply(update, texts.get(None, "admin_usage_reject"))
        return
    await _reply(update, await _reject(context.services, args[0].upper()))


async def on_reject(update: Update, context: BotContext) -> None:
    query = update.callback_query
    action = cb.parse(query.data if query else None)
    if query is None or not isinstance(action, cb.AdminReject) or await _refuse(update, context):
        return
    await answer(query)
    await _send(query, await _reject(context.services, action.invoice))


async def _reject(services: Services, invoice_id: str) -> str:
    texts = services.texts
    try:
        await services.payments.admin.reject(invoice_id)
    except errors.PaymentsError as exc:
        return texts.get(None, "admin_refused", reason=str(exc))
    return texts.get(None, "admin_rejected", invoice=invoice_id)


async def reassign(update: Update, context: BotContext) -> None:
    if await _refuse(update, context) or await _crypto_off(update, context):
        return
    args, services = _args(context), context.services
    texts = services.texts
    if len(args) != 2:
        await _reply(update, texts.get(None, "admin_usage_reassign"))
        return
    invoice_id = args[1].upper()
    result = await _attempt(update, services, services.payments.admin.reassign(args[0], invoice_id))
    if result is not None:
        until = texts.date(result.ends_at)
        await _reply(update, texts.get(None, "admin_reassigned", invoice=invoice_id, until=until))


async def refunded(update: Update, context: BotContext) -> None:
    if await _refuse(update, context) or await _crypto_off(update, context):
        return
    args, services = _args(context), context.services
    texts = services.texts
    if len(args) != 1:
        await _reply(update, texts.get(None, "admin_usage_refunded"))
        return
    if await _attempt(update, services, services.payments.admin.refunded(args[0])) is not None:
        await _reply(update, texts.get(None, "admin_refunded_done", deposit=args[0]))


_AMOUNT = re.compile(r"[0-9]{1,13}(?:[.,][0-9]{1,18})?")


async def simulate_deposit(update: Update, context: BotContext) -> None:
    """Test mode: a deposit to an invoice on the simulated exchange, then a poll at once (the
    minute poll settles it just as well). Refused, changing nothing, outside test mode."""
    if await _refuse(update, context):
        return
    args, services = _args(context), context.services
    texts = services.texts
    if not services.payments.simulated:  # test mode without coins: Stars only, nothing to pay
        key = "admin_crypto_off" if services.settings.simulated else "admin_simulate_live"
        await _reply(update, texts.get(None, key))
        return
    if len(args) not in (1, 2):
        await _reply(update, texts.get(None, "admin_usage_simulate"))
        return
    amount: Decimal | None = None
    if len(args) == 2:
        try:
            if not _AMOUNT.fullmatch(args[1]):
                raise InvalidOperation
            amount = Decimal(args[1].replace(",", "."))
        except InvalidOperation:
            await _reply(update, texts.get(None, "admin_simulate_bad_amount", amount=args[1]))
            return
    invoice_id = args[0].upper()
    try:
        record = await services.payments.simulate_deposit(invoice_id, amount)
    except errors.PaymentsError as exc:
        await _reply(update, texts.get(None, "admin_refused", reason=str(exc)))
        return
    view = await services.payments.invoices.get(invoice_id)
    await _reply(
        update,
        texts.get(
            None,
            "admin_simulated",
            amount=record.amount_text,
            coin=record.currency,
            network=view.network_label,
            invoice=invoice_id,
            tx=record.tx_id,
        ),
    )
    if not await services.poll.run():  # one is running already: ask for the next
        services.poll.request()


async def grant(update: Update, context: BotContext) -> None:
    if await _refuse(update, context):
        return
    args, services = _args(context), context.services
    texts = services.texts
    customer = _number(args[0], _TELEGRAM_ID) if len(args) in (2, 3) else None
    days = _number(args[2], _DAYS) if len(args) == 3 else None
    if customer is None or (len(args) == 3 and days is None):
        await _reply(update, texts.get(None, "admin_usage_grant"))
        return
    plan_id = args[1].lower()
    result = await _attempt(
        update, services, services.payments.admin.grant(customer, plan_id, days)
    )
    if result is None:
        return
    plan = services.catalog.plan(plan_id)
    await _reply(
        update,
        texts.get(
            None,
            "admin_granted",
            days=days if days is not None else (plan.days if plan else "?"),
            plan=plan.name if plan else plan_id,
            customer=customer,
            until=texts.date(result.ends_at),
        ),
    )


async def _one_customer(update: Update, context: BotContext, *, blocking: bool) -> int | None:
    """The one Telegram id /block or /unblock takes, or None after refusing or showing usage."""
    if await _refuse(update, context):
        return None
    args = _args(context)
    customer = _number(args[0], _TELEGRAM_ID) if len(args) == 1 else None
    if customer is None:
        usage = "admin_usage_block" if blocking else "admin_usage_unblock"
        await _reply(update, context.services.texts.get(None, usage))
    return customer


async def block(update: Update, context: BotContext) -> None:
    """Stop a customer who hoards amounts or abuses the shop; says what it frees and risks."""
    customer = await _one_customer(update, context, blocking=True)
    if customer is None:
        return
    services = context.services
    texts = services.texts
    try:
        result = await services.payments.admin.block(customer)
    except errors.PaymentsError as exc:
        await _reply(update, texts.get(None, "admin_refused", reason=str(exc)))
        return
    await _reply(
        update,
        texts.get(
            None,
            "admin_blocked",
            customer=customer,
            cancelled=result.cancelled,
            freed=result.freed,
        ),
    )


async def unblock(update: Update, context: BotContext) -> None:
    customer = await _one_customer(update, context, blocking=False)
    if customer is None:
        return
    done = await context.services.payments.admin.unblock(customer)
    key = "admin_unblocked" if done else "admin_not_blocked"
    await _reply(update, context.services.texts.get(None, key, customer=customer))


# --- reading -------------------------------------------------------------------------------------


async def stats(update: Update, context: BotContext) -> None:
    if await _refuse(update, context):
        return
    services = context.services
    texts = services.texts
    report = await services.payments.stats()
    windows = []
    for name, window in report.windows.items():
        plans = "".join(
            texts.get(
                None,
                "admin_stats_item",
                name=_plan_name(services, p),
                value=f"{n} × ${report_usd(window.usd_by_plan.get(p, Decimal(0)))}",
            )
            for p, n in sorted(window.count_by_plan.items())
        )
        coins = "".join(
            texts.get(None, "admin_stats_item", name=c, value=format(v.normalize(), "f"))
            for c, v in sorted(window.coin_by_currency.items())
        )
        stars = ""
        if window.stars.payments or services.catalog.stars_plans:
            stars = texts.get(
                None,
                "admin_stats_stars",
                payments=window.stars.payments,
                stars=window.stars.stars,
                refunds=window.stars.refunds,
                refunded=window.stars.refunded_stars,
                kept=window.stars.kept,
            )
        windows.append(
            texts.get(
                None,
                "admin_stats_window",
                window=name,
                count=window.paid_invoices,
                usd=report_usd(window.usd_total),
                plans=Html(plans),
                coins=Html(coins),
                stars=Html(stars),
            )
        )
    outbox = ", ".join(f"{k} {count_text(v)}" for k, v in sorted(report.outbox.items()) if v)
    await _reply(
        update,
        texts.get(
            None,
            "admin_stats",
            active=report.active_subscribers,
            unmatched=count_text(report.unmatched_deposits),
            outbox=outbox or "empty",
            windows=Html("\n".join(windows)),
        ),
    )


async def export(update: Update, context: BotContext) -> None:
    """/export [from [to]]: every payment of those UTC days (both included; by default the
    last 30) as a CSV document; bad dates get the usage and nothing else."""
    if await _refuse(update, context):
        return
    services = context.services
    args = _args(context)
    try:
        if len(args) > 2:
            raise BadRange("too many arguments")
        first, last = [*args, None, None][:2]
        days = export_range(first, last, now_ms=services.payments.okx_clock.now_ms())
    except BadRange:
        await _reply(update, services.texts.get(None, "admin_export_usage"))
        return
    parts: list[str] = []
    count = 0
    async for chunk in services.payments.export.chunks(days.from_ms, days.to_ms):
        parts.append(to_csv(chunk, header=not parts))
        count += len(chunk)
    first, last = days.first.isoformat(), days.last.isoformat()
    message = update.effective_message
    if not count or message is None:
        await _reply(update, services.texts.get(None, "admin_export_empty", first=first, last=last))
        return
    await message.reply_document(
        "".join(parts).encode(),
        filename=days.file_name,
        caption=services.texts.get(None, "admin_export", count=count, first=first, last=last),
    )


def report_usd(value: Decimal) -> str:
    return f"{value:.2f}"


def _plan_name(services: Services, plan_id: str) -> str:
    plan = services.catalog.plan(plan_id)
    return plan.name if plan else plan_id


async def user(update: Update, context: BotContext) -> None:
    if await _refuse(update, context):
        return
    args, services = _args(context), context.services
    texts = services.texts
    customer_id = _number(args[0], _TELEGRAM_ID) if len(args) == 1 else None
    if customer_id is None:
        await _reply(update, texts.get(None, "admin_usage_user"))
        return
    overview = await services.payments.admin.user(customer_id)
    if overview is None:
        await _reply(update, texts.get(None, "admin_user_unknown", customer=args[0]))
        return
    now = services.payments.okx_clock.now_ms()
    subs = "\n".join(
        texts.get(
            None,
            "status_line" if is_active(s, now) else "status_expired_line",
            plan=_plan_name(services, s.plan_id),
            until=texts.date(s.ends_at),
            days_left=days_left(s, now),  # rounded up, as the customer's /status shows
        )
        for s in overview.subscriptions
    )
    invoices = "\n".join(_invoice_line(services, i) for i in overview.invoices)
    stars = await _stars_of(services, customer_id)
    customer = overview.customer
    await _reply(
        update,
        texts.get(
            None,
            "admin_user",
            customer=customer.id,
            language=customer.language or "-",
            reachable=texts.get(
                None, "admin_unreachable" if customer.unreachable else "admin_reachable"
            ),
            since=texts.date(customer.created_at),
            open=overview.open_invoices,
            subscriptions=Html(subs),
            invoices=Html(invoices),
            stars=Html(stars),
        ),
    )


async def _stars_of(services: Services, customer_id: int) -> str:
    """The customer's Telegram Stars: whether each subscription renews, and the newest charges
    (empty when they never paid in Stars and none is sold)."""
    texts, rail = services.texts, services.payments.stars
    payments = await rail.payments_of(customer_id, limit=10)
    if not payments and not services.catalog.stars_plans:
        return ""
    subs = "".join(
        texts.get(
            None,
            "admin_user_stars_renews" if s.renewal_on else "admin_user_stars_renewal_off",
            plan=_plan_name(services, s.plan_id),
            stars=s.stars,
            order=s.order_id,
        )
        for s in await rail.subscriptions_of(customer_id)
    )
    lines = "\n".join(
        texts.get(
            None,
            "admin_user_stars_line",
            payment=p.id,
            plan=_plan_name(services, p.plan_id),
            stars=p.stars,
            date=texts.date(p.paid_at),
            order=p.order_id,
            renewal=texts.get(None, "admin_user_stars_renewal") if p.renewal else "",
            refunded=(
                texts.get(None, "admin_user_stars_refunded", date=texts.date(p.refunded_at))
                if p.refunded_at is not None
                else ""
            ),
        )
        for p in payments
    )
    return texts.get(
        None,
        "admin_user_stars",
        subscriptions=Html(subs),
        payments=Html(lines or texts.get(None, "admin_user_stars_none")),
    )
