"""The outbox sender: claims due messages, sends them through the Bot API, records the outcome.

A crash can repeat a message, never lose one (the claim lapses and the row is sent again). Per
recipient, messages go out in the order they were written; different recipients are served
concurrently (a few at a time, under the AIORateLimiter). Forbidden (blocked) marks the
customer unreachable; 429 waits ``retry_after``; network errors and 5xx back off and retry.
When a message ends an invoice (paid, expired, rejected) its photo's caption is edited first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
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
from bot.texts import Texts
from payments import InvoiceView, Payments, errors
from payments import outbox as ob
from payments.customers import CustomerService
from payments.photos import InvoiceMessages

log = logging.getLogger(__name__)

CONCURRENT_RECIPIENTS = 8
ADMIN_MEMORY = 1000  # admin alerts waiting for a retry whose delivered admins are remembered


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0
    errors: list[str] = field(default_factory=list)


class _Unreachable(Exception):
    pass


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
        allowed: Callable[[], bool] = lambda: True,
    ) -> None:
        """``on_unreachable(customer_id)``: called when a customer turns out to have blocked
        the bot (the bot then records it the next time they write). ``allowed``: send only
        while it says so (the replica holding the lease; a standby leaves it to the holder)."""
        self.bot = bot
        self.payments = payments
        self.customers = customers
        self.photos = photos
        self.texts = texts
        self.renderer = Renderer(texts, payments.catalog)
        self.admin_ids = tuple(admin_ids)
        self.batch = batch
        self.on_unreachable = on_unreachable
        self.allowed = allowed
        self._lock = asyncio.Lock()
        self._admins_done: dict[int, set[int]] = {}  # outbox id -> admins who have it

    def _now(self) -> int:
        return self.payments.okx_clock.now_ms()

    async def send_due(self, *, max_batches: int = 20) -> SendReport:
        """Send what is due, batch after batch; skipped (empty report) while another run works
        or on a standby replica."""
        report = SendReport()
        if self._lock.locked() or not self.allowed():
            return report
        async with self._lock:
            for _ in range(max_batches):
                messages = await ob.claim_batch(
                    self.payments.db, now_ms=self._now(), limit=self.batch
                )
                if not messages:
                    break
                await self._send_batch(messages, report)
                if len(messages) < self.batch:
                    break
        return report

    async def _send_batch(self, messages: list[ob.OutboxMessage], report: SendReport) -> None:
        by_recipient: dict[object, list[ob.OutboxMessage]] = defaultdict(list)
        for message in messages:
            key = message.customer_id if message.audience == "customer" else "admins"
            by_recipient[key].append(message)
        customer_ids = [m.customer_id for m in messages if m.customer_id is not None]
        languages = await self.customers.languages(customer_ids) if customer_ids else {}
        gate = asyncio.Semaphore(CONCURRENT_RECIPIENTS)

        async def serve(queue: list[ob.OutboxMessage]) -> None:
            async with gate:
                failed: _Retry | None = None
                for message in queue:
                    if failed is not None:  # keep this recipient's order: wait for the earlier one
                        await self._retry(message, _Retry("an earlier message is waiting"), report)
                        continue
                    failed = await self._one(message, languages, report)

        await asyncio.gather(*(serve(queue) for queue in by_recipient.values()))

    async def _one(
        self,
        message: ob.OutboxMessage,
        languages: dict[int, str | None],
        report: SendReport,
    ) -> _Retry | None:
        try:
            if message.audience == "customer" and message.customer_id is not None:
                await self._to_customer(message, languages.get(message.customer_id))
            else:
                await self._to_admins(message)
        except _Unreachable:
            await ob.mark_unreachable(self.payments.db, message, now_ms=self._now())
            report.unreachable += 1
            if self.on_unreachable is not None and message.customer_id is not None:
                self.on_unreachable(message.customer_id)
            return None
        except _Retry as retry:
            await self._retry(message, retry, report)
            return retry
        except Exception as exc:  # a bug must not stop the other messages
            log.exception("outbox message %s (%s) failed", message.id, message.kind)
            failed = _Retry(f"error: {type(exc).__name__}")
            await self._retry(message, failed, report)
            return failed
        if await ob.mark_sent(self.payments.db, message, now_ms=self._now()):
            report.sent += 1
        return None

    async def _retry(self, message: ob.OutboxMessage, retry: _Retry, report: SendReport) -> None:
        report.retried += 1
        report.errors.append(retry.reason)
        await ob.mark_retry(
            self.payments.db,
            message,
            now_ms=self._now(),
            error=retry.reason,
            retry_after_ms=retry.retry_after_ms,
        )

    async def _invoice(self, message: ob.OutboxMessage) -> InvoiceView | None:
        invoice_id = message.payload.get("invoice_id")
        if not isinstance(invoice_id, str):
            return None
        try:
            return await self.payments.invoices.get(invoice_id)
        except errors.InvoiceNotFound:
            return None

    async def _to_customer(self, message: ob.OutboxMessage, lang: str | None) -> None:
        assert message.customer_id is not None
        view = await self._invoice(message)
        try:
            out = self.renderer.customer(lang, message.kind, message.payload, view)
        except UnknownKind:
            raise _Retry(f"unknown kind {message.kind}") from None
        if view is not None and changes_invoice(message.kind, view):
            await self._edit_photos(view, lang, ended=ends_invoice(message.kind, view))
        await self._send(message.customer_id, out)

    async def _to_admins(self, message: ob.OutboxMessage) -> None:
        """Every admin once: when one send fails, the retry goes only to those who did not get
        it (remembered in this process; after a crash an admin may see it twice)."""
        out = self.renderer.admin(message.kind, message.payload)
        done = self._admins_done.pop(message.id, set())
        retry: _Retry | None = None
        for admin in self.admin_ids:
            if admin in done:
                continue
            try:
                await self._send(admin, out)
                done.add(admin)
            except _Unreachable:
                log.warning("admin %s has blocked the bot or never started it", admin)
                done.add(admin)
            except _Retry as exc:
                retry = exc
        if retry is not None:
            self._admins_done[message.id] = done
            while len(self._admins_done) > ADMIN_MEMORY:
                self._admins_done.pop(next(iter(self._admins_done)))
            raise retry

    async def _edit_photos(self, view: InvoiceView, lang: str | None, *, ended: bool) -> None:
        """Re-caption the invoice's photos; an ended invoice loses its buttons."""
        caption = invoice_card.caption(self.texts, lang, view)
        markup = None if ended else keyboards.invoice(self.texts, lang, view)
        for chat_id, message_id in await self.photos.of(view.id):
            await self._call(
                self.bot.edit_message_caption(
                    chat_id=chat_id, message_id=message_id, caption=caption, reply_markup=markup
                ),
                ignore_bad_request=True,
            )

    async def _send(self, chat_id: int, out: Outgoing) -> None:
        await self._call(self.bot.send_message(chat_id, out.text, reply_markup=out.markup))

    async def _call(self, request: Awaitable[object], *, ignore_bad_request: bool = False) -> None:
        try:
            await request
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
            raise _Retry(f"bad request: {exc}") from None
        except NetworkError as exc:
            raise _Retry(f"network: {type(exc).__name__}") from None
        except TelegramError as exc:
            raise _Retry(f"telegram: {type(exc).__name__}") from None
