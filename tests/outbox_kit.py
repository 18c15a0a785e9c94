"""Outbox senders in process, against the fake Telegram over loopback HTTP: the real
:class:`bot.sender.OutboxSender` with a plain Bot API client (no rate limiter, so a 429 reaches
the outbox as Telegram sent it), on the test's database and clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

from telegram import Bot

from bot.replica import Replica
from bot.sender import OutboxSender
from bot.texts import Texts
from fakes.stub_exchange import StubExchange
from fakes.telegram import FakeTelegram
from payments.catalog import load_catalog
from payments.clock import ManualClock
from payments.config import PaymentSettings
from payments.delivery import messages
from payments.delivery import outbox as ob
from payments.invoicing.customers import ensure_customer
from payments.storage import Database
from payments.wiring import Payments

CUSTOMER_ID, ADMINS = 4242, (901, 902)


@asynccontextmanager
async def sender(
    db: Database,
    clock: ManualClock,
    tg: FakeTelegram,
    *,
    replica: Replica | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    admins: Sequence[int] = ADMINS,
) -> AsyncIterator[OutboxSender]:
    """One sender with a Bot API client of its own (a replica's, when ``replica`` is given)."""
    payments = Payments.wire(db, StubExchange(), load_catalog(), PaymentSettings(), clock)
    for user in (CUSTOMER_ID, *admins):
        tg.user(user, first_name=f"User{user}")
    async with Bot(tg.token, base_url=tg.base_url) as bot:
        yield OutboxSender(
            bot,
            payments,
            payments.customers,
            payments.photos,
            Texts(ZoneInfo("UTC")),
            admins,
            replica=replica,
            monotonic=monotonic,
        )


async def write(
    db: Database,
    clock: ManualClock,
    invoice: str,
    kind: str = "detected",
    *,
    customer: int = CUSTOMER_ID,
) -> None:
    """One message about ``invoice``, as the payments core writes it: to the customer
    ("detected": the payment was seen; "paid": it was received) or to the admins ("alert")."""
    fields: messages.Received = {
        "invoice_id": invoice,
        "customer_id": customer,
        "plan_id": "pro",
        "currency": "USDT",
        "network": "TRC20",
        "amount": "29",
        "received": "29",
    }
    key = f"{kind}:{invoice}"
    if kind == "alert":
        message = messages.ADMIN_PARTIAL_UNFINISHED.message(fields, key=key)
    elif kind == "paid":
        paid: messages.Paid = {**fields, "exceptions": [], "ends_at": None}
        message = messages.INVOICE_PAID.message(paid, key=key, customer_id=customer)
    else:
        message = messages.PAYMENT_DETECTED.message(fields, key=key, customer_id=customer)
    async with db.transaction() as conn:
        await ensure_customer(conn, customer, clock.now_ms())
        await ob.enqueue(conn, message, now_ms=clock.now_ms())


def received(tg: FakeTelegram, chat_id: int, invoice: str) -> int:
    """How many of the bot's messages in ``chat_id`` name ``invoice``."""
    return sum(invoice in m.plain for m in tg.bot_messages(chat_id))
