"""Update ordering (bot/ordering.py): each chat keeps its order while chats run side by side."""

from __future__ import annotations

from datetime import UTC, datetime


def _update(update_id: int, chat_id: int | None) -> object:
    from telegram import Chat, Message, Update

    if chat_id is None:
        return Update(update_id)
    message = Message(update_id, datetime.now(UTC), Chat(chat_id, "private"))
    return Update(update_id, message=message)


async def test_each_chat_keeps_its_order_while_chats_run_side_by_side() -> None:
    import asyncio

    from bot.ordering import ChatOrderedProcessor

    processor = ChatOrderedProcessor(limit=2)
    events: list[tuple[str, int]] = []
    running = [0]
    most = [0]

    async def work(update_id: int, delay: float) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        events.append(("start", update_id))
        await asyncio.sleep(delay)
        events.append(("end", update_id))
        running[0] -= 1

    plan = [(1, 7, 0.05), (2, 7, 0.0), (3, 8, 0.01), (4, 9, 0.01), (5, 7, 0.0), (6, None, 0.0)]
    await asyncio.gather(
        *(processor.process_update(_update(i, chat), work(i, delay)) for i, chat, delay in plan)
    )
    starts = [i for kind, i in events if kind == "start"]
    assert events.index(("start", 2)) > events.index(("end", 1))  # chat 7 in order
    assert events.index(("start", 5)) > events.index(("end", 2))
    assert events.index(("start", 3)) < events.index(("end", 1))  # chat 8 did not wait for 7
    assert most[0] == 2  # the cap
    assert sorted(starts) == [1, 2, 3, 4, 5, 6]
    assert processor._senders == {}  # nothing left behind


def _member_update(update_id: int, chat_id: int, member: int, actor: int) -> object:
    from telegram import Chat, ChatMemberLeft, ChatMemberMember, ChatMemberUpdated, Update, User

    who = User(member, "Member", False)
    change = ChatMemberUpdated(
        Chat(chat_id, "supergroup"),
        User(actor, "Actor", actor != member),
        datetime.now(UTC),
        ChatMemberMember(who),
        ChatMemberLeft(who),
    )
    return Update(update_id, chat_member=change)


async def test_a_members_chat_events_queue_apart_from_their_conversation_and_per_member() -> None:
    """A customer's /help does not wait behind the handling of their own join or removal in a
    paid chat (which may wait minutes for the chat's 20 requests a minute), and the bot
    removing many members at once (every event's actor: the bot) is not one sender's flood."""
    import asyncio

    from bot.ordering import ChatOrderedProcessor

    processor = ChatOrderedProcessor(limit=16, per_sender=2)
    held = asyncio.Event()
    done: list[int] = []

    async def join_handling(update_id: int) -> None:
        await held.wait()  # waiting for the chat's rate limit
        done.append(update_id)

    async def quick(update_id: int) -> None:
        done.append(update_id)

    customer, bot_id, chat = 7, 999, -1001
    blocked = asyncio.create_task(
        processor.process_update(_member_update(1, chat, customer, customer), join_handling(1))
    )
    await asyncio.sleep(0)
    await asyncio.wait_for(processor.process_update(_update(2, customer), quick(2)), 1)
    assert done == [2]  # /help answered while the join's handling waits
    removals = [_member_update(10 + n, chat, 100 + n, bot_id) for n in range(6)]
    await asyncio.wait_for(
        asyncio.gather(
            *(processor.process_update(u, quick(10 + n)) for n, u in enumerate(removals))
        ),
        1,
    )
    assert sorted(done) == [2, 10, 11, 12, 13, 14, 15]  # none dropped (per_sender is 2)
    held.set()
    await blocked
    assert done[-1] == 1
