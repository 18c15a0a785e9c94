"""What the shop gives away without being asked: a QR link built from whatever Host header a
caller sends, /healthz's internals to anyone, and an SQLite database other local users can read.
The real bot and its HTTP server over loopback, and the database as the bot opens it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.botkit import BotWorld
from tests.test_web_auth import tma

INITIALIZE = "/api/payments/crypto/initialize"
USDT_TRC20 = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20"}
API_TOKEN = "exposure-api-token-0123456789"
QR_PATH = "/api/payments/crypto/qr/"


# --- the QR link ---------------------------------------------------------------------------------


async def test_the_qr_link_is_never_built_from_the_host_header(tmp_path: Path) -> None:
    """Without WEBHOOK_URL or PUBLIC_URL (long polling, the Docker default) the link is relative
    to the API, whatever Host the caller claims; it still opens the QR image."""
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        evil = tma(world.tg.token, 101) | {"Host": "evil.example"}
        created = (await http.post(INITIALIZE, json=USDT_TRC20, headers=evil)).json()
        status = await http.get(
            f"/api/payments/crypto/status/{created['payment_id']}",
            headers=evil | {"X-Forwarded-Host": "evil.example"},
        )
        for link in (created["qr_png_url"], status.json()["qr_png_url"]):
            assert "evil.example" not in link
            assert link.startswith(QR_PATH), link
            image = await http.get(link)
            assert (image.status_code, image.headers["content-type"]) == (200, "image/png")


async def test_qr_links_are_on_public_url_when_it_is_set(tmp_path: Path) -> None:
    env = {"PUBLIC_URL": "https://pay.shop.example/"}
    async with (
        BotWorld.open(tmp_path, env=env) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        evil = tma(world.tg.token, 101) | {"Host": "evil.example"}
        created = (await http.post(INITIALIZE, json=USDT_TRC20, headers=evil)).json()
        assert created["qr_png_url"].startswith(f"https://pay.shop.example{QR_PATH}")
