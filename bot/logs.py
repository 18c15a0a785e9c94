"""Logging set-up: one format, quiet chatty libraries, and every secret redacted from every
record before it is written (a Bot API URL contains the token; a traceback may quote a header)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from bot.config import Settings

REDACTED = "***"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # longest first, so a secret that contains another is redacted whole
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def secrets_of(settings: Settings) -> list[str]:
    values = [
        settings.telegram_bot_token,
        settings.okx_api_key,
        settings.okx_secret_key,
        settings.okx_passphrase,
        settings.webhook_secret,
        settings.api_token,
        settings.merchant_webhook_secret,
    ]
    secrets = [v.get_secret_value() for v in values if v is not None]
    return secrets + database_passwords(settings.database_url)


def database_passwords(url: str) -> list[str]:
    """The password in DATABASE_URL as written and percent-decoded (a driver's error may quote
    either); none for a URL without one or one that does not parse."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


def configure(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # httpx logs every request URL at INFO, and a Bot API URL contains the token
    for chatty in ("httpx", "httpcore", "aiosqlite", "alembic", "asyncio"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # "skipped: maximum number of running instances reached" each time a poll outlasts the
    # interval; the poll gate skips the overlap on purpose, and job errors reach PTB's handler
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
