"""Anything a client can send, against the real bot over the fakes: any text from anyone, any
callback data on a real invoice, edited messages, buttons whose message is gone. Nothing raises
an unhandled exception, and no invoice, deposit or subscription changes unless the action was
legitimately the sender's to take (clients can send any callback data).

Hypothesis drives each test with ONE world (fakes + app) on a private event loop that turns
while each example runs, so 40 examples cost seconds, not 40 start-ups.

The second half of this file: updates of every shape Telegram may deliver, and customer commands
with any arguments, from anyone.

- Updates of other kinds and odd shapes: no ``from``, no text (a sticker, a photo, a contact, a
  Mini App's web_app_data), channel posts, group messages, inline queries, a button without its
  message or without data, polls, reactions, join requests and member changes in chats that are
  not the shop's, an update that carries nothing at all.
- Customer commands (/start with any deep-link payload, /plans, /status, /history, /help,
  /cancel, /join) with any arguments, from the owner of an open invoice or from users the bot
  never saw.

Nothing raises an unhandled exception, nothing is written to a group or channel, and no row of
the shop changes except the sender's own customer row (created or given a new language: the
only thing a message legitimately causes here). Nobody is shown the owner's invoice. An update
python-telegram-bot cannot read at all is skipped, and the next one answered.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st
from telegram import Update

from bot import callbacks as cb
from bot.throttle import GAP_MS
from fakes.telegram_state import ChatMessage
from payments.storage import schema
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


# every table a customer's update could touch (the jobs' own bookkeeping, leases, cursors and
# OKX's chains, is left out: it changes on its own)
SHOP_TABLES = ["customers", "invoices", "reservations", "deposits", "claims", "claim_waits"]
SHOP_TABLES += ["subscriptions", "subscription_periods", "outbox", "invoice_messages"]
SHOP_TABLES += ["memberships", "access_links", "merchant_events", "webhook_deliveries"]
OWNER = 101
KNOWN = 102  # wrote /start before; has no invoice
STRANGER = 777  # writes for the first time
BOT_USERNAME = "subsbot_test_bot"
Rows = dict[str, list[dict[str, Any]]]


async def shop_rows(world: BotWorld) -> Rows:
    """The shop's rows once every queued update was handled and the outbox is quiet."""
    await world.settled()
    await world.tg.wait_idle(quiet_s=0.1)
    rows = {name: await world.rows(schema.metadata.tables[name]) for name in SHOP_TABLES}
    return {name: sorted(found, key=repr) for name, found in rows.items()}


def without_customer(rows: Rows, customer_id: int | None) -> Rows:
    return rows | {"customers": [r for r in rows["customers"] if r["id"] != customer_id]}


def assert_only_the_senders_row_changed(before: Rows, after: Rows, sender: int | None) -> None:
    """Every row as it was, except that ``sender``'s customer row may be new or changed."""
    assert without_customer(after, sender) == without_customer(before, sender)
    mine = [r for r in after["customers"] if r["id"] == sender]
    assert len(mine) <= 1 and all(not r["unreachable"] for r in mine)


def writes_to_groups(world: BotWorld) -> list[str]:
    """Requests the bot made about a group or channel (negative chat ids)."""
    return [
        f"{r.method} {r.params.get('chat_id')}"
        for r in world.tg.requests
        if str(r.params.get("chat_id", "")).startswith("-")
    ]


# --- building updates ------------------------------------------------------------------------

_ids = itertools.count(5_000_000)
GROUP, SUPERGROUP, CHANNEL = -4_000_000_001, -1_001_000_000_001, -1_002_000_000_002
USER_IDS = st.one_of(st.integers(1, 2**53 - 1), st.just(KNOWN)).filter(
    lambda i: i not in (OWNER, ADMIN, STRANGER)  # whose commands legitimately change rows
)
LANGUAGE_CODES = st.one_of(
    st.none(), st.sampled_from(["en", "ru", "pt-br", ""]), st.text(max_size=40)
)


@st.composite
def telegram_users(draw: st.DrawFn, *, bot: bool | None = None) -> dict[str, Any]:
    """A User as Telegram sends it; every optional field may be missing."""
    user: dict[str, Any] = {
        "id": draw(USER_IDS),
        "is_bot": draw(st.booleans()) if bot is None else bot,
        "first_name": draw(st.text(max_size=64)),
    }
    if (language := draw(LANGUAGE_CODES)) is not None:
        user["language_code"] = language
    if draw(st.booleans()):
        user["username"] = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True))
    if draw(st.booleans()):
        user["last_name"] = draw(st.text(max_size=64))
    if draw(st.booleans()):
        user["is_premium"] = True
    return user


def private_chat(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "type": "private", "first_name": user["first_name"]}


GROUP_CHATS = st.sampled_from(
    [
        {"id": GROUP, "type": "group", "title": "A group"},
        {"id": SUPERGROUP, "type": "supergroup", "title": "A supergroup", "is_forum": True},
        {"id": CHANNEL, "type": "channel", "title": "A channel", "username": "somechannel"},
    ]
)
PHOTO = [{"file_id": "AgACAgIAAx0", "file_unique_id": "AQADAgAT", "width": 90, "height": 90}]
STICKER: dict[str, Any] = {
    "file_id": "CAACAgIAAxk",
    "file_unique_id": "AgADAgAT",
    "type": "regular",
}
STICKER |= {"width": 512, "height": 512, "is_animated": False, "is_video": False}


def _command_text(draw: st.DrawFn) -> dict[str, Any]:
    command = draw(st.sampled_from(["/start", "/status", "/cancel", "/grant", "/confirm"]))
    command += draw(st.sampled_from(["", f"@{BOT_USERNAME}", "@other_bot"]))
    text = command + draw(st.sampled_from(["", " "])) + draw(st.text(max_size=40))
    return {
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
    }


CONTENT_KINDS = ["text", "command", "sticker", "photo", "contact", "location", "dice"]
CONTENT_KINDS += ["web_app_data", "document", "voice", "new_chat_members", "left_chat_member"]
CONTENT_KINDS += ["nothing"]
UPDATE_KINDS = ["message", "edited_message", "channel_post", "edited_channel_post"]
UPDATE_KINDS += ["business_message", "callback_query", "inline_query", "chosen_inline_result"]
UPDATE_KINDS += ["pre_checkout_query", "shipping_query", "poll", "poll_answer", "my_chat_member"]
UPDATE_KINDS += ["chat_member", "chat_join_request", "message_reaction", "empty"]


@st.composite
def contents(draw: st.DrawFn) -> dict[str, Any]:
    """What a message carries: text, a command, or one of the kinds without any text."""
    kind = draw(st.sampled_from(CONTENT_KINDS))
    match kind:
        case "text":
            return {"text": draw(st.text(min_size=1, max_size=100))}
        case "command":
            return _command_text(draw)
        case "sticker":
            return {"sticker": STICKER | {"emoji": draw(st.text(max_size=2))}}
        case "photo":
            return {"photo": PHOTO, "caption": draw(st.text(max_size=60))}
        case "contact":
            contact = {"phone_number": draw(st.text(max_size=20)), "first_name": "Ann"}
            return {"contact": contact | {"user_id": draw(USER_IDS)}}
        case "location":
            return {"location": {"latitude": 51.5, "longitude": -0.12}}
        case "dice":
            return {"dice": {"emoji": "🎲", "value": draw(st.integers(1, 6))}}
        case "web_app_data":  # the Mini App's sendData: text we never asked for
            return {"web_app_data": {"data": draw(st.text(max_size=200)), "button_text": "Pay"}}
        case "document":
            return {"document": {"file_id": "BQACAgIAAxk", "file_unique_id": "AgADBQAD"}}
        case "voice":
            return {
                "voice": {"file_id": "AwACAgIAAxk", "file_unique_id": "AgADAwAD", "duration": 1}
            }
        case "new_chat_members":
            return {"new_chat_members": [draw(telegram_users())]}
        case "left_chat_member":
            return {"left_chat_member": draw(telegram_users())}
    return {}  # a message with nothing in it


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A Message in a private chat or a group, from someone or not, of any content."""
    user = draw(telegram_users())
    chat = draw(st.one_of(st.just(private_chat(user)), GROUP_CHATS))
    message: dict[str, Any] = {"message_id": next(_ids), "date": int(time.time()), "chat": chat}
    message |= draw(contents())
    shape = draw(st.sampled_from(["from", "from", "no_from", "sender_chat", "forwarded", "reply"]))
    if shape != "no_from":
        message["from"] = user
    if shape == "sender_chat":  # an anonymous group admin, or a channel posting in its group
        message["sender_chat"] = draw(GROUP_CHATS)
    if shape == "forwarded":
        origin = {"type": "hidden_user", "sender_user_name": "Someone", "date": 1_700_000_000}
        message["forward_origin"] = origin
    if shape == "reply":
        message["reply_to_message"] = {"message_id": 1, "date": 1_700_000_000, "chat": chat}
    return message


def _member(user: dict[str, Any], status: str) -> dict[str, Any]:
    return {"status": status, "user": user}


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    """Any update (without its update_id)."""
    kind = draw(st.sampled_from(UPDATE_KINDS))
    user = draw(telegram_users(bot=False))
    now = int(time.time())
    if kind in ("message", "business_message"):
        message = draw(messages())
        if kind == "business_message":
            message["business_connection_id"] = "bc" + str(next(_ids))
        return {kind: message}
    if kind == "edited_message":
        return {kind: draw(messages()) | {"edit_date": now}}
    if kind in ("channel_post", "edited_channel_post"):
        chat = {"id": CHANNEL, "type": "channel", "title": "A channel"}
        post = {"message_id": next(_ids), "date": now, "chat": chat, "sender_chat": chat}
        return {kind: post | draw(contents())}
    query_id = f"hq{next(_ids)}"
    if kind == "callback_query":
        query: dict[str, Any] = {"id": query_id, "from": user, "chat_instance": "ci0"}
        if draw(st.booleans()):
            query["data"] = draw(st.text(min_size=1, max_size=64))
        else:
            query["game_short_name"] = "game"
        if draw(st.booleans()):
            query["inline_message_id"] = f"inline{query_id}"
        else:  # a message too old to be shown: date 0 (InaccessibleMessage)
            query["message"] = {"message_id": 1, "date": 0, "chat": private_chat(user)}
        return {kind: query}
    if kind == "inline_query":
        query = {"id": query_id, "from": user, "query": draw(st.text(max_size=60)), "offset": ""}
        return {kind: query}
    if kind == "chosen_inline_result":
        return {kind: {"result_id": "r1", "from": user, "query": draw(st.text(max_size=20))}}
    if kind == "pre_checkout_query":
        query = {"id": query_id, "from": user, "currency": "XTR", "total_amount": 1}
        return {kind: query | {"invoice_payload": draw(st.text(max_size=40))}}
    if kind == "shipping_query":
        address = {"country_code": "GB", "state": "", "city": "London", "street_line1": "x"}
        address |= {"street_line2": "", "post_code": "N1"}
        query = {"id": query_id, "from": user, "invoice_payload": "p", "shipping_address": address}
        return {kind: query}
    if kind == "poll":
        options = [
            {"text": "a", "voter_count": 0, "persistent_id": "o1"},
            {"text": "b", "voter_count": 1, "persistent_id": "o2"},
        ]
        poll: dict[str, Any] = {"id": query_id, "question": draw(st.text(min_size=1, max_size=40))}
        poll |= {"options": options, "total_voter_count": 1, "is_closed": False}
        poll |= {"is_anonymous": True, "type": "regular", "allows_multiple_answers": False}
        poll |= {"allows_revoting": False, "members_only": False}
        return {kind: poll}
    if kind == "poll_answer":
        answer = {"poll_id": query_id, "option_ids": [0], "option_persistent_ids": ["o1"]}
        return {kind: answer | {"user": user}}
    if kind in ("my_chat_member", "chat_member"):
        chat = draw(GROUP_CHATS)
        old, new = draw(st.permutations(["left", "member", "kicked", "administrator"]))[:2]
        whom = user if kind == "chat_member" else {"id": 123456, "is_bot": True, "first_name": "B"}
        change: dict[str, Any] = {"chat": chat, "from": user, "date": now}
        change |= {"old_chat_member": _member(whom, old), "new_chat_member": _member(whom, new)}
        if new == "administrator":
            change["new_chat_member"] |= {"can_be_edited": False, "is_anonymous": False}
            rights = ["can_manage_chat", "can_delete_messages", "can_manage_video_chats"]
            rights += ["can_restrict_members", "can_promote_members", "can_change_info"]
            rights += ["can_invite_users", "can_post_stories", "can_edit_stories"]
            rights += ["can_delete_stories"]
            change["new_chat_member"] |= dict.fromkeys(rights, False)
        if old == "administrator":
            change["old_chat_member"] = _member(whom, "left")
        if "kicked" in (old, new):
            member = "old_chat_member" if old == "kicked" else "new_chat_member"
            change[member]["until_date"] = 0
        return {kind: change}
    if kind == "chat_join_request":
        chat = draw(GROUP_CHATS)
        request = {"chat": chat, "from": user, "user_chat_id": user["id"], "date": now}
        return {kind: request}
    if kind == "message_reaction":
        reaction = {"chat": private_chat(user), "message_id": 1, "date": now, "user": user}
        reaction |= {"old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}
        return {kind: reaction}
    return {}  # an update that carries nothing (a kind this PTB does not know)


def private_sender(raw: dict[str, Any]) -> int | None:
    """The person who sent ``raw`` in their private chat with the bot, if anyone: the one
    customer row the update may create or change (Telegram's meaning of the update, as PTB
    reads it)."""
    update = Update.de_json({"update_id": 0, **raw}, None)
    user, chat = update.effective_user, update.effective_chat
    if user is None or user.is_bot or chat is None or chat.type != "private":
        return None
    return user.id


# --- the tests -------------------------------------------------------------------------------


def _open_shop(place: Arena) -> tuple[str, Rows]:
    """The owner has an open invoice and KNOWN has written /start; the rows as they are then."""
    world = place.world
    invoice_id = invoice_id_of(place.run(world.customer(OWNER).buy()))
    place.run(world.customer(KNOWN).send("/start"))
    return invoice_id, place.run(shop_rows(world))


def test_updates_of_any_kind_and_shape_change_nothing(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        invoice_id, before = _open_shop(place)
        baseline = [before]

        @HOSTILE
        @given(raw=updates())
        def check(raw: dict[str, Any]) -> None:
            note(repr(raw))
            sender = private_sender(raw)
            query = raw.get("callback_query")
            if query is not None:
                with world.tg._lock:  # the fake answers only the queries it handed out
                    world.tg._open_queries.add(query["id"])
            world.tg.add_update(raw)
            after = place.run(shop_rows(world))
            assert_only_the_senders_row_changed(baseline[0], after, sender)
            baseline[0] = after
            assert writes_to_groups(world) == []

        check()
        assert place.run(world.invoice_row(invoice_id))["status"] == "pending"
        assert describe(errors) == []


CUSTOMER_COMMANDS = [
    "/start",
    "/plans",
    "/status",
    "/history",
    "/help",
    "/cancel",
    "/join",
    "/terms",
]
PAYLOADS = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),  # a deep link's start parameter
    st.sampled_from(["ref_101", "pro", "' OR 1=1 --", "1; DROP TABLE invoices", "\u202e\x00🙂"]),
)


@st.composite
def customer_commands(draw: st.DrawFn) -> str:
    command = draw(st.sampled_from(CUSTOMER_COMMANDS))
    command += draw(st.sampled_from(["", f"@{BOT_USERNAME}"]))
    separator = draw(st.sampled_from([" ", "  ", "\n", "\t"]))
    return command + separator + draw(PAYLOADS)


def test_customer_commands_with_any_arguments_from_anyone(tmp_path: Path) -> None:
    with arena(tmp_path) as (place, errors):
        world = place.world
        invoice_id, before = _open_shop(place)
        baseline = [before]

        @HOSTILE
        @given(
            text=customer_commands(),
            who=st.one_of(st.sampled_from([OWNER, KNOWN]), USER_IDS),
            language=st.sampled_from(["en", "ru", "", "x" * 40]),
        )
        @example(text="/start ' OR 1=1 --", who=STRANGER, language="en")
        @example(text="/history 101", who=KNOWN, language="en")
        @example(text=f"/status {invoice_id}", who=555, language="ru")
        @example(text="/cancel " + invoice_id, who=KNOWN, language="en")
        def check(text: str, who: int, language: str) -> None:
            if who == OWNER and text.startswith("/cancel"):
                return  # the owner's /cancel cancels: tests/e2e/test_customer.py
            world.tg.user(who, first_name=f"U{who}", language_code=language)
            sender = Customer(world, who)
            seen = len(sender.messages())
            world.clock.advance(GAP_MS)  # past the gap between two "I didn't understand"
            world.tg.send_text(who, text)
            place.run(sender.wait_new(seen))  # every command is answered
            after = place.run(shop_rows(world))
            assert_only_the_senders_row_changed(baseline[0], after, who)
            baseline[0] = after
            if who != OWNER:
                assert not any(invoice_id in t for t in sender.texts()), text

        check()
        assert place.run(world.invoice_row(invoice_id))["status"] == "pending"
        # the one legitimate change: a stranger's /start made them a customer
        customers = {r["id"]: r for r in baseline[0]["customers"]}
        assert customers[STRANGER]["language"] == "en"
        assert describe(errors) == []


def test_an_update_the_bot_cannot_read_is_skipped_and_the_next_one_answered(
    tmp_path: Path,
) -> None:
    """Regression: a Bot API server older than this python-telegram-bot (a self-hosted one)
    sends polls without ``persistent_id``; PTB could not read the batch and asked for it again,
    forever, in a tight loop: nothing after it was ever answered."""
    with arena(tmp_path) as (place, errors):
        world = place.world
        alice = world.customer(KNOWN)
        user = {"id": KNOWN, "is_bot": False, "first_name": "A", "language_code": "en"}
        option = {"text": "a", "voter_count": 0}  # no persistent_id
        poll = {"id": "p1", "question": "?", "options": [option], "total_voter_count": 0}
        poll |= {"is_closed": False, "is_anonymous": False, "type": "regular"}
        poll |= {"allows_multiple_answers": False}
        message = {"message_id": 9, "date": int(time.time()), "chat": private_chat(user)}
        world.tg.add_update({"message": message | {"from": user, "poll": poll}})
        place.run(alice.send("/help", expect="How it works"))
        assert [r.getMessage() for r in errors] == [
            "skipped update 1 (message): it cannot be read "
            "(`persistent_id` is a required argument since Bot API 9.6)"
        ]
