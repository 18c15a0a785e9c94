"""The fake Bot API's channels: members, invite links and join requests, through PTB's Bot."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import (
    Bot,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberRestricted,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter

from fakes.telegram import FakeTelegram
from fakes.telegram_chats import NO_INVITE_RIGHTS, NO_RESTRICT_RIGHTS, OWNER_ID
from tests.paths import REPO

CHAT = -1001234567890
ALICE, BOB = 4242, 4343
BOT_ID = 123456
DAY = 86_400
T0 = 2_000_000_000  # a simulated clock's "now", far from the wall clock


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(hang_s=5.0) as server:
        server.add_chat(CHAT, title="Gold channel")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as b:
        yield b


async def updates(bot: Bot, allowed: list[str] | None = None) -> tuple[Update, ...]:
    """Every pending update (confirmed), as PTB parses them."""
    got = await bot.get_updates(timeout=0, allowed_updates=allowed)
    if got:
        await bot.get_updates(offset=got[-1].update_id + 1, timeout=0)
    return got


async def test_start_up_check_sees_an_administrator_with_rights(
    fake: FakeTelegram, bot: Bot
) -> None:
    chat = await bot.get_chat(CHAT)
    assert (chat.id, chat.type, chat.title) == (CHAT, "channel", "Gold channel")
    me = await bot.get_chat_member(CHAT, BOT_ID)
    assert isinstance(me, ChatMemberAdministrator) and me.user.id == BOT_ID
    assert me.can_invite_users and me.can_restrict_members and me.can_post_messages
    admins = await bot.get_chat_administrators(CHAT)
    assert [(a.user.id, a.status) for a in admins] == [
        (OWNER_ID, "creator"),
        (BOT_ID, "administrator"),
    ]
    assert (await bot.get_chat_member(CHAT, ALICE)).status == "left"
    fake.add_member(CHAT, BOB, "restricted")
    restricted = await bot.get_chat_member(CHAT, BOB)
    assert isinstance(restricted, ChatMemberRestricted) and restricted.is_member
    assert await bot.get_chat_member_count(CHAT) == 3
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat(-100999)
    fake.add_chat(-100777, type="supergroup", bot_rights={"can_restrict_members": False})
    limited = await bot.get_chat_member(-100777, BOT_ID)
    assert isinstance(limited, ChatMemberAdministrator) and not limited.can_restrict_members
    assert limited.can_pin_messages and limited.can_post_messages is None
    fake.set_bot_status(-100777, "left")
    with pytest.raises(Forbidden, match=r"(?i)not a member of the supergroup"):
        await bot.get_chat(-100777)


async def test_single_use_link_lets_one_user_in(fake: FakeTelegram, bot: Bot) -> None:
    expire = dt.datetime.fromtimestamp(T0 + DAY, dt.UTC)
    link = await bot.create_chat_invite_link(CHAT, expire, member_limit=1, name="sub 42")
    assert link.invite_link.startswith("https://t.me/+") and len(link.invite_link) == 30
    assert (link.creator.id, link.name, link.member_limit) == (BOT_ID, "sub 42", 1)
    assert link.expire_date == expire and not (link.is_primary or link.is_revoked)
    assert fake.join_by_link(ALICE, link.invite_link, now=T0) == "joined"
    assert fake.join_by_link(BOB, link.invite_link, now=T0) == "used_up"
    assert fake.join_by_link(ALICE, link.invite_link, now=T0) == "already_member"
    assert fake.members(CHAT) == {OWNER_ID, BOT_ID, ALICE}
    (stored,) = fake.invite_links(CHAT)
    assert stored["usage"] == 1 and stored["invite_link"] == link.invite_link
    assert (await bot.get_chat_member(CHAT, ALICE)).status == "member"
    assert fake.join_by_link(BOB, "https://t.me/+nope", now=T0) == "unknown"


async def test_link_expires_against_the_given_clock(fake: FakeTelegram, bot: Bot) -> None:
    link = await bot.create_chat_invite_link(CHAT, expire_date=T0 + DAY, member_limit=5)
    assert fake.join_by_link(ALICE, link.invite_link, now=T0 + DAY - 1) == "joined"
    assert fake.join_by_link(BOB, link.invite_link, now=T0 + DAY) == "expired"
    assert fake.member_status(CHAT, BOB) == "left"


async def test_revoked_link_refuses(fake: FakeTelegram, bot: Bot) -> None:
    link = await bot.create_chat_invite_link(CHAT, member_limit=1)
    revoked = await bot.revoke_chat_invite_link(CHAT, link.invite_link)
    assert revoked.is_revoked and revoked.invite_link == link.invite_link
    assert fake.join_by_link(ALICE, link.invite_link) == "revoked"
    assert fake.invite_links(CHAT)[0]["is_revoked"]
    with pytest.raises(BadRequest, match=r"(?i)INVITE_HASH_EXPIRED"):
        await bot.revoke_chat_invite_link(CHAT, "https://t.me/+unknown")


async def test_link_parameters_are_checked(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)member limit"):
        await bot.create_chat_invite_link(CHAT, member_limit=0)
    with pytest.raises(BadRequest, match=r"(?i)member limit"):
        await bot.create_chat_invite_link(CHAT, member_limit=1, creates_join_request=True)
    with pytest.raises(BadRequest, match=r"(?i)name is too long"):
        await bot.create_chat_invite_link(CHAT, name="x" * 33)


async def test_ban_then_unban_only_if_banned(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_member(CHAT, ALICE)
    fake.clock = lambda: T0 - 60
    assert await bot.ban_chat_member(CHAT, ALICE, until_date=T0)
    banned = await bot.get_chat_member(CHAT, ALICE)
    assert isinstance(banned, ChatMemberBanned) and banned.until_date.timestamp() == T0
    link = await bot.create_chat_invite_link(CHAT, member_limit=1)
    assert fake.join_by_link(ALICE, link.invite_link) == "banned"
    assert await bot.unban_chat_member(CHAT, ALICE, only_if_banned=True)
    assert fake.member_status(CHAT, ALICE) == "left"
    assert fake.join_by_link(ALICE, link.invite_link) == "joined"  # may come back by a new link
    assert await bot.ban_chat_member(CHAT, BOB)  # a non-member can be banned too
    assert fake.member_status(CHAT, BOB) == "kicked"
    with pytest.raises(BadRequest, match=r"(?i)user is an administrator of the chat"):
        await bot.ban_chat_member(CHAT, OWNER_ID)


async def test_a_temporary_ban_ends_by_itself_and_one_too_short_or_long_is_for_ever(
    fake: FakeTelegram, bot: Bot
) -> None:
    now = [float(T0)]
    fake.clock = lambda: now[0]
    fake.add_member(CHAT, ALICE)
    fake.add_member(CHAT, BOB)
    assert await bot.ban_chat_member(CHAT, ALICE, until_date=T0 + 60)
    assert await bot.ban_chat_member(CHAT, BOB, until_date=T0 + 20)  # under 30 s: for ever
    link = await bot.create_chat_invite_link(CHAT, member_limit=2)
    now[0] += 59
    assert fake.join_by_link(ALICE, link.invite_link) == "banned"
    now[0] += 1
    assert fake.member_status(CHAT, ALICE) == "left"
    assert not isinstance(await bot.get_chat_member(CHAT, ALICE), ChatMemberBanned)
    assert fake.join_by_link(ALICE, link.invite_link) == "joined"
    now[0] += 400 * 86400
    banned = await bot.get_chat_member(CHAT, BOB)
    assert isinstance(banned, ChatMemberBanned) and banned.until_date.timestamp() == 0


async def test_unban_without_only_if_banned_removes_a_member(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_member(CHAT, ALICE)
    assert await bot.unban_chat_member(CHAT, ALICE, only_if_banned=True)
    assert fake.member_status(CHAT, ALICE) == "member"  # the flag protects a member
    assert await bot.unban_chat_member(CHAT, ALICE)
    assert fake.member_status(CHAT, ALICE) == "left"  # the trap


async def test_missing_rights_give_telegrams_errors(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_member(CHAT, ALICE)
    fake.set_bot_rights(CHAT, can_invite_users=False, can_restrict_members=False)
    with pytest.raises(BadRequest) as refused:
        await bot.create_chat_invite_link(CHAT, member_limit=1)
    assert f"Bad Request: {refused.value.message.lower()}" == NO_INVITE_RIGHTS
    with pytest.raises(BadRequest) as restricted:
        await bot.ban_chat_member(CHAT, ALICE)
    assert f"Bad Request: {restricted.value.message.lower()}" == NO_RESTRICT_RIGHTS
    with pytest.raises(BadRequest, match=r"(?i)CHAT_ADMIN_REQUIRED"):
        await bot.approve_chat_join_request(CHAT, ALICE)
    assert fake.member_status(CHAT, ALICE) == "member"


async def test_join_requests_approved_and_declined(fake: FakeTelegram, bot: Bot) -> None:
    link = await bot.create_chat_invite_link(CHAT, name="ask", creates_join_request=True)
    assert fake.join_by_link(ALICE, link.invite_link, now=T0) == "requested"
    assert fake.request_join(BOB, CHAT, now=T0) == "requested"
    assert fake.join_requests(CHAT) == {ALICE, BOB}
    first, second = await updates(bot)
    assert first.chat_join_request is not None and second.chat_join_request is not None
    assert first.chat_join_request.from_user.id == ALICE
    assert first.chat_join_request.invite_link is not None
    assert first.chat_join_request.invite_link.invite_link == link.invite_link
    assert second.chat_join_request.invite_link is None
    assert second.chat_join_request.user_chat_id == BOB
    assert await bot.approve_chat_join_request(CHAT, ALICE)
    assert await bot.decline_chat_join_request(CHAT, BOB)
    assert fake.members(CHAT) == {OWNER_ID, BOT_ID, ALICE} and fake.join_requests(CHAT) == set()
    (approved,) = await updates(bot, ["chat_member"])  # the decline changes no membership
    assert approved.chat_member is not None and approved.chat_member.from_user.id == BOT_ID
    assert approved.chat_member.invite_link is not None  # came through the link...
    assert approved.chat_member.via_join_request is None  # ...so not a "direct" request
    with pytest.raises(BadRequest, match=r"(?i)HIDE_REQUESTER_MISSING"):
        await bot.approve_chat_join_request(CHAT, BOB)
    assert fake.request_join(BOB, CHAT) == "requested"
    assert fake.request_join(BOB, CHAT) == "already_requested"


async def test_chat_member_updates_need_allowed_updates(fake: FakeTelegram, bot: Bot) -> None:
    link = await bot.create_chat_invite_link(CHAT, member_limit=1)
    fake.join_by_link(ALICE, link.invite_link, now=T0)
    assert await updates(bot) == ()  # by default Telegram does not send chat_member
    fake.leave(ALICE, CHAT)
    (left,) = await updates(bot, ["message", "chat_member"])
    assert left.chat_member is not None and left.chat_member.from_user.id == ALICE
    assert (left.chat_member.old_chat_member.status, left.chat_member.new_chat_member.status) == (
        "member",
        "left",
    )
    second = await bot.create_chat_invite_link(CHAT, member_limit=1)
    fake.join_by_link(BOB, second.invite_link, now=T0)
    (joined,) = await updates(bot)  # the setting is remembered
    assert joined.chat_member is not None and joined.chat_member.invite_link is not None
    assert joined.chat_member.invite_link.invite_link == second.invite_link
    assert joined.chat_member.date.timestamp() == T0
    assert await bot.ban_chat_member(CHAT, BOB) and await bot.unban_chat_member(CHAT, BOB, True)
    ban, unban = await updates(bot)
    assert ban.chat_member is not None and ban.chat_member.from_user.id == BOT_ID
    assert ban.chat_member.new_chat_member.status == "kicked"
    assert unban.chat_member is not None and unban.chat_member.new_chat_member.status == "left"
    fake.request_join(ALICE, CHAT)
    await updates(bot, ["chat_member"])  # the request itself is filtered out
    assert await bot.approve_chat_join_request(CHAT, ALICE)
    (approved,) = await updates(bot)
    assert approved.chat_member is not None and approved.chat_member.via_join_request


async def test_no_chat_member_updates_unless_the_bot_is_admin(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_chat(-100555, type="supergroup", bot_status="member")
    fake.add_member(-100555, ALICE)
    assert fake.leave(ALICE, -100555) and not fake.leave(ALICE, -100555)
    assert await updates(bot, ["chat_member"]) == ()


async def test_my_chat_member_when_the_owner_changes_the_bot(fake: FakeTelegram, bot: Bot) -> None:
    fake.set_bot_rights(CHAT, can_invite_users=False)
    (update,) = await updates(bot)  # my_chat_member is delivered by default
    change = update.my_chat_member
    assert change is not None and change.from_user.id == OWNER_ID
    old, new = change.old_chat_member, change.new_chat_member
    assert isinstance(old, ChatMemberAdministrator) and old.can_invite_users
    assert isinstance(new, ChatMemberAdministrator) and not new.can_invite_users
    fake.set_bot_status(CHAT, "kicked")
    (kicked,) = await updates(bot)
    assert kicked.my_chat_member is not None
    assert kicked.my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(Forbidden, match=r"(?i)bot was kicked from the channel chat"):
        await bot.get_chat_member(CHAT, BOT_ID)


async def test_faults_and_reset(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.fail_next("createChatInviteLink", "429", retry_after=2)
    with pytest.raises(RetryAfter):
        await bot.create_chat_invite_link(CHAT, member_limit=1)
    fake.fail_next("banChatMember", "bad_request", description="user not found")
    with pytest.raises(BadRequest, match=r"(?i)user not found"):
        await bot.ban_chat_member(CHAT, ALICE)
    assert fake.invite_links(CHAT) == [] and fake.member_status(CHAT, ALICE) == "left"
    assert [c.response_ok for c in fake.calls("createChatInviteLink")] == [False]
    assert fake.calls("banChatMember")[0].params["user_id"] == ALICE
    fake.reset()
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat(CHAT)


def test_standalone_adds_a_chat() -> None:
    root = str(REPO)
    command = [sys.executable, "-m", "fakes.telegram", "--port", "0", "--chat", str(CHAT)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        token = json.loads(process.stdout.readline())["token"]
        with urllib.request.urlopen(f"{url}{token}/getChat?chat_id={CHAT}", timeout=5) as answer:
            assert json.loads(answer.read())["result"]["type"] == "channel"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
