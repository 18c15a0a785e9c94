"""Anything a client can send, against the real bot over the fakes: any text from anyone, any
callback data on a real invoice, edited messages, buttons whose message is gone. Nothing raises
an unhandled exception, and no invoice, deposit or subscription changes unless the action was
legitimately the sender's to take (clients can send any callback data).

Hypothesis drives each test with ONE world (fakes + app) on a private event loop that turns
while each example runs, so 40 examples cost seconds, not 40 start-ups.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot import callbacks as cb
from bot.throttle import GAP_MS
from fakes.telegram_state import ChatMessage
from payments.storage.schema import deposits, invoices, subscriptions
from tests.botkit import ADMIN, BotWorld, Customer, invoice_id_of

T = TypeVar("T")
HOSTILE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
WATCHED = ("bot", "payments", "telegram", "apscheduler")
PLAN_WORDS = ("pro", "enterprise")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in WATCHED:
            self.records.append(record)


@contextmanager
def logged_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of the bot, the core, PTB (its error handler included) and the jobs."""
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)


def describe(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()} {r.exc_info[1] if r.exc_info else ''}" for r in records]


class Arena:
    """One world for a whole hypothesis run; ``run`` turns its loop until a coroutine is done."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.stack = AsyncExitStack()
        self.world = self.run(self._open(tmp_path))
        self._ids = itertools.count(1)

    async def _open(self, tmp_path: Path) -> BotWorld:
        world = await self.stack.enter_async_context(BotWorld.open(tmp_path))
        await self.stack.enter_async_context(world.running())
        return world

    def run(self, awaitable: Awaitable[T]) -> T:
        async def until_done() -> T:
            return await asyncio.wait_for(awaitable, 60)

        return self.loop.run_until_complete(until_done())

    def close(self) -> None:
        try:
            self.run(self.stack.aclose())
        finally:
            asyncio.set_event_loop(None)
            self.loop.close()

    async def rows(self) -> dict[str, list[dict[str, Any]]]:
        await self.world.settled()
        tables = {"invoices": invoices, "deposits": deposits, "subscriptions": subscriptions}
        return {name: await self.world.rows(table) for name, table in tables.items()}

    def stranger(self, user_id: int, language: str, name: str) -> Customer:
        self.world.tg.user(user_id, first_name=name, language_code=language)
        return Customer(self.world, user_id)

    async def pressed(self, user: Customer, message: ChatMessage, data: str) -> str:
        """Press ``data`` under ``message``; the answer's text ("" when none) once answered."""
        query = self.world.tg.press(user.id, message, data)

        def answered() -> list[str] | None:
            found = [a for a in self.world.tg.answers if a.callback_query_id == query["id"]]
            return [found[0].text or ""] if found else None

        [text] = await self.world.tg.wait_for(answered, 10, f"an answer to {data!r}")
        return text


@contextmanager
def arena(tmp_path: Path) -> Iterator[tuple[Arena, list[logging.LogRecord]]]:
    with logged_errors() as errors:
        place = Arena(tmp_path)
        try:
            yield place, errors
        finally:
            place.close()


# --- strategies ----------------------------------------------------------------------------------

COMMANDS = [
    "/start", "/plans", "/status", "/history", "/help", "/cancel", "/pending", "/confirm",
    "/reject", "/reassign", "/refunded", "/stats", "/user", "/grant", "/nope", "/",
]  # fmt: skip
LOOKALIKES = ["/CONFIRM", "／confirm", "/confirm\u200b", "/ confirm", "//confirm", "/confirm_"]
SEPARATORS = ["", " ", "  ", "\n", "\t", "@subsbot_test_bot ", "@other_bot ", "@"]
NUMBERISH = ["0", "-1", "²", "١٢٣", "1" * 30, "101"]
WORDS = st.from_regex(r"[A-Za-z0-9²١_-]{1,40}", fullmatch=True)
LANGUAGES = ["en", "ru", "ru-RU", "pt-br", "", "xx", "EN", "zh-hans"]


def _long(seed: str) -> str:
    return (seed or "x") * (4000 // max(1, len(seed))) if seed else "x" * 4000


texts = st.one_of(
    st.text(min_size=1, max_size=200),
    st.builds(
        lambda c, s, a: c + s + a,
        st.sampled_from(COMMANDS + LOOKALIKES),
        st.sampled_from(SEPARATORS),
        st.text(max_size=60),
    ),
    st.builds(
        lambda c, a: f"{c} {' '.join(a)}",
        st.sampled_from(COMMANDS),
        st.lists(st.one_of(st.sampled_from(NUMBERISH), WORDS), min_size=1, max_size=4),
    ),
    st.text(min_size=1, max_size=8).map(_long),
)
ADMIN_COMMANDS = ["/confirm", "/reject", "/reassign", "/refunded", "/user", "/grant", "/stats"]
admin_texts = st.builds(
    lambda c, first, rest: " ".join([c, first, *rest]),
    st.sampled_from(ADMIN_COMMANDS),
    st.sampled_from(NUMBERISH),
    st.lists(st.one_of(st.sampled_from(NUMBERISH), WORDS), max_size=2),
)
users = st.tuples(
    st.integers(10_000, 2**40), st.sampled_from(LANGUAGES), st.text(min_size=1, max_size=64)
)


def within_64_bytes(data: str) -> bool:
    return 1 <= len(data.encode()) <= cb.MAX_BYTES


def callback_data(invoice_id: str) -> st.SearchStrategy[str]:
    real = [
        cb.encode(a)
        for a in (
            cb.CheckInvoice(invoice_id),
            cb.ClaimInvoice(invoice_id),
            cb.CancelInvoice(invoice_id),
            cb.AdminConfirm(invoice_id, force=False),
            cb.AdminConfirm(invoice_id, force=True),
            cb.AdminReject(invoice_id),
            cb.AdminPage(0),
            cb.Menu(),
            cb.ChoosePlan("pro"),
            cb.Renew("enterprise"),
            cb.ChooseCoin("pro", "BTC"),
            cb.ChooseNetwork("pro", "USDT", "TRC20"),
            cb.ChoosePlan("gold"),
            cb.ChooseCoin("pro", "DOGE"),
            cb.ChooseNetwork("pro", "USDT", "NOPE"),
        )
    ]
    mutated = st.builds(
        lambda data, i, junk: data[:i] + junk + data[i + 1 :],
        st.sampled_from(real),
        st.integers(0, 20),
        st.text(max_size=3),
    )
    return st.one_of(st.sampled_from(real), mutated, st.text(min_size=1, max_size=64)).filter(
        within_64_bytes
    )


def legit_change(action: cb.Action | None, owner: bool) -> bool:
    """Whether a press may change rows: anyone may order; only the owner may cancel."""
    return isinstance(action, cb.ChooseCoin | cb.ChooseNetwork) or (
        owner and isinstance(action, cb.CancelInvoice)
    )


# --- any text, from anyone -----------------------------------------------------------------------


def test_any_text_from_anyone_is_answered_and_changes_nothing(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        owner = world.customer(101)
        invoice_id = invoice_id_of(place.run(owner.buy()))
        before = place.run(place.rows())

        @HOSTILE
        @given(user=users, text=texts)
        def check(user: tuple[int, str, str], text: str) -> None:
            sender = place.stranger(*user)
            seen = len(sender.messages())
            world.clock.advance(GAP_MS)  # past the gap between two "I didn't understand"
            world.tg.send_text(sender.id, text)
            place.run(sender.wait_new(seen))  # every message gets an answer

        check()
        after = place.run(place.rows())
        assert after == before
        assert (place.run(world.invoice_row(invoice_id)))["status"] == "pending"
        assert describe(errors) == []


def test_admin_commands_with_any_arguments_refuse_politely(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        owner, admin = world.customer(101), world.customer(ADMIN)
        place.run(owner.buy())
        before = place.run(place.rows())

        @HOSTILE
        @given(text=st.one_of(admin_texts, texts))
        @example("/user ²")
        @example("/grant ١٢٣ x ²")
        @example(f"/user {'9' * 40}")
        def check(text: str) -> None:
            assume(not any(word in text.lower() for word in PLAN_WORDS))  # no grant by chance
            seen = len(admin.messages())
            world.clock.advance(GAP_MS)  # past the gap between two "I didn't understand"
            world.tg.send_text(ADMIN, text)
            place.run(admin.wait_new(seen))

        check()
        assert place.run(place.rows()) == before
        assert describe(errors) == []


# --- any callback data on a real invoice ---------------------------------------------------------


def test_any_callback_data_is_answered_and_only_the_owner_acts(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        owner = world.customer(101)
        photo = place.run(owner.buy())
        invoice_id = invoice_id_of(photo)
        stranger = world.customer(102)
        menu = place.run(stranger.send("/start"))
        baseline = [place.run(place.rows())]

        @HOSTILE
        @given(data=callback_data(invoice_id), by_owner=st.booleans())
        def check(data: str, by_owner: bool) -> None:
            user, message = (owner, photo) if by_owner else (stranger, menu)
            answer = place.run(place.pressed(user, message, data))
            action = cb.parse(data)
            rows = place.run(place.rows())
            if legit_change(action, by_owner):
                baseline[0] = rows
                return
            assert rows == baseline[0], data
            if action is None:
                assert answer == "This button is no longer valid."
            elif not by_owner and isinstance(action, cb.AdminConfirm | cb.AdminReject):
                assert answer == "This command is for the shop's admins."
            elif not by_owner and action in (
                cb.CheckInvoice(invoice_id),
                cb.CancelInvoice(invoice_id),
            ):
                assert answer == "This invoice isn't yours."

        check()
        assert describe(errors) == []


# --- edited messages -----------------------------------------------------------------------------


def test_edited_messages_are_ignored(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        owner, admin = world.customer(101), world.customer(ADMIN)
        place.run(owner.buy())
        for who, text in ((owner, "/start"), (owner, "hello"), (admin, "/grant 101 pro 7")):
            place.run(who.send(text))
        written = {
            who.id: [m.message_id for m in world.tg.messages(who.id) if not m.from_bot]
            for who in (owner, admin)
        }
        before = place.run(place.rows())
        counts = {who: len(world.tg.bot_messages(who)) for who in written}

        @HOSTILE
        @given(who=st.sampled_from(sorted(written)), pick=st.integers(0, 10), text=texts)
        def check(who: int, pick: int, text: str) -> None:
            ids = written[who]
            world.tg.edit_text(who, ids[pick % len(ids)], text)
            place.run(world.tg.wait_idle(quiet_s=0.1))

        check()
        place.run(world.tg.wait_idle(quiet_s=0.3))
        assert {who: len(world.tg.bot_messages(who)) for who in written} == counts
        assert place.run(place.rows()) == before
        assert describe(errors) == []


# --- buttons whose message is gone ---------------------------------------------------------------


def press_without_message(
    world: BotWorld, user_id: int, data: str, *, inaccessible: bool = False
) -> str:
    """A callback query as Telegram sends it for an inline-mode message (no ``message``) or for
    a message older than 48 h (an InaccessibleMessage: date 0). Returns the query id."""
    query_id = f"q{user_id}x{len(world.tg.requests)}x{len(data)}{id(data)}"
    with world.tg._lock:  # the fake answers only queries it handed out
        world.tg._open_queries.add(query_id)
    query: dict[str, Any] = {"id": query_id, "from": world.tg._user(user_id), "data": data}
    query["chat_instance"] = f"ci{user_id}"
    if inaccessible:
        chat = {"id": user_id, "type": "private", "first_name": "X"}
        query["message"] = {"message_id": 1, "date": 0, "chat": chat}
    else:
        query["inline_message_id"] = f"inline{query_id}"
    world.tg.add_update({"callback_query": query})
    return query_id


def test_a_button_without_its_message_is_handled(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        owner = world.customer(101)
        world.customer(ADMIN)
        invoice_id = invoice_id_of(place.run(owner.buy()))
        baseline = [place.run(place.rows())]

        # an admin's second tap from a message that is gone still confirms, and says so
        press_without_message(world, ADMIN, cb.encode(cb.AdminConfirm(invoice_id, force=True)))
        place.run(Customer(world, ADMIN).wait_text(f"Invoice {invoice_id} is paid (marked)"))
        assert place.run(world.invoice_row(invoice_id))["status"] == "paid"
        # the activation goes out through the outbox: let it arrive before /start, or it is
        # taken for the answer to /start
        place.run(owner.wait_text(f"Payment received for invoice {invoice_id}"))
        invoice_id = invoice_id_of(place.run(owner.buy("Enterprise")))
        baseline = [place.run(place.rows())]

        @HOSTILE
        @given(
            data=callback_data(invoice_id),
            who=st.sampled_from([101, 102, ADMIN]),
            inaccessible=st.booleans(),
        )
        def check(data: str, who: int, inaccessible: bool) -> None:
            press_without_message(world, who, data, inaccessible=inaccessible)
            rows = place.run(place.rows())
            action = cb.parse(data)
            admin_acts = who == ADMIN and isinstance(action, cb.AdminConfirm | cb.AdminReject)
            if legit_change(action, who == 101) or admin_acts:
                baseline[0] = rows
                return
            assert rows == baseline[0], (who, data)

        check()
        assert describe(errors) == []


# --- the error handler ---------------------------------------------------------------------------


def test_a_failing_request_gets_the_polite_line_and_is_logged(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        alice = world.customer(101)
        world.tg.fail_next("sendMessage", "bad_request", chat_id=101, description="boom")
        reply = place.run(alice.send("/help"))
        assert reply.plain == "Something went wrong on our side. Please try again in a minute."
        assert "BadRequest" in " ".join(describe(errors))
        errors.clear()

        # transient: retried after a short pause, so the reply arrives, and no ERROR is logged
        world.tg.fail_next("sendMessage", "502", chat_id=101)
        place.run(alice.send("/help", expect="How it works"))
        place.run(world.tg.wait_idle(quiet_s=0.3))
        assert describe(errors) == []

        # a button whose handler fails after answering: the line arrives as a message
        photo = place.run(alice.buy())
        seen = len(alice.messages())
        world.tg.fail_next("sendMessage", "bad_request", chat_id=101, description="boom")
        data = cb.encode(cb.ClaimInvoice(invoice_id_of(photo)))
        assert place.run(place.pressed(alice, photo, data)) == ""
        reply = place.run(alice.wait_new(seen, "Something went wrong"))
        assert "boom" not in reply.plain and "BadRequest" not in reply.plain
        assert "BadRequest" in " ".join(describe(errors))
