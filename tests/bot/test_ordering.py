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
