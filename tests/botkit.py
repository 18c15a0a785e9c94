"""End-to-end harness: the real bot Application against the fake Bot API and the fake OKX, both
served over loopback HTTP, on a SQLite file (or PostgreSQL). Time for payments is a ManualClock
the test moves; PTB's JobQueue runs on real time with short intervals.

    async with BotWorld.open(tmp_path) as world:
        async with world.running():
            alice = world.customer(101)
            await alice.send("/start")
            await alice.press("Pro")
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, select

from bot.app import build_application
from bot.config import Settings, load_settings
from bot.jobs import Timings
from bot.runner import running
from bot.serve import Served, serving
from bot.services import BotApplication
from fakes.okx import FakeOkx
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from fakes.telegram_state import ChatMessage, flat_buttons
from payments.clock import ManualClock
from payments.storage import Database
from payments.storage.schema import invoices
from tests.conftest import PG_URL

ADMIN = 900
HISTORY = "/api/v5/asset/deposit-history"
WEBHOOK_SECRET = "webhook-secret_0123456789"
FAST = Timings(
    outbox=0.1, subscriptions=0.2, directory=3600, directory_retry=0.2, first_poll=0.05, access=0.1
)


@dataclass
class BotWorld:
    tg: FakeTelegram
    okx: FakeOkx
    clock: ManualClock
    database_url: str
    env: dict[str, str]
    apps: list[BotApplication] = field(default_factory=list)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        tmp_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        backend: str = "sqlite",
    ) -> AsyncIterator[BotWorld]:
        """``backend`` "postgresql": a database of its own on TEST_DATABASE_URL's server."""
        clock = ManualClock(time.time_ns() // 1_000_000)
        pg_name = None
        if backend == "postgresql":
            pg_name, database_url = await _create_pg_database()
        else:
            database_url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
        tg = FakeTelegram().start()
        okx = FakeOkx(clock=clock).start()
        base = bot_env(tg, okx, database_url, admins=str(ADMIN), PAYMENT_POLL_SECONDS="0.3")
        try:
            yield cls(tg, okx, clock, database_url, {**base, **(env or {})})
        finally:
            tg.stop()
            okx.stop()
            if pg_name is not None:
                await _drop_pg_database(pg_name)

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)

    @asynccontextmanager
    async def running(self, *, timings: Timings = FAST) -> AsyncIterator[BotApplication]:
        application = build_application(self.settings, clock=self.clock, timings=timings)
        self.apps.append(application)
        async with running(application, poll_timeout=1):
            await _loaded(application)
            yield application

    @asynccontextmanager
    async def serving(
        self, *, webhook: bool = True, timings: Timings = FAST, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[Served]:
        """The bot as ``python -m bot run`` serves it, with its HTTP server on a free loopback
        port (``served.base_url``). ``webhook``: the fake Bot API POSTs updates to it (with
        WEBHOOK_SECRET); otherwise long polling with PORT set. ``env``: extra settings."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        port = int(sock.getsockname()[1])
        extra = {"HOST": "127.0.0.1", "PORT": str(port)}
        if webhook:
            extra |= {"WEBHOOK_URL": f"http://127.0.0.1:{port}", "WEBHOOK_SECRET": WEBHOOK_SECRET}
        settings = load_settings({**self.env, **extra, **(env or {})})
        async with serving(
            settings, clock=self.clock, timings=timings, sock=sock, poll_timeout=1
        ) as served:
            self.apps.append(served.application)
            await _loaded(served.application)
            yield served

    async def settled(self, timeout: float = 20) -> None:  # noqa: ASYNC109
        """Until the running bot has taken every queued update and finished handling it (not
        just until Telegram is quiet: a handler may be busy with the database or OKX)."""
        application = self.apps[-1]
        processor = application.update_processor

        def idle() -> bool:
            return (
                self.tg.pending_updates() == 0
                and application.update_queue.qsize() == 0
                and processor.current_concurrent_updates == 0
            )

        for _ in range(2):  # twice: an update may be between the queue and its task
            await self.tg.wait_for(idle, timeout, "the bot to finish its updates")
            await self.tg.wait_idle(timeout, quiet_s=0.1)

    def customer(self, user_id: int, language: str = "en") -> Customer:
        self.tg.user(user_id, first_name=f"User{user_id}", language_code=language)
        return Customer(self, user_id, language)

    async def started(self, *user_ids: int) -> None:
        """Each of these users opens the bot (/start) and gets its answer: from then on they
        are customers, for whom a Bearer API call may act."""
        for user_id in user_ids:
            await self.customer(user_id).send("/start")

    @asynccontextmanager
    async def database(self) -> AsyncIterator[Database]:
        db = Database.from_url(self.database_url)
        try:
            yield db
        finally:
            await db.close()

    async def invoice_row(self, invoice_id: str) -> dict[str, Any]:
        async with self.database() as db, db.read() as conn:
            row = (
                (await conn.execute(select(invoices).where(invoices.c.id == invoice_id)))
                .mappings()
                .one()
            )
            return dict(row)

    async def rows(self, table: Any) -> list[dict[str, Any]]:
        async with self.database() as db, db.read() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]

    async def invoices_of(self, customer_id: int) -> list[dict[str, Any]]:
        return [r for r in await self.rows(invoices) if r["customer_id"] == customer_id]

    async def polled(self) -> None:
        """Until a deposit poll that started after this call has run, and what it caused has
        been sent (two deposit-history requests: the first may belong to a running poll)."""
        start = self.okx.count(HISTORY)
        await self.tg.wait_for(lambda: self.okx.count(HISTORY) >= start + 2, what="a full poll")
        await self.tg.wait_idle()


async def _loaded(application: BotApplication) -> None:
    """Until OKX's chains and addresses were loaded (or failed to), as the bot does just after
    start-up in the background: tests start from the state they describe, not mid-load."""
    services = application.bot_data.services
    if services is not None:
        await services.directory_settled()


async def _admin_connection() -> Any:
    import asyncpg

    return await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))


async def _create_pg_database() -> tuple[str, str]:
    name = f"bot_{uuid.uuid4().hex[:12]}"
    conn = await _admin_connection()
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return name, str(make_url(PG_URL).set(database=name))


async def _drop_pg_database(name: str) -> None:
    conn = await _admin_connection()
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@dataclass
class Customer:
    world: BotWorld
    id: int
    language: str = "en"

    @property
    def tg(self) -> FakeTelegram:
        return self.world.tg

    def messages(self) -> list[ChatMessage]:
        return self.tg.bot_messages(self.id)

    def texts(self) -> list[str]:
        return [m.plain for m in self.messages()]

    def count(self, text: str) -> int:
        """How many of the bot's messages to this customer contain ``text``."""
        return sum(text in t for t in self.texts())

    def current(self, message: ChatMessage) -> ChatMessage:
        """``message`` as it is now (captions and buttons change after it was sent)."""
        return next(m for m in self.messages() if m.message_id == message.message_id)

    async def answer_after(self, before: int) -> str:
        """The text of the first callback answer after the first ``before`` ones."""
        tg = self.tg
        answers = await tg.wait_for(lambda: tg.answers[before:], what="a callback answer")
        return answers[0].text or ""

    async def send(
        self,
        text: str,
        *,
        expect: str | None = None,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> ChatMessage:
        """Write ``text``; returns the bot's next new message (containing ``expect``)."""
        before = len(self.messages())
        self.tg.send_text(self.id, text)
        return await self.wait_new(before, expect, timeout=timeout)

    async def send_sticker(self, *, timeout: float = 10) -> ChatMessage:  # noqa: ASYNC109
        """Send a sticker (a message without text); returns the bot's next new message."""
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": f"User{self.id}"}
        user["language_code"] = self.language
        chat = {"id": self.id, "type": "private", "first_name": user["first_name"]}
        sticker: dict[str, Any] = {"file_id": f"CAACAgIAAxkBAAI{self.id}", "type": "regular"}
        sticker |= {"file_unique_id": f"AgAD{self.id}", "width": 512, "height": 512}
        sticker |= {"is_animated": False, "is_video": False, "emoji": "👍"}
        before = len(self.messages())
        message = {"message_id": 1_000_000 + before, "date": int(time.time()), "chat": chat}
        self.tg.add_update({"message": message | {"from": user, "sticker": sticker}})
        return await self.wait_new(before, timeout=timeout)

    async def wait_new(
        self,
        before: int,
        expect: str | None = None,
        *,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> ChatMessage:
        def found() -> ChatMessage | None:
            for message in self.messages()[before:]:
                if expect is None or expect in message.plain:
                    return message
            return None

        return await self.tg.wait_for(found, timeout, f"a message with {expect!r} to {self.id}")

    async def wait_text(self, expect: str, timeout: float = 10) -> ChatMessage:  # noqa: ASYNC109
        return await self.wait_new(0, expect, timeout=timeout)

    def button(self, label: str, message: ChatMessage | None = None) -> tuple[ChatMessage, str]:
        """The newest bot message with a button whose text contains ``label``, and its data."""
        candidates = [message] if message is not None else list(reversed(self.messages()))
        for candidate in candidates:
            for text, data in flat_buttons(candidate.reply_markup):
                if label in text and data is not None:
                    return candidate, data
        raise AssertionError(f"no button {label!r}\n{self.tg.dump()}")

    def press_data(self, message: ChatMessage, data: str) -> None:
        self.tg.press(self.id, message, data)

    def press_together(self, label: str, times: int = 2) -> None:
        """A double (or n-fold) tap: every press is queued before the bot can fetch any of them
        (the fake hands out updates under this lock)."""
        target, data = self.button(label)
        with self.tg._lock:
            for _ in range(times):
                self.tg.press(self.id, target, data)

    async def press(
        self,
        label: str,
        *,
        expect: str | None = None,
        message: ChatMessage | None = None,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> ChatMessage:
        """Press a button; returns the message that changed or arrived (containing ``expect``)."""
        target, data = self.button(label, message)
        before = len(self.messages())
        edits = target.edits
        answers = len(self.tg.answers)
        self.tg.press(self.id, target, data)

        def changed() -> ChatMessage | None:
            for new in self.messages()[before:]:
                if expect is None or expect in new.plain:
                    return new
            current = next(m for m in self.messages() if m.message_id == target.message_id)
            if current.edits > edits and (expect is None or expect in current.plain):
                return current
            if expect is None and len(self.tg.answers) > answers:
                return current
            return None

        return await self.tg.wait_for(changed, timeout, f"{label!r} to answer with {expect!r}")

    async def buy(
        self, plan: str = "Pro", coin: str = "USDT", network: str | None = "Tron (TRC20)"
    ) -> ChatMessage:
        """/start -> plan -> coin (-> network): the invoice photo."""
        await self.send("/start")
        await self.press(plan, expect="Which coin")
        if network is None:
            return await self.press(coin, expect="Send exactly")
        await self.press(coin, expect="Which network")
        return await self.press(network, expect="Send exactly")


def caption_value(message: ChatMessage, label: str) -> str:
    """The text after ``label`` on its caption line, e.g. caption_value(m, "Send exactly: ")."""
    for line in message.plain.splitlines():
        if line.startswith(label):
            return line.removeprefix(label).split(" ")[0]
    raise AssertionError(f"no line {label!r} in {message.plain!r}")


def invoice_id_of(message: ChatMessage) -> str:
    return caption_value(message, "Invoice ")


def amount_of(photo: ChatMessage) -> str:
    """The exact amount an invoice photo asks for."""
    return caption_value(photo, "Send exactly: ")


def address_of(photo: ChatMessage) -> str:
    return caption_value(photo, "Address: ")


async def answer_to(world: BotWorld, user: Customer, message: ChatMessage, data: str) -> str:
    """Press a button with any ``data`` under ``message``; the text of the callback answer."""
    query = world.tg.press(user.id, message, data)

    def answered() -> str | None:
        found = [a for a in world.tg.answers if a.callback_query_id == query["id"]]
        return (found[0].text or "(no text)") if found else None

    return await world.tg.wait_for(answered, 10, f"an answer to {data!r}")
