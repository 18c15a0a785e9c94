"""Updates processed concurrently, each chat's in order (DESIGN section 10).

PTB's default processes one update at a time, which collapses at real network latency, and
``concurrent_updates(True)`` may reorder a chat's updates (a double tap) and is slower than a
small cap (facts/telegram-ptb.md). Here at most ``limit`` updates run at once; updates of one
chat wait for each other in arrival order (asyncio locks are FIFO), without holding a slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# PTB's semaphore around do_process_update: updates past this many wait in FIFO order (PTB's
# fetcher itself never waits: it starts a task per update)
QUEUE_BOUND = 1024


class ChatOrderedProcessor(BaseUpdateProcessor):
    def __init__(self, limit: int = 16) -> None:
        super().__init__(QUEUE_BOUND)
        self.limit = limit
        self._running = asyncio.Semaphore(limit)
        self._chats: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _chat_key(update)
        if key is None:
            async with self._running:
                await coroutine
            return
        lock, users = self._chats.get(key, (asyncio.Lock(), 0))
        self._chats[key] = (lock, users + 1)
        try:
            async with lock, self._running:
                await coroutine
        finally:
            lock, users = self._chats[key]
            if users <= 1:
                del self._chats[key]
            else:
                self._chats[key] = (lock, users - 1)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def _chat_key(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None
