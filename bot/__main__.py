"""``python -m bot``: run the bot with long polling (settings from the environment / .env)."""

from __future__ import annotations

import logging
import sys

from telegram import Update

from bot import logs
from bot.app import build_application
from bot.config import load_settings
from payments.errors import PaymentsError


def main() -> int:
    try:
        settings = load_settings()
    except PaymentsError as exc:
        print(f"subsbot: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings)
    if settings.webhook_url:
        logging.getLogger("bot").warning(
            "WEBHOOK_URL is set, but this release serves long polling only; it is ignored"
        )
    application = build_application(settings)
    try:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    except PaymentsError as exc:
        print(f"subsbot: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
