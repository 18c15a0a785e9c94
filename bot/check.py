"""``python -m bot check``: is everything set up? One line per check, then ``ready`` or
``N problem(s)`` (exit code 1).

The settings (already loaded: a malformed one stopped the command before this), ADMIN_IDS, the
webhook settings when WEBHOOK_URL is set, Telegram's ``getMe`` (which bot the token belongs to)
and the bot's rights in the plans' paid chats, then what ``python -m payments check`` checks
(:func:`payments.ops.setup_check.check_setup`): the plans file, the database, OKX's clock, the API
key's
permissions, every offered network, the prices and the deposit addresses, how many merchant
webhook URLs are set, and webhook deliveries still pending to URLs no longer among them. No
secret is printed: every line is scrubbed of the token, the OKX key, secret and passphrase, the
webhook secrets, the API token and the database password.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.request import HTTPXRequest

from bot.access import chat_rights
from bot.config import Settings, mask_url
from bot.logs import RedactSecrets, secrets_of
from bot.serve import bind, http_port
from bot.web.webhook import webhook_url
from payments.catalog import load_catalog
from payments.errors import ConfigError
from payments.ops import OkxAccess, Report, check_setup, url_password

TELEGRAM_TIMEOUT_S = 10.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
TELEGRAM_WEBHOOK_PORTS = {443, 80, 88, 8443}


async def run_check(settings: Settings) -> int:
    """Print the report to stdout; 0 when ready, 1 on any problem."""
    secrets = [*secrets_of(settings), url_password(settings.database_url) or ""]
    report = Report(secrets=secrets, echo=lambda line: print(line, flush=True))
    keys = settings.okx_keys
    with quiet_logging(report.secrets):
        check_settings(settings, report)
        await check_telegram(settings, report)
        await check_setup(
            report,
            # no OKX keys: a shop selling for Telegram Stars only, OKX is not tried at all
            okx=None if keys is None else OkxAccess(*keys, base_url=settings.okx_api_url),
            database_url=settings.database_url,
            plans_file=settings.plans_file,
            allow_unsafe=settings.allow_unsafe_api_key,
            settings=settings.payment_settings(),
            webhook_urls=settings.merchant_webhook_urls,
            simulated=settings.simulated,
        )
    print(report.verdict, flush=True)
    return report.exit_code


def check_settings(settings: Settings, report: Report) -> None:
    """What the settings alone can tell: admins, database URL (masked), the mode."""
    count = len(settings.admin_ids)
    report.ok(f"ADMIN_IDS: {count} admin{'s' if count != 1 else ''}")
    report.ok(f"DATABASE_URL: {mask_url(settings.database_url)}")
    hooks = settings.merchant_webhook_urls  # hosts only: a path or query may carry a token
    hosts = ", ".join(urlsplit(url).hostname or "?" for url in hooks)
    report.ok(
        f"MERCHANT_WEBHOOK_URLS: {len(hooks)} URL(s) ({hosts})"
        if hooks
        else "MERCHANT_WEBHOOK_URLS: not set (no webhooks to your backend)"
    )
    check_mini_app(settings.mini_app_url, report)
    if settings.allow_unsafe_api_key:
        report.warn(
            "ALLOW_UNSAFE_API_KEY is set: an OKX key that can trade or withdraw is accepted"
        )
    check_port(settings, report)
    if not settings.webhook_url:
        report.ok("mode: long polling (WEBHOOK_URL is not set)")
        return
    check_webhook(settings.webhook_url, report)


def check_port(settings: Settings, report: Report) -> None:
    """HOST:PORT can be listened on (the bot binds it first thing at start-up)."""
    port = http_port(settings)
    if port is None:
        return
    try:
        bind(settings.host, port).close()
    except ConfigError as exc:  # "PORT: cannot listen on 0.0.0.0:8080 (Address already in use)"
        report.fail(f"{exc}: is the bot already running? stop it or set another PORT")
        return
    report.ok(f"PORT: {settings.host}:{port} is free")


def check_mini_app(url: str | None, report: Report) -> None:
    """The Mini App the chat opens (WEBAPP_URL, else PUBLIC_URL's or WEBHOOK_URL's /app)."""
    if url is None:
        report.ok("Mini App: none (WEBAPP_URL, PUBLIC_URL and WEBHOOK_URL are not set)")
    elif urlsplit(url).scheme != "https" and (urlsplit(url).hostname or "") not in LOCAL_HOSTS:
        report.warn(
            f"Mini App: {url} is not https: Telegram refuses it, and the chat sells without it"
        )
    else:
        report.ok(f"Mini App: {url} (the menu button and /start open it)")


def check_webhook(url: str, report: Report) -> None:
    """Settings already refused a URL that is not http(s) and a secret Telegram would refuse."""
    parts = urlsplit(url)
    local = (parts.hostname or "") in LOCAL_HOSTS
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme != "https" and not local:
        report.warn(
            f"WEBHOOK_URL: {webhook_url(url)} is not https: Telegram only delivers to https"
        )
    elif port not in TELEGRAM_WEBHOOK_PORTS and not local:
        report.warn(
            f"WEBHOOK_URL: Telegram delivers only to ports 443, 80, 88 and 8443, not {port} "
            "(the public URL's port, not PORT)"
        )
    else:
        report.ok(f"mode: webhook at {webhook_url(url)}")


async def check_telegram(settings: Settings, report: Report) -> None:
    """``getMe``: which bot the token belongs to, or why Telegram did not say."""
    bot = Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.bot_api_base_url,
        base_file_url=settings.bot_file_base_url,
        request=HTTPXRequest(
            connect_timeout=TELEGRAM_TIMEOUT_S,
            read_timeout=TELEGRAM_TIMEOUT_S,
            write_timeout=TELEGRAM_TIMEOUT_S,
        ),
    )
    api = settings.telegram_api_url
    try:
        async with bot:
            me = bot.bot
            await check_chats(bot, settings, report)
    except InvalidToken:
        report.fail(
            "TELEGRAM_BOT_TOKEN was refused by Telegram"
            f"{'' if api == 'https://api.telegram.org' else f' (at {api})'}"
            " (copy it again from @BotFather)"
        )
        return
    except NetworkError as exc:  # includes time-outs
        report.fail(f"TELEGRAM_API_URL: cannot reach the Bot API at {api} ({exc})")
        return
    except TelegramError as exc:
        report.fail(f"Telegram: getMe failed at {api} ({exc})")
        return
    where = "" if api == "https://api.telegram.org" else f" via {api}"
    report.ok(f"Telegram: the token belongs to @{me.username} ({me.first_name}){where}")


async def check_chats(bot: Bot, settings: Settings, report: Report) -> None:
    """The paid chats of the plans file: is the bot an administrator that can invite and ban?
    (A plans file that does not load is reported by the plans check.)"""
    try:
        chats = load_catalog(settings.plans_file).chats
    except ConfigError:
        return
    for rights in await chat_rights(bot, chats):
        (report.fail if rights.problem else report.ok)(f"paid {rights.line()}")


@contextmanager
def quiet_logging(secrets: Iterable[str] = ()) -> Iterator[None]:
    """Warnings and errors only, on stderr, scrubbed of ``secrets``; restored afterwards."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    # "skipped: maximum number of running instances reached" when a poll outlasts the interval
    # (on a busy machine): the overlap is skipped on purpose, as bot.logs.configure says
    scheduler = logging.getLogger("apscheduler")
    level = scheduler.level
    scheduler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        scheduler.setLevel(level)
        root.removeHandler(handler)
