"""``python -m tests.soak.bot_process``: the bot as ``python -m bot run`` starts it (settings
from the environment, the same logging, serving until SIGTERM), with the soak's job timings.

The bot's settings have no knob for the Stars ledger job's interval (``Timings.stars_ledger``,
ten minutes): a soak lasts a few minutes, so a payment whose update was lost would never be
found in Telegram's ledger within it. Every other timing is the bot's own (the deposit poll is
``PAYMENT_POLL_SECONDS``, set by the harness).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import replace

from bot import logs
from bot.__main__ import startup_problem
from bot.config import Settings, load_settings
from bot.jobs import Timings
from bot.serve import serving
from payments.errors import PaymentsError

STARS_LEDGER_S = 3.0  # the ledger is read every few seconds, not every ten minutes
TIMINGS = replace(Timings(), stars_ledger=STARS_LEDGER_S)

log = logging.getLogger("bot.serve")


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with serving(settings, timings=TIMINGS):
        log.info("subsbot is running (%s)", "webhook" if settings.webhook_url else "long polling")
        await stop.wait()
        log.info("stopping")


def main() -> int:
    try:
        settings = load_settings()
    except PaymentsError as exc:
        print(f"subsbot: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings)
    try:
        asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        problem = startup_problem(exc, settings)
        if problem is None:
            log.exception("subsbot stopped on an unexpected error")
            return 1
        print(f"subsbot: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
