"""Bot API calls from handlers and jobs: python-telegram-bot's rate limiter interface, with a 429
that pauses only what it was about; a 5xx answer from Telegram is retried a couple of times with
a short pause before the caller gives up. getUpdates goes through :class:`ReadableUpdates`: an
update this python-telegram-bot cannot read is skipped (and logged) instead of blocking every
update after it.

Time-outs are not retried here: the request may have reached Telegram, and a repeated
sendMessage would show the customer the same message twice. The outbox has its own retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter
from telegram.request import BaseRequest, HTTPXRequest, RequestData

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]
Key = int | str  # a chat id (or a channel's @username), or the method of a request naming none

OVERALL_PER_SECOND = 30  # Telegram: about 30 messages a second in all
GROUP_PER_MINUTE = 20  # and 20 a minute in one group or channel
# a 429 asking for longer than this is handed back to the caller at once (the outbox tries again
# after retry_after on its own; a handler's answer is given up): a handler waiting that long would
# hold one of the few update slots, and a caller has better things to do
MAX_WAIT_S = 10.0
ROOM_LOOK_S = 0.05  # how often :meth:`RetryingRateLimiter.room` looks again
_KEYS_KEPT = 512  # pauses and group limiters remembered before the finished ones are forgotten


class RetryingRateLimiter(BaseRateLimiter[int]):
    """The rates python-telegram-bot's AIORateLimiter keeps (30 requests a second for requests
    naming a chat, 20 a minute per group or channel), but a 429 pauses only the chat it names
    (or, for a request naming no chat, that method) for ``retry_after``: PTB's own limiter pauses
    every request of the bot, so one chat's 429 (a flooding customer's) held up every other
    customer's answers and the outbox. A request is tried again up to ``max_retries`` times
    after a 429 (its ``rate_limit_args`` overrides that) and ``server_retries`` times after a
    5xx answer or a failed connection, ``pause_s``, then twice that, later."""

    def __init__(
        self,
        *,
        max_retries: int = 2,
        server_retries: int = 2,
        pause_s: float = 0.5,
        max_wait_s: float = MAX_WAIT_S,
        group_rate: tuple[int, float] = (GROUP_PER_MINUTE, 60.0),
    ) -> None:
        self.max_retries = max_retries
        self.group_rate = group_rate
        self.server_retries = server_retries
        self.pause_s = pause_s
        self.max_wait_s = max_wait_s
        self._overall = AsyncLimiter(OVERALL_PER_SECOND, 1)
        self._groups: dict[Key, AsyncLimiter] = {}
        self._paused: dict[Key, float] = {}  # key -> the event loop's time its pause ends

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        max_retries = self.max_retries if rate_limit_args is None else rate_limit_args
        chat = _chat(data.get("chat_id"))
        key: Key = endpoint if chat is None else chat
        limited = chat is not None
        group = chat is not None and (isinstance(chat, str) or chat < 0)
        limits, failures = 0, 0
        while True:
            await self._paused_wait(key, endpoint)
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if group:
                        await stack.enter_async_context(self._group(key))
                    if limited:
                        await stack.enter_async_context(self._overall)
                    return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = _seconds(exc.retry_after)
                self._pause(key, seconds + 0.1)
                if limits >= max_retries or seconds > self.max_wait_s:
                    log.warning(
                        "Telegram %s: 429 for %s (retry after %.0f s), %d retries: given up",
                        endpoint,
                        _what(key, chat),
                        seconds,
                        limits,
                    )
                    raise
                limits += 1
                log.info(
                    "Telegram %s: 429 for %s; it waits %.1f s (retry %d), the others do not",
                    endpoint,
                    _what(key, chat),
                    seconds + 0.1,
                    limits,
                )
            except (BadRequest, TimedOut):
                raise
            except NetworkError as exc:  # Telegram answered 5xx (or the connection failed)
                if failures >= self.server_retries:
                    raise
                failures += 1
                log.info("Telegram %s failed (%s); retry %d", endpoint, exc, failures)
                await asyncio.sleep(self.pause_s * failures)

    async def _paused_wait(self, key: Key, endpoint: str) -> None:
        """Until ``key``'s pause is over; RetryAfter at once when that is more than
        ``max_wait_s`` away."""
        loop = asyncio.get_running_loop()
        while (until := self._paused.get(key)) is not None:
            left = until - loop.time()
            if left <= 0:
                self._paused.pop(key, None)
                return
            if left > self.max_wait_s:
                log.info("Telegram %s: %s is paused for %.0f s more", endpoint, key, left)
                raise RetryAfter(dt.timedelta(seconds=math.ceil(left)))
            await asyncio.sleep(left)

    def _pause(self, key: Key, seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        self._paused[key] = max(self._paused.get(key, now), now + seconds)
        if len(self._paused) > _KEYS_KEPT:
            for old in [k for k, until in self._paused.items() if until <= now]:
                del self._paused[old]

    def _group(self, key: Key) -> AsyncLimiter:
        limiter = self._groups.get(key)
        if limiter is None:
            if len(self._groups) >= _KEYS_KEPT:  # forget the groups with their whole budget
                for old in [k for k, v in self._groups.items() if v.has_capacity(v.max_rate)]:
                    del self._groups[old]
            limiter = self._groups[key] = AsyncLimiter(*self.group_rate)
        return limiter

    async def room(self, chat_id: Key, within_s: float) -> bool:
        """Waits, up to ``within_s``, until a request naming ``chat_id`` would go out at once (its
        pause over, room in its group's budget and in the overall one); False when it would not
        within that time. A caller that cuts its calls short (a fenced run) waits here first, so
        the cut measures Telegram's answer, not the wait for its turn."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        group = isinstance(chat_id, str) or chat_id < 0
        while True:
            now = loop.time()
            paused = self._paused.get(chat_id)
            if (
                (paused is None or paused <= now)
                and (not group or self._group(chat_id).has_capacity())
                and self._overall.has_capacity()
            ):
                return True
            if now >= deadline:
                return False
            await asyncio.sleep(min(ROOM_LOOK_S, max(0.0, deadline - now)))


def _chat(raw: object) -> Key | None:
    """The chat a request names: its id, or a channel's @username."""
    if raw is None or isinstance(raw, int):
        return raw
    text = str(raw)
    with contextlib.suppress(ValueError):
        return int(text)
    return text


def _what(key: Key, chat: Key | None) -> str:
    return f"chat {key}" if chat is not None else "this method"


def _seconds(retry_after: int | dt.timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, dt.timedelta) else retry_after


class ReadableUpdates(HTTPXRequest):
    """The transport of getUpdates: an update python-telegram-bot cannot read (a field it
    requires is missing, e.g. from a self-hosted Bot API server of an older version) becomes an
    empty update with the same id, and an ERROR names it. Otherwise PTB's Updater fails on the
    whole batch and asks for it again at once, forever: no later update is ever handled."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        status, payload = await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )
        return status, readable_updates(payload) if status == 200 else payload


def readable_updates(payload: bytes) -> bytes:
    """getUpdates' answer with every update PTB cannot read replaced by ``{"update_id": N}``."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return payload
    updates = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(updates, list):
        return payload
    skipped = False
    for index, update in enumerate(updates):
        try:
            Update.de_json(update, None)
        except Exception as exc:
            update_id = update.get("update_id") if isinstance(update, dict) else None
            if type(update_id) is not int:
                return payload  # not even an id to skip
            kinds = ", ".join(sorted(set(update) - {"update_id"}))
            log.error("skipped update %d (%s): it cannot be read (%s)", update_id, kinds, exc)
            updates[index] = {"update_id": update_id}
            skipped = True
    return json.dumps(answer).encode() if skipped else payload
