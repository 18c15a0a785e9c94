"""JobQueue jobs. Each logs and reports its errors (to the error handler, via PTB) and runs again
at its next interval; an overlapping run is skipped (APScheduler's max_instances=1, and the
poll gate's lock for the extra polls "Check payment" asks for). Names are the keys.

The singleton jobs (poll, outbox, subscriptions, chat access, merchant webhooks, the Stars
ledger, the daily history prune) do their work only on the replica holding the lease
(:mod:`bot.replica`); on a standby a run returns at once (and still counts as a run for the
health check). "replica-lease" takes or renews the lease on every replica; chat rights and the
directory refresh run everywhere."""

from __future__ import annotations

import logging
from typing import cast

from telegram.error import TelegramError
from telegram.ext import JobQueue

from bot import stars_ledger as stars_reading
from bot.replica import LeaseTimes
from bot.sender import OutboxSender
from bot.services import BotContext, Services, Timings
from payments import PaymentCycle
from payments.errors import ExchangeError

log = logging.getLogger(__name__)

POLL = "poll-deposits"
OUTBOX = "send-outbox"
SUBSCRIPTIONS = "subscriptions"
DIRECTORY = "refresh-directory"
DIRECTORY_RETRY = "refresh-directory-retry"
ACCESS = "chat-access"
CHAT_RIGHTS = "chat-rights"
WEBHOOKS = "merchant-webhooks"
LEASE = "replica-lease"
POLL_NOW = "poll-deposits-now"  # the first poll of a replica that just took the lease over
POLL_REQUESTS = "poll-requests"  # a standby's "check now", acted on by the primary
PRUNE = "prune-history"  # daily: settled history older than RETENTION_DAYS
STARS_LEDGER = "stars-ledger"  # Telegram Stars payments whose update was lost, refunds elsewhere

__all__ = [
    "LEASE",
    "OUTBOX",
    "POLL",
    "PRUNE",
    "STARS_LEDGER",
    "Timings",
    "payment_cycle",
    "schedule",
    "stall_limits",
]


def stall_limits(poll_seconds: float, timings: Timings, *, crypto: bool = True) -> dict[str, float]:
    """How long each singleton job and the lease job may go without finishing a run before this
    process counts as stalled (three missed runs and a minute of slack: a slow OKX is not a
    stall). A standby counts only the lease job (see bot.web.health). ``crypto`` False
    (Telegram Stars only): there is no deposit poll to stall."""
    lease = LeaseTimes.for_poll(poll_seconds)
    limits = {
        POLL: 3 * poll_seconds + 60,
        OUTBOX: 3 * timings.outbox + 60,
        LEASE: 3 * lease.renew_s + 60,
    }
    if not crypto:
        del limits[POLL]
    return limits


async def renew_lease(context: BotContext) -> None:
    """Take or renew the lease; a replica that just took it over polls at once."""
    services = context.services
    try:
        promoted = await services.replica.renew()
    finally:
        services.heartbeats.beat(LEASE)
    queue = cast("JobQueue[BotContext] | None", context.job_queue)
    if promoted and queue is not None and services.payments.crypto:
        queue.run_once(poll_deposits, 0, name=POLL_NOW)


async def payment_cycle(cycle: PaymentCycle, sender: OutboxSender) -> None:
    """The minute job's work, behind the poll gate (``services.poll``, which also runs it for
    a customer's "check now"): poll OKX and expire what ran out, then send what that caused."""
    report = await cycle.run()
    if report.poll is not None or report.expired:
        await sender.send_due()  # what the poll caused goes out now, not at the next tick


async def poll_deposits(context: BotContext) -> None:
    """Poll OKX and expire what ran out (:func:`payment_cycle`, once at a time through the
    poll gate), then send what it caused."""
    try:
        await context.services.poll.run()
    finally:
        context.services.heartbeats.beat(POLL)


async def send_outbox(context: BotContext) -> None:
    try:
        report = await context.services.sender.send_due()
    finally:
        context.services.heartbeats.beat(OUTBOX)
    if report.retried or report.unreachable or report.failed or report.skipped:
        log.info(
            "outbox: %d sent, %d to retry, %d unreachable, %d refused, %d left to the lease holder",
            report.sent,
            report.retried,
            report.unreachable,
            report.failed,
            report.skipped,
        )


async def subscriptions(context: BotContext) -> None:
    """Reminders 3 days and 1 day before the end; expiry at the end."""
    if context.services.replica.primary:
        await context.services.payments.remind_and_expire()


async def merchant_webhooks(context: BotContext) -> None:
    """Deliver the merchant events to MERCHANT_WEBHOOK_URLS (nothing when none is set), fenced
    by the lease: claims only while it is held, each POST only while it will still be held
    when the request times out."""
    sender = context.services.webhooks
    replica = context.services.replica
    fence = replica.fence
    if sender is not None and fence is not None:
        await sender.run(fence=fence, live=replica.live)


async def prune_history(context: BotContext) -> None:
    """Delete settled history older than RETENTION_DAYS (sent messages, delivered webhooks and
    their attempts, expired invite links, ...), a chunk per transaction. On the primary only:
    two replicas pruning at once would be harmless, but twice the work."""
    services = context.services
    if not services.replica.primary:
        return
    report = await services.payments.prune_history()
    if report.total:
        log.info(
            "history pruned: %d outbox messages, %d webhook attempts, %d deliveries, "
            "%d events, %d other rows, %d deposit records emptied",
            report.outbox,
            report.webhook_attempts,
            report.webhook_deliveries,
            report.merchant_events,
            report.invoice_messages + report.access_links + report.claim_waits,
            report.deposit_payloads,
        )


async def refresh_directory(context: BotContext) -> None:
    """Chain status (canDep, minDep, fee), deposit addresses, and the capacity alerts."""
    services = context.services
    if await load_directory(services, cast("JobQueue[BotContext] | None", context.job_queue)):
        await services.payments.check_capacity()


async def load_directory(services: Services, queue: JobQueue[BotContext] | None) -> bool:
    """The hourly refresh, and the first load right after start-up (in the background, so the
    bot answers meanwhile; customers choosing a coin wait for it). When OKX does not answer,
    try again soon rather than in an hour: without the directory no network is offered.
    Returns whether it loaded (the capacity alerts follow on the hourly runs)."""
    try:
        await services.payments.refresh_directory()
    except ExchangeError as exc:
        services.directory_tried.set()
        retry = services.timings.directory_retry
        log.warning("could not refresh OKX's chains and addresses (retry in %s s): %s", retry, exc)
        if queue is not None:
            queue.run_once(refresh_directory, retry, name=DIRECTORY_RETRY)
        return False
    except BaseException:
        services.directory_tried.set()
        raise
    services.directory_ready = True
    services.directory_tried.set()
    return True


async def chat_access(context: BotContext) -> None:
    """Invite links for new subscribers, removal of those whose access ended."""
    if not context.services.replica.primary:
        return
    report = await context.services.access.run()
    if report.invited or report.removed or report.failed:
        await context.services.sender.send_due()  # the links and goodbyes go out now
        log.info(
            "chat access: %d invited, %d removed, %d failed",
            report.invited,
            report.removed,
            report.failed,
        )


async def stars_ledger(context: BotContext) -> None:
    """Reconcile the Stars payments with Telegram's ledger (on the primary, when some plan is
    sold for Stars): a payment whose update was lost is credited, a refund made outside the
    bot is recorded, a recorded payment the ledger lacks is reported."""
    services = context.services
    rail = services.payments.stars
    if not rail.enabled or not services.replica.primary:
        return
    try:
        report = await stars_reading.reconcile(
            context.bot, rail, now_ms=services.payments.okx_clock.now_ms()
        )
    except TelegramError as exc:
        log.warning("could not read Telegram's Stars ledger (next run retries): %s", exc)
        return
    if report.credited or report.refunded or report.missing:
        await services.sender.send_due()
        log.info(
            "Stars ledger: %d lost payments credited, %d refunds recorded, %d missing",
            report.credited,
            report.refunded,
            report.missing,
        )


async def poll_requests(context: BotContext) -> None:
    """On the primary: a "check now" that a standby passed on asks for a (debounced) poll."""
    services = context.services
    if services.nudge is not None and services.replica.primary and await services.nudge.asked():
        services.poll.request()


async def chat_rights(context: BotContext) -> None:
    """Is the bot still an administrator with the rights it needs in every paid chat?"""
    await context.services.access.check_rights()


def schedule(
    job_queue: JobQueue[BotContext],
    poll_seconds: float,
    timings: Timings,
    *,
    replicas: bool = False,
    crypto: bool = True,
) -> None:
    """Every job, by name. The first load of chains and addresses is not a job: post_init
    starts it in the background (:func:`load_directory`), which retries soon if OKX is down.
    post_init tried the lease once already, so a single replica polls at ``first_poll``.
    ``replicas`` (PostgreSQL): the primary also looks for the standbys' "check now".
    ``crypto`` False (Telegram Stars only, no OKX keys): no deposit poll, no "check now" from
    standbys and no hourly chains, addresses and capacity: nothing calls OKX."""
    lease = LeaseTimes.for_poll(poll_seconds)
    job_queue.run_repeating(renew_lease, lease.renew_s, first=lease.renew_s, name=LEASE)
    if crypto:
        if replicas:
            job_queue.run_repeating(
                poll_requests,
                timings.poll_requests,
                first=timings.poll_requests,
                name=POLL_REQUESTS,
            )
        job_queue.run_repeating(poll_deposits, poll_seconds, first=timings.first_poll, name=POLL)
        job_queue.run_repeating(
            refresh_directory, timings.directory, first=timings.directory, name=DIRECTORY
        )
    job_queue.run_repeating(send_outbox, timings.outbox, first=timings.outbox, name=OUTBOX)
    job_queue.run_repeating(
        subscriptions, timings.subscriptions, first=timings.first_poll, name=SUBSCRIPTIONS
    )
    job_queue.run_repeating(chat_access, timings.access, first=timings.first_poll, name=ACCESS)
    job_queue.run_repeating(
        chat_rights, timings.chat_rights, first=timings.first_poll, name=CHAT_RIGHTS
    )
    job_queue.run_repeating(
        merchant_webhooks, timings.webhooks, first=timings.webhooks, name=WEBHOOKS
    )
    job_queue.run_repeating(prune_history, timings.prune, first=timings.first_prune, name=PRUNE)
    job_queue.run_repeating(
        stars_ledger, timings.stars_ledger, first=timings.first_poll, name=STARS_LEDGER
    )
