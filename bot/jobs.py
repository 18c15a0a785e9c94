"""JobQueue jobs. Each logs and reports its errors (to the error handler, via PTB) and runs again
at its next interval; an overlapping run is skipped (APScheduler's max_instances=1, and the
poll gate's lock for the extra polls "Check payment" asks for). Names are the keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram.ext import JobQueue

from bot.services import BotContext

log = logging.getLogger(__name__)

POLL = "poll-deposits"
OUTBOX = "send-outbox"
SUBSCRIPTIONS = "subscriptions"
DIRECTORY = "refresh-directory"


@dataclass(frozen=True)
class Timings:
    """Job intervals in seconds (the poll interval is PAYMENT_POLL_SECONDS)."""

    outbox: float = 2.0
    subscriptions: float = 60.0
    directory: float = 3600.0
    first_poll: float = 1.0


async def poll_deposits(context: BotContext) -> None:
    """Poll OKX and expire what ran out (PaymentCycle), then send what it caused."""
    await context.services.poll.run()


async def send_outbox(context: BotContext) -> None:
    report = await context.services.sender.send_due()
    if report.retried or report.unreachable:
        log.info(
            "outbox: %d sent, %d to retry, %d unreachable",
            report.sent,
            report.retried,
            report.unreachable,
        )


async def subscriptions(context: BotContext) -> None:
    """Reminders 3 days and 1 day before the end; expiry at the end."""
    await context.services.payments.remind_and_expire()


async def refresh_directory(context: BotContext) -> None:
    """Chain status (canDep, minDep, fee), deposit addresses, and the capacity alerts."""
    services = context.services
    await services.payments.refresh_directory()
    await services.payments.check_capacity()


def schedule(job_queue: JobQueue[BotContext], poll_seconds: float, timings: Timings) -> None:
    job_queue.run_repeating(poll_deposits, poll_seconds, first=timings.first_poll, name=POLL)
    job_queue.run_repeating(send_outbox, timings.outbox, first=timings.outbox, name=OUTBOX)
    job_queue.run_repeating(
        subscriptions, timings.subscriptions, first=timings.first_poll, name=SUBSCRIPTIONS
    )
    job_queue.run_repeating(
        refresh_directory, timings.directory, first=timings.directory, name=DIRECTORY
    )
