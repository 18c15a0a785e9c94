"""The bots the conversation benchmark measures, each started in this process against the fakes
of a child process (:mod:`bench._conv_fake`): subsbot itself (long polling or webhook) and the
baselines, minimal python-telegram-bot bots on the same fake.

- ``echo-default``: PTB's defaults (one update at a time, no rate limiter). A text is echoed
  with one inline button; a button press is answered and the message edited to echo the data.
- ``echo-same``: the same echo with subsbot's settings (ChatOrderedProcessor(16), HTML
  Defaults, the RetryingRateLimiter unless ``rate_limit`` is off): the fair yardstick for the
  CPU of a menu step.
- ``qr-bare``: like ``echo-same``, but a press is answered with a QR photo rendered by
  qrcode's default ``qrcode.make(payload)`` PNG (the yardstick for the invoice step).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import qrcode
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from bench._conv_fake import Action, Script
from bot.app import build_application
from bot.config import load_settings
from bot.jobs import Timings
from bot.ordering import ChatOrderedProcessor
from bot.requests import RetryingRateLimiter
from bot.runner import running
from bot.serve import serving

App = Application[Any, Any, Any, Any, Any, Any]
KINDS = ("subsbot", "echo-default", "echo-same", "qr-bare")
# no job runs during a measurement: no deposit poll, outbox or reminders
QUIET = Timings(outbox=3600, subscriptions=3600, directory=3600, first_poll=3600)
WEBHOOK_SECRET = "bench-secret_0123456789"
TRC20_ADDRESS = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"

SUBSBOT: Script = [
    [Action("text", "/start", "start", "Pro")],
    [Action("press", "Pro", "plan", "Which coin")],
    [Action("press", "USDT", "coin", "Which network")],
    [Action("press", "Tron (TRC20)", "invoice", "Send exactly")],
]
# two commands back to back, then the menus: the replies must come in the order of the updates
ORDERED: Script = [
    [Action("text", "/start", "start", "Pro"), Action("text", "/help", "help", "How it works")],
    *SUBSBOT[1:],
]
ECHO: Script = [
    [Action("text", "/start", "text", "/start")],
    *([Action("press", "again", "press", "again")] for _ in range(3)),
]
QR: Script = [[Action("text", "/start", "text", "/start")], [Action("press", "QR", "qr")]]
SCRIPTS = {"subsbot": SUBSBOT, "echo-default": ECHO, "echo-same": ECHO, "qr-bare": QR}


def _button(label: str, data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)]])


async def _echo_text(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message is not None and update.effective_message.text is not None:
        text = update.effective_message.text
        await update.effective_message.reply_text(text, reply_markup=_button("again", "again"))


async def _echo_press(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is not None:
        await query.answer()
        await query.edit_message_text(
            f"{query.data} #{update.update_id}", reply_markup=_button("again", "again")
        )


async def _qr_text(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message is not None and update.effective_message.text is not None:
        text = update.effective_message.text
        await update.effective_message.reply_text(text, reply_markup=_button("QR", "qr"))


async def _qr_press(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None or query.message is None:
        return
    await query.answer()
    out = io.BytesIO()
    qrcode.make(TRC20_ADDRESS).save(out, format="PNG")  # qrcode's default image, in the loop
    await query.get_bot().send_photo(
        query.message.chat.id, photo=out.getvalue(), caption=f"{update.update_id} USDT"
    )


def baseline(kind: str, env: dict[str, str], *, rate_limit: bool = True) -> App:
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = ApplicationBuilder()
    builder = builder.token(env["TELEGRAM_BOT_TOKEN"])
    builder = builder.base_url(env["TELEGRAM_API_URL"] + "/bot")
    if kind != "echo-default":
        builder = builder.concurrent_updates(ChatOrderedProcessor(16))
        if rate_limit:
            builder = builder.rate_limiter(RetryingRateLimiter())
        builder = builder.defaults(
            Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(True))
        )
    application: App = builder.build()
    text, press = (_qr_text, _qr_press) if kind == "qr-bare" else (_echo_text, _echo_press)
    application.add_handler(MessageHandler(filters.TEXT, text))
    application.add_handler(CallbackQueryHandler(press))
    return application


def subsbot_env(fake: dict[str, str], tmp: Path) -> dict[str, str]:
    return fake | {
        "ADMIN_IDS": "900",
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "PAYMENT_POLL_SECONDS": "3600",
    }


@contextlib.asynccontextmanager
async def bot(
    kind: str, fake: dict[str, str], *, webhook: bool = False, rate_limit: bool = True
) -> AsyncIterator[App]:
    """``kind`` running against the fakes whose settings are ``fake``, until the block ends."""
    if kind != "subsbot":
        application = baseline(kind, fake, rate_limit=rate_limit)
        async with running(application, poll_timeout=10):
            yield application
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = subsbot_env(fake, Path(tmp))
        if not webhook:
            app = build_application(load_settings(env), timings=QUIET, rate_limit=rate_limit)
            async with running(app, poll_timeout=10) as application:
                yield application
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.setblocking(False)
        port = int(sock.getsockname()[1])
        env |= {"HOST": "127.0.0.1", "PORT": str(port), "WEBHOOK_SECRET": WEBHOOK_SECRET}
        env |= {"WEBHOOK_URL": f"http://127.0.0.1:{port}"}
        settings = load_settings(env)
        async with serving(settings, timings=QUIET, sock=sock, rate_limit=rate_limit) as served:
            yield served.application


async def idle(application: App) -> None:
    """Until the bot has no update queued or running (polled every 2 ms)."""
    processor = application.update_processor
    for _ in range(2):
        while application.update_queue.qsize() or processor.current_concurrent_updates:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.002)
