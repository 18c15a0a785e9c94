"""Bot API calls from handlers: 429s wait ``retry_after`` (AIORateLimiter), and a 5xx answer
from Telegram is retried a couple of times with a short pause before the handler gives up.
getUpdates goes through :class:`ReadableUpdates`: an update this python-telegram-bot cannot
read is skipped (and logged) instead of blocking every update after it.

Time-outs are not retried here: the request may have reached Telegram, and a repeated
sendMessage would show the customer the same message twice. The outbox has its own retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter
from telegram.request import BaseRequest, HTTPXRequest, RequestData

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]


class RetryingRateLimiter(AIORateLimiter):
    def __init__(self, *, max_retries: int = 2, server_retries: int = 2, pause_s: float = 0.5):
        super().__init__(max_retries=max_retries)
        self.server_retries = server_retries
        self.pause_s = pause_s

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        attempt = 0
        while True:
            try:
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
            except (BadRequest, TimedOut):
                raise
            except NetworkError as exc:  # Telegram answered 5xx (or the connection failed)
                if attempt >= self.server_retries or endpoint == "getUpdates":
                    raise
                attempt += 1
                log.info("Telegram %s failed (%s); retry %d", endpoint, exc, attempt)
                await asyncio.sleep(self.pause_s * attempt)


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
