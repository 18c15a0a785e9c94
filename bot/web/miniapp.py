"""The Mini App page at ``/app``: checkout and account, plain HTML, CSS and JavaScript modules
from ``bot/web/miniapp/`` (package data, no build step), and its texts as JSON.

The page holds no secret: it reads ``Telegram.WebApp.initData`` in the browser and sends it to
the JSON API (``Authorization: tma <initData>``), which checks it. Every answer here carries a
Content-Security-Policy that allows only the page's own files and Telegram's script; the page
has no inline script or style (so ``'unsafe-inline'`` is never needed).
"""

from __future__ import annotations

import html
import re
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from bot.texts import CATALOGUE, DEFAULT_LANGUAGE

PREFIX = "/app"
TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js"
# Telegram's clients embed the page: the web ones in a frame on these origins
FRAME_ANCESTORS = "https://web.telegram.org https://*.telegram.org"
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' https://telegram.org",
        "connect-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        f"frame-ancestors 'self' {FRAME_ANCESTORS}",
    )
)
TEXT_PREFIX = "app_"  # the catalogue keys the page uses
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_ASSET = re.compile(r"[a-z][a-z0-9_-]{0,40}\.(js|css|svg)")

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _headers(cache: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }


def _asset(name: str) -> bytes | None:
    """A file of ``bot/web/miniapp/``, or None (only plain names: no path ever reaches it)."""
    if name != "index.html" and not _ASSET.fullmatch(name):
        return None
    path = resources.files("bot.web").joinpath("miniapp", name)
    return path.read_bytes() if path.is_file() else None


def page_texts(lang: str | None) -> dict[str, str]:
    """The page's texts (keys ``app_*``) in ``lang``, English where it has no translation;
    plain text (the catalogue is Telegram HTML: entities unescaped, the page never parses it)."""
    english = CATALOGUE[DEFAULT_LANGUAGE]
    table = CATALOGUE.get(language(lang), {})
    return {
        key: html.unescape(table.get(key) or template)
        for key, template in english.items()
        if key.startswith(TEXT_PREFIX)
    }


def language(code: str | None) -> str:
    """The catalogue language for a Telegram ``language_code`` ("ru-RU" -> "ru"; else en)."""
    if code:
        code = code.lower()
        for candidate in (code, code.split("-")[0]):
            if candidate in CATALOGUE:
                return candidate
    return DEFAULT_LANGUAGE


@router.get("")
@router.get("/")
async def page() -> Response:
    body = _asset("index.html")
    assert body is not None, "bot/web/miniapp/index.html is missing from the package"
    return Response(body, media_type="text/html; charset=utf-8", headers=_headers("no-cache"))


@router.get("/texts.json")
async def texts(lang: Annotated[str | None, Query(max_length=35)] = None) -> Response:
    chosen = language(lang)
    return JSONResponse(
        {"lang": chosen, "texts": page_texts(chosen)}, headers=_headers("public, max-age=300")
    )


@router.get("/{name}")
async def asset(name: str) -> Response:
    body = _asset(name)
    if body is None:
        return JSONResponse(
            {"error": "not_found", "detail": "Not Found"},
            status_code=404,
            headers=_headers("no-store"),
        )
    media = _TYPES[name[name.rindex(".") :]]
    return Response(body, media_type=media, headers=_headers("no-cache"))
