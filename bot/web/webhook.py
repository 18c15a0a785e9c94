"""``POST /telegram/webhook``: Telegram's updates into the Application's update queue.

The secret header is compared in constant time before the body is read; the body is capped;
anything that is not an update is refused with a 4xx and never reaches a handler. A valid
update is answered 200 at once (PTB's custom-webhook pattern): handling happens in the
Application, so a slow handler never makes Telegram retry.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect
from telegram import Update

from bot.config import WEBHOOK_PATH
from bot.web.deps import Context

log = logging.getLogger(__name__)

PATH = WEBHOOK_PATH
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1 << 20  # an update is a few kilobytes; Telegram's own cap is far below this

router = APIRouter()


def webhook_url(base: str) -> str:
    """WEBHOOK_URL is the service's public base URL; the full route is also accepted."""
    base = base.rstrip("/")
    return base if base.endswith(PATH) else base + PATH


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (a missing header never matches)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (reading stops there)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _problem(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")


@router.post(PATH, include_in_schema=False)
async def telegram_webhook(request: Request, context: Context) -> Response:
    secret = context.settings.webhook_secret
    if secret is None or not secret_matches(
        request.headers.get(SECRET_HEADER), secret.get_secret_value()
    ):
        log.warning("webhook request refused: wrong or missing secret token")
        return _problem(403, "forbidden")
    try:
        body = await _read_capped(request, MAX_BODY_BYTES)
    except ClientDisconnect:  # Telegram gave up (its time-out) before the body came: it retries
        log.info("webhook request abandoned by the client before its body arrived")
        return _problem(400, "the request was abandoned")
    if body is None:
        return _problem(413, "request body too large")
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _problem(400, "the body is not JSON")
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        return _problem(400, "not a Telegram update")
    application = context.application
    try:
        update = Update.de_json(data, application.bot)
    except Exception as exc:  # PTB could not make an Update of it
        # It came with the secret, so from Telegram: a 4xx would have Telegram deliver it again
        # and again, holding back every update after it. Skipped, as long polling skips it.
        kinds = ", ".join(sorted(set(data) - {"update_id"}))
        log.error("skipped update %d (%s): it cannot be read (%s)", data["update_id"], kinds, exc)
        return Response(status_code=200)
    if not application.running:
        return _problem(503, "the bot is stopping")  # Telegram retries it later
    await application.update_queue.put(update)
    return Response(status_code=200)
