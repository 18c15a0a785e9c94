"""Bot API calls from handlers: 429s wait ``retry_after`` (AIORateLimiter), and a 5xx answer
from Telegram is retried a couple of times with a short pause before the handler gives up.

Time-outs are not retried here: the request may have reached Telegram, and a repeated
sendMessage would show the customer the same message twice. The outbox has its own retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter

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
