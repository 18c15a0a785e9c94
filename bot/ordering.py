"""Updates processed concurrently, each sender's in order, none able to hold up the others.

PTB's default processes one update at a time, which collapses at real network latency, and
``concurrent_updates(True)`` may reorder a chat's updates (a double tap) and is slower than a
small cap (bench/conversation.py). Here at most ``limit`` updates run at once, and the updates
of one sender (the user, else the chat; a paid chat's member events per member, apart) wait for
each other in arrival order (asyncio locks are FIFO) *before* they ask for one of those slots:
only the head of each sender's queue ever waits for a slot, so a sender with thousands of
pending updates delays another sender by at most one update of its own.

Each sender's queue is bounded: an update that finds ``per_sender`` updates of the same sender
already waiting is dropped (a warning names the sender once per burst, and how many were dropped
once the burst is over). So is any update that arrives while ``max_waiting`` updates wait in all.
PTB's fetcher starts a task per update without waiting; a dropped update's task ends at once,
so a flood costs memory only for what is kept. PTB's own semaphore (taken before
``do_process_update``) is sized so that it never makes anybody wait: admission happens here.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)

# updates of one sender waiting behind the one running; a person tapping or typing fast has a
# few, and a double tap two: beyond this it is a flood (or a client gone wrong)
PER_SENDER = 8
# updates waiting or running in all (every sender together): the memory a flood may hold
MAX_WAITING = 4096


@dataclass
class _Sender:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    admitted: int = 0  # waiting or running
    dropped: int = 0  # in the current burst


class ChatOrderedProcessor(BaseUpdateProcessor):
    def __init__(
        self, limit: int = 16, *, per_sender: int = PER_SENDER, max_waiting: int = MAX_WAITING
    ) -> None:
        # PTB's semaphore counts every update inside do_process_update: the admitted ones (at
        # most max_waiting) and one being dropped, which never yields while it holds a slot
        super().__init__(max_waiting + 1)
        self.limit = limit
        self.per_sender = per_sender
        self.max_waiting = max_waiting
        self._running = asyncio.Semaphore(limit)
        self._senders: dict[Hashable, _Sender] = {}
        self._admitted = 0
        self._dropped_over_all = 0

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _sender_key(update)
        if self._admitted >= self.max_waiting:
            self._drop_over_all(coroutine)
            return
        if key is None:
            self._admitted += 1
            try:
                async with self._running:
                    await coroutine
            finally:
                self._admitted -= 1
            return
        sender = self._senders.get(key)
        if sender is None:
            sender = self._senders[key] = _Sender()
        if sender.admitted > self.per_sender:  # one running and per_sender waiting
            if sender.dropped == 0:
                log.warning(
                    "sender %s has more than %d updates waiting: dropping its new ones",
                    key,
                    self.per_sender,
                )
            sender.dropped += 1
            _discard(coroutine)
            return
        sender.admitted += 1
        self._admitted += 1
        try:
            async with sender.lock, self._running:
                await coroutine
        finally:
            self._admitted -= 1
            sender.admitted -= 1
            if sender.admitted == 0:
                del self._senders[key]
                if sender.dropped:
                    log.warning(
                        "sender %s: %d updates were dropped (a flood); its queue is empty again",
                        key,
                        sender.dropped,
                    )

    def _drop_over_all(self, coroutine: Awaitable[Any]) -> None:
        if self._dropped_over_all % 1000 == 0:  # the first of each thousand
            log.warning(
                "%d updates are waiting in all: dropping new ones (%d so far)",
                self._admitted,
                self._dropped_over_all + 1,
            )
        self._dropped_over_all += 1
        _discard(coroutine)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def _discard(coroutine: Awaitable[Any]) -> None:
    """An update not processed: its never-started coroutine is closed (no "never awaited")."""
    if inspect.iscoroutine(coroutine):
        coroutine.close()


def _sender_key(update: object) -> Hashable | None:
    """Whose queue it joins: the user's conversation with the bot (a private chat's id is its
    user's), else the chat's. A paid chat's events (members coming and going, join requests)
    queue per member apart from that member's conversation, and per member rather than per
    chat or per whoever acted: the bot removing many people at once, or many people joining,
    is not taken for one sender's flood, and a customer's /help never waits behind the
    handling of their own join (which may wait for the chat's 20 requests a minute)."""
    if not isinstance(update, Update):
        return None
    if update.chat_member is not None:
        return ("member", update.chat_member.chat.id, update.chat_member.new_chat_member.user.id)
    if update.chat_join_request is not None:
        request = update.chat_join_request
        return ("member", request.chat.id, request.from_user.id)
    if update.my_chat_member is not None:
        return ("bot", update.my_chat_member.chat.id)
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return None
