"""Admin commands for the merchant webhooks (ADMIN_IDS only): ``/webhooks`` shows deliveries per
URL and the latest failures; ``/redeliver <delivery id>`` or ``/redeliver failed`` sends again.

The queries live in :mod:`payments.webhooks`; this module only formats. Anyone else gets the
same refusal as every admin command, and nothing changes.
"""

from __future__ import annotations

import re

from telegram import Update

from bot.handlers.common import count_text, refuse_non_admin
from bot.services import BotContext
from bot.texts import Html, Texts
from payments.webhooks import Problem, UrlOverview

_DELIVERY_ID = re.compile(r"#?([0-9]{1,12})")  # ASCII digits only


async def _reply(update: Update, text: str) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text)


async def overview(update: Update, context: BotContext) -> None:
    """``/webhooks``: per URL, how many were delivered, are pending or failed; the last failures."""
    if await refuse_non_admin(update, context):
        return
    services = context.services
    texts = services.texts
    if services.webhooks is None:
        await _reply(update, texts.get(None, "webhooks_none"))
        return
    urls = await services.webhooks.overview()
    lines = [texts.get(None, "webhooks_title")]
    for url in urls:
        lines.append("")
        lines.extend(_url_lines(texts, url))
    lines.append("")
    lines.append(texts.get(None, "webhooks_hint"))
    await _reply(update, "\n".join(lines))


def _url_lines(texts: Texts, url: UrlOverview) -> list[str]:
    head = texts.get(
        None,
        "webhooks_url",
        url=url.url,
        delivered=count_text(url.delivered),
        pending=count_text(url.pending),
        failed=count_text(url.failed),
    )
    return [head, *(_problem_line(texts, p) for p in url.problems)]


def _problem_line(texts: Texts, problem: Problem) -> str:
    if problem.last_error:
        outcome = problem.last_error
    elif problem.last_status is not None:
        outcome = f"HTTP {problem.last_status}"
    else:
        outcome = "-"
    if problem.next_attempt_at is None:
        when = texts.get(None, "webhooks_gave_up")
    else:
        when = texts.get(None, "webhooks_next", when=texts.date(problem.next_attempt_at))
    return texts.get(
        None,
        "webhooks_problem",
        delivery=problem.delivery_id,
        type=problem.event_type,
        event=problem.event_id,
        attempts=problem.attempts,
        outcome=outcome,
        when=Html(when),
    )


async def redeliver(update: Update, context: BotContext) -> None:
    """``/redeliver <delivery id>`` (any status, even delivered) or ``/redeliver failed``."""
    if await refuse_non_admin(update, context):
        return
    services = context.services
    texts = services.texts
    args = [a.strip() for a in (context.args or []) if a.strip()]
    match = _DELIVERY_ID.fullmatch(args[0]) if len(args) == 1 else None
    every_failed = len(args) == 1 and args[0].lower() == "failed"
    if match is None and not every_failed:
        await _reply(update, texts.get(None, "admin_usage_redeliver"))
        return
    if services.webhooks is None:
        await _reply(update, texts.get(None, "webhooks_none"))
        return
    if every_failed:
        count = await services.webhooks.redeliver(None)
        await _reply(update, texts.get(None, "redeliver_failed", count=count))
        return
    assert match is not None
    delivery_id = int(match[1])
    if await services.webhooks.redeliver(delivery_id):
        await _reply(update, texts.get(None, "redeliver_one", delivery=delivery_id))
    else:
        await _reply(update, texts.get(None, "redeliver_unknown", delivery=delivery_id))
