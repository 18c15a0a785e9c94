"""Admin commands for the merchant webhooks (ADMIN_IDS only): ``/webhooks`` shows deliveries per
URL and the latest failures, and what is still pending to URLs no longer configured;
``/webhooks move <old id> <new id>`` sends that to a configured URL instead, ``/webhooks drop
<old id>`` gives it up; ``/redeliver <delivery id>`` or ``/redeliver failed`` sends again.
URLs are shown by scheme, host and path only (a query string may carry a token).

The queries live in :mod:`payments.delivery.webhooks`; this module only formats. Anyone else gets
the
same refusal as every admin command, and nothing changes.
"""

from __future__ import annotations

import re

from telegram import Update

from bot.handlers.common import count_text, refuse_non_admin
from bot.services import BotContext
from bot.texts import Html, Texts
from payments.delivery import GoneUrl, Problem, UnknownUrl, UrlOverview

_DELIVERY_ID = re.compile(r"#?([0-9]{1,12})")  # ASCII digits only
_URL_ID = re.compile(r"[0-9a-fA-F]{8}")  # as /webhooks shows them


async def _reply(update: Update, text: str) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text)


async def overview(update: Update, context: BotContext) -> None:
    """``/webhooks``: per URL, how many were delivered, are pending or failed; the last failures;
    what is pending to URLs that are gone. ``/webhooks move`` and ``/webhooks drop``."""
    if await refuse_non_admin(update, context):
        return
    services = context.services
    texts = services.texts
    args = [a.strip() for a in (context.args or []) if a.strip()]
    verb = args[0].lower() if args else ""
    ids = args[1:]
    well_formed = (
        (not args)
        or (verb == "move" and len(ids) == 2 and all(_URL_ID.fullmatch(i) for i in ids))
        or (verb == "drop" and len(ids) == 1 and _URL_ID.fullmatch(ids[0]) is not None)
    )
    if not well_formed:
        await _reply(update, texts.get(None, "admin_usage_webhooks"))
        return
    sender = services.webhooks
    if sender is None:
        await _reply(update, texts.get(None, "webhooks_none"))
        return
    if verb:
        await _change(update, context, verb, [i.lower() for i in ids])
        return
    gone = await sender.gone()
    if not sender.urls:
        lines = [texts.get(None, "webhooks_none")]
        if gone:
            lines.append("")
            lines.extend(_gone_lines(texts, gone))
        await _reply(update, "\n".join(lines))
        return
    urls = await sender.overview()
    lines = [texts.get(None, "webhooks_title")]
    for url in urls:
        lines.append("")
        lines.extend(_url_lines(texts, url))
    lines.append("")
    lines.append(texts.get(None, "webhooks_hint"))
    if gone:
        lines.append("")
        lines.extend(_gone_lines(texts, gone))
    await _reply(update, "\n".join(lines))


async def _change(update: Update, context: BotContext, verb: str, ids: list[str]) -> None:
    """``move <old id> <new id>`` or ``drop <old id>`` (already checked for form)."""
    services = context.services
    texts = services.texts
    sender = services.webhooks
    assert sender is not None
    gone = {g.id: g.url for g in await sender.gone()}
    configured = {u.id: u.url for u in await sender.overview(limit=0)}
    try:
        if verb == "move":
            moved, dropped = await sender.move(ids[0], ids[1])
            old, new = gone.get(ids[0], ids[0]), configured.get(ids[1], ids[1])
            reply = texts.get(None, "webhooks_moved", moved=moved, old=old, new=new)
            if dropped:
                reply += texts.get(None, "webhooks_moved_known", dropped=dropped, new=new)
        else:
            count = await sender.drop(ids[0])
            reply = texts.get(None, "webhooks_dropped", count=count, old=gone.get(ids[0], ids[0]))
    except UnknownUrl as exc:
        key = "webhooks_unknown_old" if exc.which == "old" else "webhooks_unknown_new"
        reply = texts.get(None, key, id=exc.url_id)
    await _reply(update, reply)


def _gone_lines(texts: Texts, gone: list[GoneUrl]) -> list[str]:
    lines = [texts.get(None, "webhooks_gone_title")]
    for url in gone:
        lines.append(
            texts.get(
                None,
                "webhooks_gone_url",
                url=url.url,
                id=url.id,
                pending=url.pending,
                since=texts.date(url.oldest_at),
            )
        )
    lines.append(texts.get(None, "webhooks_gone_hint"))
    return lines


def _url_lines(texts: Texts, url: UrlOverview) -> list[str]:
    head = texts.get(
        None,
        "webhooks_url",
        url=url.url,
        id=url.id,
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
    if services.webhooks is None or not services.webhooks.urls:
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
