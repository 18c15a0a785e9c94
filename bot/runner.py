"""Start and stop the Application the way ``run_polling`` does, for callers that own the event
loop (tests, the demo, the webhook server): initialize, ``post_init``, start, and the reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Update

from bot.services import BotApplication


@asynccontextmanager
async def running(
    application: BotApplication, *, polling: bool = True, poll_timeout: int = 10
) -> AsyncIterator[BotApplication]:
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        if polling:
            assert application.updater is not None
            await application.updater.start_polling(
                poll_interval=0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES
            )
        await application.start()
        try:
            yield application
        finally:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
