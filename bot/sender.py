"""The outbox sender: claims due messages, sends them through the Bot API, records the outcome.

A crash can repeat a message, never lose one (the claim lapses and the row is sent again). Per
recipient, messages go out in the order they were written: the outbox hands out a recipient's
next message only once the one before it is settled, so a retry never lets a later message
overtake it. Different recipients are served concurrently (a few at a time, under the rate
limiter). Forbidden (blocked) marks the customer unreachable; 429 waits ``retry_after``;
network errors and 5xx back off and retry; a request Telegram refuses outright is given up.
When a message ends an invoice (paid, expired, rejected) its photo's caption is edited first.

Fenced by the replica's lease (:mod:`bot.replica`): a run starts only while this replica stays
primary for the whole run (its time budget plus one call, at most the lease's margin R), claims
under the lease, and before each Bot API call checks :meth:`~bot.replica.Replica.live` and
re-asserts the message's claim together with the lease (:meth:`payments.delivery.Outbox.reassert`).
A message whose claim or lease was lost is skipped (and its claim given back when it is still
ours). A process paused past its lease can therefore repeat only the one call it was inside.

A message of a kind this version cannot render (written by a newer or an older version) is given
up at once, and the admins are told, rather than retried for days.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot import invoice_card, keyboards
from bot.notifications import (
    Outgoing,
    Renderer,
    UnknownKind,
    changes_invoice,
    ends_invoice,
)
from bot.replica import LeaseTimes, Replica
from bot.texts import Texts
from payments import InvoiceView, Payments, errors
from payments.botstate import InvoiceMessages, Lease
from payments.delivery import Outbox, OutboxMessage
from payments.invoicing import CustomerService

log = logging.getLogger(__name__)

CONCURRENT_RECIPIENTS = 8
# One Bot API call's usual longest time (python-telegram-bot's time-outs: 5 s to connect, 5 s
# to read), capped by the lease (see :func:`run_times`).
CALL_S = 10.0
# How long a claim lasts: from the claim to the first call, and from each re-assertion to the
# next (a call the rate limiter holds up waits up to 10 s per 429 before it is sent). A call
# that takes longer than this may be repeated by another sender: the in-flight exception.
CLAIM_MS = 60_000


def run_times(times: LeaseTimes) -> tuple[float, float]:
    """(budget_s, call_s) of one run on a replica with these lease times: a run started while
    the replica is live for both ends before its lease could lapse, as budget + call = R, the
    margin between the replica's own deadline and its lease row's expiry."""
    call = min(CALL_S, times.renew_s / 2)
    return times.renew_s - call, call


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0
    failed: int = 0  # refused outright: given up
    skipped: int = 0  # claim or lease lost before a call: left to the holder
    errors: list[str] = field(default_factory=list)


class _Unreachable(Exception):
    pass


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Unrenderable(Exception):
    """The message's kind has no rendering in this version: give it up and tell the admins."""


class _Lost(Exception):
    """The claim or the lease is gone: this message is no longer ours to send."""


class _Retry(Exception):
    def __init__(self, reason: str, retry_after_ms: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_ms = retry_after_ms


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        payments: Payments,
        customers: CustomerService,
        photos: InvoiceMessages,
        texts: Texts,
        admin_ids: Collection[int],
        *,
        batch: int = 50,
        on_unreachable: Callable[[int], None] | None = None,
        replica: Replica | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_unreachable(customer_id)``: called when a customer turns out to have blocked
        the bot (the bot then records it the next time they write). ``replica``: send only
        while it holds the lease, fenced by it (None: one process, nothing to fence; runs get
        the budget of a 60 s poll interval)."""
        self.bot = bot
        self.payments = payments
        self.outbox: Outbox = payments.outbox
        self.customers = customers
        self.photos = photos
        self.texts = texts
        self.renderer = Renderer(texts, payments.catalog)
        self.admin_ids = tuple(admin_ids)
        self.batch = batch
        self.on_unreachable = on_unreachable
        self.replica = replica
        times = replica.times if replica is not None else LeaseTimes.for_poll(60)
        self.budget_s, self.call_s = run_times(times)
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._fence: Lease | None = None  # the lease of the run under way

    def _now(self) -> int:
        return self.payments.okx_clock.now_ms()

    def _lease_now(self) -> int:
        """Now on the clock of the lease rows (the host's, not OKX's)."""
        return self._now() if self.replica is None else self.replica.clock.now_ms()

    def _live(self, needed_s: float) -> bool:
        return self.replica is None or self.replica.live(needed_s)

    async def send_due(self, *, max_batches: int = 20) -> SendReport:
        """Send what is due, batch after batch, for at most the run's time budget; skipped
        (empty report) while another run works or on a replica that is not primary for the
        whole run."""
        report = SendReport()
        if self._lock.locked() or not self._live(self.budget_s + self.call_s):
            return report
        async with self._lock:
            self._fence = None if self.replica is None else self.replica.fence
            if self.replica is not None and self._fence is None:
                return report
            started = self._monotonic()
            for number in range(max_batches):
                spent = self._monotonic() - started
                if (number and spent >= self.budget_s) or not self._live(self.call_s):
                    break
                messages = await self.outbox.claim_batch(
                    now_ms=self._now(),
                    limit=self.batch,
                    lease_ms=CLAIM_MS,
                    fence=self._fence,
                    lease_now_ms=self._lease_now(),
                )
                if not messages:
                    break
                await self._send_batch(messages, report)
        return report

    async def _send_batch(self, messages: list[OutboxMessage], report: SendReport) -> None:
        """At most one message per recipient (the outbox's order): all of them concurrently."""
        customer_ids = [m.customer_id for m in messages if m.customer_id is not None]
        languages = await self.customers.languages(customer_ids) if customer_ids else {}
        gate = asyncio.Semaphore(CONCURRENT_RECIPIENTS)

        async def serve(message: OutboxMessage) -> None:
            async with gate:
                await self._one(message, languages, report)

        await asyncio.gather(*(serve(message) for message in messages))

    async def _one(
        self,
        message: OutboxMessage,
        languages: dict[int, str | None],
        report: SendReport,
    ) -> None:
        try:
            if message.audience == "customer" and message.customer_id is not None:
                await self._to_customer(message, languages.get(message.customer_id))
            else:
                await self._to_admins(message)
        except _Lost as lost:
            log.info("outbox message %s skipped: %s", message.id, lost)
            await self.outbox.release([message])  # when still ours: free at once
            report.skipped += 1
            return
        except _Unreachable:
            await self.outbox.mark_unreachable(message, now_ms=self._now())
            report.unreachable += 1
            if self.on_unreachable is not None and message.customer_id is not None:
                self.on_unreachable(message.customer_id)
            return
        except _Refused as refused:
            log.warning("outbox message %s (%s) refused: %s", message.id, message.kind, refused)
            report.failed += 1
            report.errors.append(refused.reason)
            await self.outbox.mark_failed(message, now_ms=self._now(), error=refused.reason)
            return
        except _Unrenderable:
            log.error("outbox message %s: cannot render kind %s", message.id, message.kind)
            report.failed += 1
            report.errors.append(f"unknown kind {message.kind}")
            await self.outbox.mark_unrenderable(message, now_ms=self._now())
            return
        except _Retry as retry:
            await self._retry(message, retry, report)
            return
        except Exception as exc:  # a bug must not stop the other messages
            log.exception("outbox message %s (%s) failed", message.id, message.kind)
            await self._retry(message, _Retry(f"error: {type(exc).__name__}"), report)
            return
        if await self.outbox.mark_sent(message, now_ms=self._now()):
            report.sent += 1

    async def _still_ours(self, message: OutboxMessage) -> None:
        """Right before a Bot API call for ``message``: this replica stays primary for the call,
        and the claim (with the lease) is re-asserted for it; otherwise :class:`_Lost`."""
        if not self._live(self.call_s):
            raise _Lost("this replica is about to lose the lease")
        kept = await self.outbox.reassert(
            message,
            now_ms=self._now(),
            hold_ms=CLAIM_MS,
            fence=self._fence,
            lease_now_ms=self._lease_now(),
        )
        if not kept:
            raise _Lost("its claim or the lease was lost")

    async def _retry(self, message: OutboxMessage, retry: _Retry, report: SendReport) -> None:
        report.retried += 1
        report.errors.append(retry.reason)
        await self.outbox.mark_retry(
            message,
            now_ms=self._now(),
            error=retry.reason,
            retry_after_ms=retry.retry_after_ms,
        )

    async def _invoice(self, message: OutboxMessage) -> InvoiceView | None:
        invoice_id = message.payload.get("invoice_id")
        if not isinstance(invoice_id, str):
            return None
        try:
            return await self.payments.invoices.get(invoice_id)
        except errors.InvoiceNotFound:
            return None

    async def _to_customer(self, message: OutboxMessage, lang: str | None) -> None:
        assert message.customer_id is not None
        view = await self._invoice(message)
        try:
            out = self.renderer.customer(lang, message.kind, message.payload, view)
        except UnknownKind:
            raise _Unrenderable() from None
        if view is not None and changes_invoice(message.kind, view):
            await self._edit_photos(message, view, lang, ended=ends_invoice(message.kind, view))
        await self._send(message, message.customer_id, out)

    async def _to_admins(self, message: OutboxMessage) -> None:
        """Every admin once: each admin reached is recorded with the message, so a retry (or
        whoever sends it next) goes only to those who did not get it. An admin who blocked the
        bot, or for whom Telegram refuses it, is passed over."""
        out = self.renderer.admin(message.kind, message.payload)
        done = set(message.sent_to)
        retry: _Retry | None = None
        refused: _Refused | None = None
        for admin in self.admin_ids:
            if admin in done:
                continue
            try:
                await self._send(message, admin, out)
            except _Unreachable:
                log.warning("admin %s has blocked the bot or never started it", admin)
            except _Refused as exc:
                refused = exc
            except _Retry as exc:
                retry = exc
                continue
            done.add(admin)
            await self.outbox.mark_reached(message, done)
        if retry is not None:
            raise retry
        if refused is not None:
            raise refused

    async def _edit_photos(
        self, message: OutboxMessage, view: InvoiceView, lang: str | None, *, ended: bool
    ) -> None:
        """Re-caption the invoice's photos; an ended invoice loses its buttons."""
        caption = invoice_card.caption(self.texts, lang, view)
        markup = None if ended else keyboards.invoice(self.texts, lang, view)
        for chat_id, message_id in await self.photos.of(view.id):
            edit = functools.partial(
                self.bot.edit_message_caption,
                chat_id=chat_id,
                message_id=message_id,
                caption=caption,
                reply_markup=markup,
            )
            await self._call(message, edit, ignore_bad_request=True)

    async def _send(self, message: OutboxMessage, chat_id: int, out: Outgoing) -> None:
        send = functools.partial(self.bot.send_message, chat_id, out.text, reply_markup=out.markup)
        await self._call(message, send)

    async def _call(
        self,
        message: OutboxMessage,
        request: Callable[[], Awaitable[object]],
        *,
        ignore_bad_request: bool = False,
    ) -> None:
        """One Bot API call for ``message``, made only while the message is still ours."""
        await self._still_ours(message)
        try:
            await request()
        except Forbidden:
            raise _Unreachable() from None
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay if isinstance(delay, int | float) else delay.total_seconds()
            raise _Retry("429 Too Many Requests", int(seconds * 1000)) from None
        except BadRequest as exc:
            text = str(exc).lower()
            if "chat not found" in text or "user is deactivated" in text:
                raise _Unreachable() from None
            if ignore_bad_request:  # "message is not modified", "message to edit not found"
                log.debug("caption edit refused: %s", exc)
                return
            raise _Refused(f"bad request: {exc}") from None
        except NetworkError as exc:
            raise _Retry(f"network: {type(exc).__name__}") from None
        except TelegramError as exc:
            raise _Retry(f"telegram: {type(exc).__name__}") from None
