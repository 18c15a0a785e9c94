"""The command line (also the console script ``subsbot``)::

    python -m bot run     # long polling, or the webhook service when WEBHOOK_URL is set
    python -m bot check   # is everything set up? settings, plans, database, Telegram, OKX
    python -m bot demo    # a whole purchase offline, against fakes of Telegram and OKX
    python -m bot migrate-to postgresql://...  # copy the shop from DATABASE_URL to another database

``python -m bot`` alone means ``run``. Settings come from the environment and ``.env``. A
setting, database, port or token that does not work stops start-up with one line naming it,
never with a secret in it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence

from telegram.error import InvalidToken, NetworkError

from bot import logs
from bot.config import Settings, load_settings
from payments.errors import PaymentsError

log = logging.getLogger("bot")

COMMANDS = {
    "run": "run the bot: long polling, or the webhook service when WEBHOOK_URL is set",
    "check": "check the settings, plans, database, Telegram and OKX; non-zero on any problem",
    "demo": "a whole purchase offline against fake Telegram and OKX servers (no keys needed)",
    "migrate-to": "copy every row of the shop from DATABASE_URL to another database (stop the"
    " bot first); the target must be empty",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="subsbot", description="Telegram storefront for crypto subscriptions paid into OKX"
    )
    sub = parser.add_subparsers(dest="command", metavar="{run,check,demo,migrate-to}")
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text, description=text)
    demo = sub.choices["demo"]
    demo.add_argument(
        "--image",
        default=None,
        help="where to write the invoice image (default: subsbot-demo-invoice.png in the"
        " temporary directory, $TMPDIR or /tmp: the working directory may be read-only)",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the fakes and the Mini App's HTTP server up after the demo, until Ctrl-C",
    )
    demo.add_argument(
        "--simulated",
        action="store_true",
        help="rehearse test mode (OKX_MODE=simulated): no fake OKX, every screen says TEST,"
        " and the admin pays the invoice with /simulate_deposit",
    )
    migrate = sub.choices["migrate-to"]
    migrate.add_argument(
        "target",
        metavar="URL",
        help="the database to copy into, e.g. postgresql://user:password@host/db (or sqlite:///file)",
    )
    migrate.add_argument(
        "--force",
        action="store_true",
        help="copy even though a replica's lease is still live (only when the bot has stopped)",
    )
    args = parser.parse_args(argv)
    command = args.command or "run"
    if command == "demo":
        from bot.demo import default_image, run_demo

        return run_demo(
            image=args.image or str(default_image()), keep=args.keep, simulated=args.simulated
        )
    try:
        settings = load_settings()
    except PaymentsError as exc:
        print(f"subsbot: {exc}", file=sys.stderr)
        return 2
    if command == "check":
        from bot.check import run_check

        return asyncio.run(run_check(settings))
    if command == "migrate-to":
        return migrate_to(settings, args.target, force=args.force)
    logs.configure(settings)
    return run(settings)


def run(settings: Settings) -> int:
    from bot.serve import run as serve

    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        problem = startup_problem(exc, settings)
        if problem is None:
            log.exception("subsbot stopped on an unexpected error")  # logs redact secrets
            return 1
        print(f"subsbot: {problem}", file=sys.stderr)
        return 2
    return 0


def migrate_to(settings: Settings, target: str, *, force: bool) -> int:
    """``migrate-to``: one line per table and a total; one line and exit code 2 on a refusal."""
    from payments import copy_database

    redact = logs.RedactSecrets(
        [*logs.secrets_of(settings), *logs.database_passwords(target)]
    ).redact
    print(
        "subsbot: the bot must be stopped (every replica) while its database is copied",
        file=sys.stderr,
    )
    now_ms = time.time_ns() // 1_000_000
    try:
        report = asyncio.run(
            copy_database(settings.database_url, target, now_ms=now_ms, force=force, progress=print)
        )
    except PaymentsError as exc:
        print(f"subsbot: migrate-to: {redact(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database's own error (unreachable, refused, a bad value)
        cause = getattr(exc, "orig", None) or exc  # the driver's own error, not its wrapper
        problem = redact(f"{type(cause).__name__}: {cause}".splitlines()[0])
        print(f"subsbot: migrate-to failed, nothing committed: {problem}", file=sys.stderr)
        return 1
    print(f"target: {report.migration}")
    print(report.lines()[-1])
    print("next: set DATABASE_URL to the target's URL and start the bot")
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
