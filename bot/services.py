"""What handlers and jobs use, opened once in ``post_init`` and closed in ``post_shutdown``.

Handlers reach it through the typed :class:`BotContext` (``context.services``), never by a string
key: ``ContextTypes(context=BotContext, bot_data=BotData)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.access import AccessWorker
from bot.config import Settings
from bot.qr import QrRenderer
from bot.replica import Replica, StandbyNudge
from bot.seen import SeenRecently
from bot.sender import OutboxSender
from bot.texts import Texts
from bot.throttle import ReplyThrottle
from payments import Catalog, Payments
from payments.botstate import InvoiceMessages
from payments.delivery import WebhookSender
from payments.invoicing import CustomerService, Storefront

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timings:
    """Job intervals in seconds (the poll interval is PAYMENT_POLL_SECONDS)."""

    outbox: float = 2.0
    subscriptions: float = 60.0
    directory: float = 3600.0
    directory_retry: float = 60.0  # after a failed refresh (OKX down)
    first_poll: float = 1.0
    access: float = 5.0  # invite links to send, members to remove
    access_budget: float = 30.0  # one chat-access run's time; the next run goes on
    chat_rights: float = 3600.0  # the bot's rights in its paid chats
    webhooks: float = 5.0  # merchant webhooks (MERCHANT_WEBHOOK_URLS)
    poll_requests: float = 2.0  # the primary looks for a standby's "check now" (PostgreSQL)
    prune: float = 86400.0  # settled history older than RETENTION_DAYS, daily
    first_prune: float = 600.0  # ten minutes after start-up (a daily restart still prunes)
    stars_ledger: float = 600.0  # Telegram's Stars ledger against the recorded payments


class PollGate:
    """One deposit poll at a time, and "check now" taps debounced to at most one extra poll.

    A tap asks for a poll; it runs only when none is running and the last one finished more
    than ``min_gap_s`` ago. Taps never call OKX themselves. ``allowed``: only
    while it says so (the replica holding the lease); on a standby a tap calls ``standby``
    instead (one at a time), which passes the request on to the primary.
    """

    def __init__(
        self,
        run: Callable[[], Awaitable[Any]],
        *,
        min_gap_s: float = 15.0,
        allowed: Callable[[], bool] = lambda: True,
        standby: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._run = run
        self._allowed = allowed
        self._standby = standby
        self._asking: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._last_finished = float("-inf")
        self.min_gap_s = min_gap_s
        self._pending: asyncio.Task[None] | None = None

    async def run(self) -> bool:
        """Run a poll now unless one is running or this is a standby (then skip); True when
        this call polled."""
        if self._lock.locked() or not self._allowed():
            return False
        async with self._lock:
            try:
                await self._run()
            finally:
                self._last_finished = asyncio.get_running_loop().time()
        return True

    def request(self) -> bool:
        """Ask for a poll soon (debounced); True when one was scheduled."""
        now = asyncio.get_running_loop().time()
        if not self._allowed():
            if self._standby is not None and (self._asking is None or self._asking.done()):
                self._asking = asyncio.get_running_loop().create_task(self._ask_primary())
            return False
        if self._lock.locked() or (self._pending is not None and not self._pending.done()):
            return False
        if now - self._last_finished < self.min_gap_s:
            return False
        self._pending = asyncio.get_running_loop().create_task(self._requested())
        return True

    async def _requested(self) -> None:
        try:
            await self.run()
        except Exception:
            log.exception("a requested deposit poll failed")

    async def _ask_primary(self) -> None:
        assert self._standby is not None
        try:
            await self._standby()
        except Exception as exc:  # the database is busy or gone: the regular poll still comes
            log.warning("could not pass a poll request on to the primary: %s", exc)

    async def close(self) -> None:
        for task in (self._pending, self._asking):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


class Heartbeats:
    """When each singleton job last finished a run (monotonic seconds), for ``/healthz``: a job
    that stops finishing (the scheduler died, a call hangs) makes this process unhealthy."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._since = now()
        self._last: dict[str, float] = {}

    def beat(self, job: str) -> None:
        self._last[job] = self._now()

    def age(self, job: str) -> float:
        """Seconds since ``job`` last finished (since start-up when it never has)."""
        return self._now() - self._last.get(job, self._since)

    def stalled(self, limits: dict[str, float]) -> list[str]:
        """The jobs whose last run is older than their limit (seconds)."""
        return [job for job, limit in limits.items() if self.age(job) > limit]


@dataclass
class Services:
    settings: Settings
    payments: Payments
    customers: CustomerService
    photos: InvoiceMessages
    texts: Texts
    qr: QrRenderer
    storefront: Storefront
    sender: OutboxSender
    poll: PollGate
    admin_ids: frozenset[int]
    access: AccessWorker
    replica: Replica  # the lease: whether this process runs the singleton jobs
    timings: Timings = field(default_factory=Timings)
    seen: SeenRecently = field(default_factory=SeenRecently)
    free_text: ReplyThrottle = field(default_factory=ReplyThrottle)  # "I didn't understand"
    directory_ready: bool = True  # False: chains and addresses not loaded (yet), OKX down
    # set once the first load of chains and addresses was tried (at start-up, in the background)
    directory_tried: asyncio.Event = field(default_factory=asyncio.Event)
    _background: list[asyncio.Task[object]] = field(default_factory=list)
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    webhooks: WebhookSender | None = None  # its urls are empty without MERCHANT_WEBHOOK_URLS
    nudge: StandbyNudge | None = None  # None: one replica (SQLite), nobody to pass taps on to
    # the Mini App the chat offers (menu button, /start); None: not known, or Telegram refused it
    mini_app_url: str | None = None

    @property
    def catalog(self) -> Catalog:
        return self.payments.catalog

    async def directory_settled(self, timeout_s: float = 15.0) -> None:
        """Until the first load of chains and addresses was tried: a customer tapping a coin in
        the first second after start-up waits for it instead of seeing no network."""
        if not self.directory_tried.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self.directory_tried.wait()

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_ids

    def start_background(self, work: Coroutine[Any, Any, object]) -> None:
        """Start-up work that must not hold up serving (awaited or cancelled in close())."""

        def done(task: asyncio.Task[object]) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.error("start-up task failed", exc_info=task.exception())

        task = asyncio.get_running_loop().create_task(work, name="subsbot-startup")
        task.add_done_callback(done)
        self._background.append(task)

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.poll.close()
        await self.replica.release()  # after the last poll: the next holder starts clean
        self.qr.close()
        await self.payments.close()  # its webhook sender too


@dataclass
class BotData:
    """``application.bot_data``: typed, holding the one Services object."""

    services: Services | None = None


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are opened in post_init; the application has not started")
        return services


BotApplication = Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
