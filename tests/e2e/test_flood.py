"""One customer cannot slow the bot down for the others: a flood of updates from one chat, free
text sent over and over, and a 429 that Telegram returns for one chat. The real Application
against the fake Bot API over loopback; each test asserts what the customers observe (which
answers arrive, in which order relative to each other), never how long anything took.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fakes.telegram_state import SentRequest
from tests.botkit import BotWorld, address_of, amount_of

FLOOD = 2000
HELP = "How it works"
UNKNOWN = "I didn't understand that"


def replies(world: BotWorld, chat_id: int) -> list[tuple[int, SentRequest]]:
    """The bot's messages to ``chat_id`` (answered or not), each with its position among all the
    requests the fake received, in that order."""
    return [
        (i, r)
        for i, r in enumerate(world.tg.requests)
        if r.method in ("sendMessage", "sendPhoto") and str(r.params.get("chat_id")) == str(chat_id)
    ]


# --- a flood from one chat -----------------------------------------------------------------------


async def test_a_flood_from_one_customer_does_not_hold_up_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """2,000 commands from one customer, queued before another customer writes: the other's
    answers come before the flood has been answered (each customer's updates wait in a queue of
    their own, bounded; the excess of the flood is dropped and logged)."""
    caplog.set_level(logging.WARNING, logger="bot.ordering")
    async with BotWorld.open(tmp_path) as world, world.running():
        mallory, bob = world.customer(7001), world.customer(7002)
        with world.tg._lock:  # all queued before the bot can fetch any of them
            for _ in range(FLOOD):
                world.tg.send_text(mallory.id, "/help")
            for text in ("/help", "/history", "/status"):
                world.tg.send_text(bob.id, text)
        answers = await world.tg.wait_bot_messages(bob.id, 3, timeout=120)
        # in the order he wrote
        assert [HELP in answers[0].plain, "No invoices yet" in answers[1].plain] == [True, True]
        assert "no active subscription" in answers[2].plain
        first, _ = replies(world, bob.id)[0]
        before = [i for i, _ in replies(world, mallory.id) if i < first]
        # a single queue for everyone made Bob wait for 977 of Mallory's answers (all but the
        # 1,023 that fitted in it beside his)
        assert len(before) < 500, len(before)
        await world.settled()
        flooded = [m for m in mallory.texts() if HELP in m]
        assert 0 < len(flooded) < FLOOD  # the excess was dropped, not queued without bound
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert any(f"sender {mallory.id}:" in m and "updates were dropped" in m for m in dropped)


async def test_free_text_is_answered_at_most_once_every_few_seconds(tmp_path: Path) -> None:
    """What the bot cannot read gets one "I didn't understand" per customer every few seconds,
    however much of it arrives; commands are still answered, and other customers are not
    affected."""
    async with BotWorld.open(tmp_path) as world, world.running():
        mallory, bob = world.customer(7101), world.customer(7102)
        with world.tg._lock:
            for n in range(30):
                world.tg.send_text(mallory.id, f"spam {n}")
        await world.settled()
        assert mallory.count(UNKNOWN) == 1
        assert HELP in (await mallory.send("/help")).plain  # commands are answered
        assert UNKNOWN in (await bob.send("hello?")).plain  # his own allowance
        world.tg.send_text(mallory.id, "more spam")
        await world.settled()
        assert mallory.count(UNKNOWN) == 1
        world.clock.advance(5_000)  # the gap (ReplyThrottle.GAP_MS) has passed
        assert UNKNOWN in (await mallory.send("and more")).plain
        assert mallory.count(UNKNOWN) == 2


# --- a 429 for one chat --------------------------------------------------------------------------


async def test_a_429_for_one_chat_delays_only_that_chat(tmp_path: Path) -> None:
    """Telegram answers 429 (retry after 3 s) to the bot's answer in Mallory's chat: Bob's
    answer goes out while Mallory's chat waits, and hers follows after the pause."""
    async with BotWorld.open(tmp_path) as world, world.running():
        mallory, bob = world.customer(7201), world.customer(7202)
        world.tg.fail_next("sendMessage", "429", chat_id=mallory.id, retry_after=3)
        world.tg.send_text(mallory.id, "/help")
        await world.tg.wait_for(lambda: world.tg.faults_injected["429"] == 1, what="the 429")
        answer = await bob.send("/help")
        assert HELP in answer.plain
        await mallory.wait_text(HELP, timeout=20)  # her answer, retried after the pause
        (limited, first), (retried, second) = replies(world, mallory.id)
        assert first.response_ok is False and second.response_ok is True
        [(bobs, _)] = replies(world, bob.id)
        assert limited < bobs < retried


async def test_a_429_for_one_chat_does_not_hold_up_the_outbox(tmp_path: Path) -> None:
    """While Mallory's chat waits out a 429 (retry after 5 s), Bob's payment is confirmed: his
    "Payment received" goes out before Mallory's chat is tried again."""
    async with BotWorld.open(tmp_path) as world, world.running():
        mallory, bob = world.customer(7301), world.customer(7302)
        photo = await bob.buy("Pro", "USDT", "Tron (TRC20)")
        world.tg.fail_next("sendMessage", "429", chat_id=mallory.id, retry_after=5)
        world.tg.send_text(mallory.id, "/help")
        await world.tg.wait_for(lambda: world.tg.faults_injected["429"] == 1, what="the 429")
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo))
        await bob.wait_text("Payment received", timeout=20)
        await mallory.wait_text(HELP, timeout=20)
        (limited, _), (retried, _) = replies(world, mallory.id)
        paid = next(
            i for i, r in replies(world, bob.id) if "Payment received" in r.params.get("text", "")
        )
        assert limited < paid < retried


# --- the update processor on its own -------------------------------------------------------------


def _update(update_id: int, user_id: int) -> object:
    from telegram import Chat, Message, Update, User

    user = User(user_id, "U", is_bot=False)
    message = Message(
        update_id, datetime.now(UTC), Chat(user_id, "private"), from_user=user, text="x"
    )
    return Update(update_id, message=message)


async def test_one_senders_backlog_is_bounded_and_never_holds_a_slot_others_need(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """More updates from one sender than the processor has room for, its first one stuck: the
    next sender's update still runs, the first sender's excess is dropped (its coroutines closed,
    never started) and logged, and what was kept runs in order."""
    from bot.ordering import ChatOrderedProcessor

    caplog.set_level(logging.WARNING, logger="bot.ordering")
    processor = ChatOrderedProcessor(limit=2)  # 8 updates of one sender may wait
    stuck = asyncio.Event()
    ran: list[int] = []

    async def work(update_id: int) -> None:
        if update_id == 1:
            await stuck.wait()
        ran.append(update_id)

    flood = [
        asyncio.create_task(processor.process_update(_update(i, 7), work(i)))
        for i in range(1, 1101)
    ]
    other = asyncio.create_task(processor.process_update(_update(2000, 8), work(2000)))
    await asyncio.wait_for(other, timeout=30)  # a deadline for a hang, not a measurement
    assert ran == [2000]  # sender 8 ran while sender 7's first update was still stuck
    stuck.set()
    await asyncio.wait_for(asyncio.gather(*flood), timeout=30)
    assert ran == [2000, *range(1, 10)]  # one running, eight waiting: kept in order
    assert processor._senders == {} and processor.current_concurrent_updates == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("sender 7 has more than 8 updates waiting" in m for m in messages)
    assert any("sender 7: 1091 updates were dropped" in m for m in messages)
