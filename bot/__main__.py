"""``python -m bot`` (or ``subsbot``): run the bot with long polling, settings from the
environment / .env. A setting, database or token that does not work stops start-up with one
line naming it, never with a secret in it."""

from __future__ import annotations

import logging
import sys

from telegram import Update
from telegram.error import InvalidToken, NetworkError

from bot import logs
from bot.app import build_application
from bot.config import Settings, load_settings
from payments.errors import PaymentsError

log = logging.getLogger("bot")


def main() -> int:
    try:
        settings = load_settings()
    except PaymentsError as exc:
        print(f"subsbot: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings)
    if settings.webhook_url:
        log.warning("WEBHOOK_URL is set, but this release serves long polling only; it is ignored")
    try:
        build_application(settings).run_polling(allowed_updates=Update.ALL_TYPES)
    except Exception as exc:
        problem = startup_problem(exc, settings)
        if problem is None:
            log.exception("subsbot stopped on an unexpected error")  # logs redact secrets
            return 1
        print(f"subsbot: {problem}", file=sys.stderr)
        return 2
    return 0


def startup_problem(exc: Exception, settings: Settings) -> str | None:
    """One line for what a merchant can fix (secrets removed); None for anything else."""
    redact = logs.RedactSecrets(logs.secrets_of(settings)).redact
    if isinstance(exc, InvalidToken):
        return "TELEGRAM_BOT_TOKEN was refused by Telegram (copy it again from @BotFather)"
    if isinstance(exc, NetworkError):
        return redact(
            f"TELEGRAM_API_URL: cannot reach the Bot API at {settings.telegram_api_url} ({exc})"
        )
    if isinstance(exc, PaymentsError):
        return redact(str(exc))
    return None


if __name__ == "__main__":
    sys.exit(main())
