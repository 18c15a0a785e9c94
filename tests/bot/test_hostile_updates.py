"""Updates of every shape Telegram may deliver, and customer commands with any arguments, from
anyone: the real bot over the fakes (tests/bot/test_hostile_input.py covers any text, admin
commands,
any callback data on a real invoice and edited messages).

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

import itertools
import time
from pathlib import Path
from typing import Any

from hypothesis import example, given, note
from hypothesis import strategies as st
from telegram import Update

from bot.throttle import GAP_MS
from payments.storage import schema
from tests.bot.test_hostile_input import HOSTILE, Arena, arena, describe
from tests.botkit import ADMIN, BotWorld, Customer, invoice_id_of

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
LANGUAGES = st.one_of(st.none(), st.sampled_from(["en", "ru", "pt-br", ""]), st.text(max_size=40))


@st.composite
def telegram_users(draw: st.DrawFn, *, bot: bool | None = None) -> dict[str, Any]:
    """A User as Telegram sends it; every optional field may be missing."""
    user: dict[str, Any] = {
        "id": draw(USER_IDS),
        "is_bot": draw(st.booleans()) if bot is None else bot,
        "first_name": draw(st.text(max_size=64)),
    }
    if (language := draw(LANGUAGES)) is not None:
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


CUSTOMER_COMMANDS = ["/start", "/plans", "/status", "/history", "/help", "/cancel", "/join"]
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
