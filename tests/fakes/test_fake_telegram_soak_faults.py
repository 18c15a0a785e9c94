"""The fake Bot API's controls the soak's pauses and kick faults use: a call held in flight until
released, the calls in flight, unbans failing right after bans, and who is banned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import Bot
from telegram.error import TelegramError, TimedOut

from fakes.telegram import FakeTelegram

CHAT = -1001234567890
ALICE, BOB = 4242, 4343


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(hang_s=0.2) as server:
        server.add_chat(CHAT, title="Gold channel")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as b:
        yield b


async def test_a_held_send_stays_in_flight_until_released(fake: FakeTelegram, bot: Bot) -> None:
    hold = fake.hold_next(lambda method, params: params.get("text") == "second")
    await bot.send_message(ALICE, "first")  # does not match: not held
    sending = asyncio.create_task(bot.send_message(ALICE, "second"))
    await asyncio.to_thread(hold.taken.wait, 5)
    await asyncio.sleep(0.2)
    assert not sending.done()
    assert [m.text for m in fake.bot_messages(ALICE)] == ["first"]  # not delivered yet
    [held] = [r for r in fake.in_flight() if r.method == "sendMessage"]
    assert held.params["text"] == "second" and hold.request is not None
    hold.release()
    await asyncio.wait_for(sending, 5)
    assert [m.text for m in fake.bot_messages(ALICE)] == ["first", "second"]
    assert [r for r in fake.in_flight() if r.method == "sendMessage"] == []


async def test_a_send_answered_after_the_callers_time_out_went_out_and_is_listed_as_slow(
    fake: FakeTelegram, bot: Bot
) -> None:
    hold = fake.hold_next(lambda method, params: params.get("text") == "late")
    await bot.send_message(ALICE, "prompt")
    with pytest.raises(TimedOut):  # the caller gives up after 0.2 s ...
        await bot.send_message(ALICE, "late", read_timeout=0.2)
    await asyncio.to_thread(hold.taken.wait, 5)
    hold.release()
    await fake.wait_for(lambda: len(fake.bot_messages(ALICE)) == 2, 5)  # ... yet it went out
    assert [r.params["text"] for r in fake.slow_answers(0.2)] == ["late"]
    assert fake.slow_answers(30) == []
    fake.fail_next("sendMessage", "timeout", hang_s=0.3)  # hangs, then fails: never went out
    with pytest.raises(TelegramError):
        await bot.send_message(ALICE, "refused")
    assert [r.params["text"] for r in fake.slow_answers(0.2)] == ["late"]


async def test_unbans_right_after_bans_fail_and_leave_the_user_banned(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.fail_unbans_after_bans(1.0, ("500",))
    await bot.unban_chat_member(CHAT, BOB, only_if_banned=True)  # no ban before it: not failed
    await bot.ban_chat_member(CHAT, ALICE)
    with pytest.raises(TelegramError):
        await bot.unban_chat_member(CHAT, ALICE, only_if_banned=True)
    assert fake.banned(CHAT) == {ALICE} and fake.faults_injected["unban:500"] == 1
    await bot.unban_chat_member(CHAT, ALICE, only_if_banned=True)  # a retry goes through
    assert fake.banned(CHAT) == set()
    fake.fail_unbans_after_bans(0)
    await bot.ban_chat_member(CHAT, ALICE)
    await bot.unban_chat_member(CHAT, ALICE, only_if_banned=True)
    assert fake.banned(CHAT) == set() and fake.faults_injected["unban:500"] == 1
