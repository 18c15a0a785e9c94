"""Build the FastAPI app: routes in a deliberate order, the context they depend on."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI

from bot.config import Settings
from bot.services import BotApplication
from bot.web import api, health, miniapp, webhook
from bot.web.deps import WebContext


def create_web_app(
    application: BotApplication,
    settings: Settings,
    *,
    webhook_mode: bool,
    now: Callable[[], float] = time.time,
) -> FastAPI:
    """The webhook route exists in webhook mode only; ``/healthz`` and the API always; the
    Swagger UI at ``/docs`` only with API_DOCS."""
    app = FastAPI(
        title="subsbot",
        summary="Crypto subscriptions paid into the merchant's OKX account",
        version="1",
        docs_url="/docs" if settings.api_docs else None,  # Swagger UI from a CDN: opt-in
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.web = WebContext(application, settings, webhook_mode, now)
    if webhook_mode:
        app.include_router(webhook.router)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(miniapp.router)
    api.install_error_handlers(app)
    return app
