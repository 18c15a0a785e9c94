"""What routes depend on: the running Application, the settings and the bot's services, typed
(FastAPI dependencies, not string lookups)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request

from bot.config import Settings
from bot.services import BotApplication, Services


@dataclass
class WebContext:
    application: BotApplication
    settings: Settings
    webhook: bool  # served in webhook mode (else long polling with an HTTP server on PORT)
    now: Callable[[], float] = field(default=time.time)  # wall clock, seconds (auth, signed URLs)
    health_problems: list[str] = field(default_factory=list)  # /healthz's last ones, logged once


def web_context(request: Request) -> WebContext:
    return cast(WebContext, request.app.state.web)


def services(context: Annotated[WebContext, Depends(web_context)]) -> Services:
    """The bot's services; 503 while the bot is starting or stopping."""
    found = context.application.bot_data.services
    if found is None or not context.application.running:
        raise HTTPException(503, "the bot is starting or stopping; try again shortly")
    return found


Context = Annotated[WebContext, Depends(web_context)]
ServicesDep = Annotated[Services, Depends(services)]
