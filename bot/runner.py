"""Start and stop the Application the way ``run_polling`` does, for callers that own the event
loop (tests, the demo, the webhook server): initialize, ``post_init``, start, and the reverse;
once stopping begins no job starts.

A Bot API call that times out or fails with a 5xx while starting (getMe, the bootstrap
deleteWebhook) is tried again a few times, a second or so apart: one slow answer from Telegram
must not stop the bot. A refused token is not retried, and a Bot API that stays unreachable
still stops start-up, with one line, a few seconds later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Update
from telegram.error import NetworkError

from bot.services import BotApplication

log = logging.getLogger(__name__)

START_RETRIES = 3


async def _initialize(application: BotApplication) -> None:
    for attempt in range(START_RETRIES + 1):
        try:
            await application.initialize()
            return
        except NetworkError as exc:  # time-outs, 5xx, refused connections (not a bad token)
            if attempt == START_RETRIES:
                raise
            log.warning("Telegram did not answer while starting (%s); trying again", exc)
            await asyncio.sleep(0.5 * (attempt + 1))


def _no_new_jobs(application: BotApplication) -> None:
    """Stopping has begun: no job starts from here on. The jobs running go on, and stop() waits
    for them; stopping the updater first (its last getUpdates) must not leave a window in which
    a job starts against services about to be closed."""
    queue = application.job_queue
    if queue is not None and queue.scheduler.running:
        queue.scheduler.pause()


@asynccontextmanager
async def running(
    application: BotApplication, *, polling: bool = True, poll_timeout: int = 10
) -> AsyncIterator[BotApplication]:
    await _initialize(application)
    try:
        if application.post_init is not None:
            await application.post_init(application)
        if polling:
            assert application.updater is not None
            await application.updater.start_polling(
                poll_interval=0,
                timeout=poll_timeout,
                allowed_updates=Update.ALL_TYPES,
                bootstrap_retries=START_RETRIES,
            )
        await application.start()
        try:
            yield application
        finally:
            _no_new_jobs(application)
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
