"""What the shop gives away without being asked: a QR link built from whatever Host header a
caller sends, /healthz's internals to anyone, and an SQLite database other local users can read.
The real bot and its HTTP server over loopback, and the database as the bot opens it."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from payments.storage import Database
from tests.botkit import BotWorld
from tests.e2e.web.test_auth import tma

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


# --- /healthz ------------------------------------------------------------------------------------


async def test_healthz_tells_outsiders_the_status_only_and_the_token_holder_everything(
    tmp_path: Path,
) -> None:
    async with (
        BotWorld.open(tmp_path, env={"API_TOKEN": API_TOKEN}) as world,
        world.serving() as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        public = await http.get("/healthz")
        assert public.status_code == 200
        assert public.json() == {"status": "ok", "database": "ok", "telegram": "running"}
        for wrong in ("Bearer wrong-token-0123456789", f"tma {API_TOKEN}", API_TOKEN, "Bearer"):
            answer = await http.get("/healthz", headers={"Authorization": wrong})
            assert answer.json() == public.json(), wrong
        details = await http.get("/healthz", headers={"Authorization": f"Bearer {API_TOKEN}"})
        body = details.json()
        assert (details.status_code, body["status"], body["okx"]) == (200, "ok", "ok")
        assert body["role"] == "primary" and body["lease_token"] >= 1
        assert body["version"] == version("subsbot")  # an outsider is not told which release
        assert set(body["jobs"]) == {"poll-deposits", "send-outbox", "replica-lease"}

        # 503 still says so to everyone; why, only to the token holder (and in the log)
        await served.application.stop()
        stopped = await http.get("/healthz")
        assert stopped.status_code == 503
        assert stopped.json() == {"status": "unavailable", "telegram": "stopped"}


async def test_healthz_details_are_nobodys_without_an_api_token(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving() as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        answer = await http.get("/healthz", headers={"Authorization": "Bearer anything-at-all"})
        assert answer.json() == {"status": "ok", "database": "ok", "telegram": "running"}


# --- the SQLite files ----------------------------------------------------------------------------


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _open_and_write(path: Path) -> dict[str, int]:
    """Open the database as the bot does, write to it, and read the modes of its files while it
    is open (the -wal and -shm files exist only then)."""
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await db.migrate()
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await conn.execute(text("INSERT INTO probe VALUES (1)"))
        names = (path.name, f"{path.name}-wal", f"{path.name}-shm")
        return {name: mode(path.parent / name) for name in names}
    finally:
        await db.close()


async def test_the_sqlite_database_and_its_wal_and_shm_are_created_private(
    tmp_path: Path,
) -> None:
    """With the usual umask (022) files would be 0644 and folders 0755: readable by every local
    user. The folders the bot creates are 0700, the database and its -wal and -shm 0600."""
    path = tmp_path / "data" / "shop" / "subsbot.sqlite3"
    with umask(0o022):
        modes = await _open_and_write(path)
    assert modes == {
        "subsbot.sqlite3": 0o600,
        "subsbot.sqlite3-wal": 0o600,
        "subsbot.sqlite3-shm": 0o600,
    }
    assert (mode(tmp_path / "data"), mode(tmp_path / "data" / "shop")) == (0o700, 0o700)


async def test_a_folder_that_was_there_is_left_as_it_is_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder the bot did not create (a Docker volume's, the operator's) keeps its mode, and a
    warning says it is open; the database file in it is still created 0600."""
    caplog.set_level(logging.WARNING)
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o755)
    with umask(0o022):
        modes = await _open_and_write(volume / "subsbot.sqlite3")
    assert set(modes.values()) == {0o600}
    assert mode(volume) == 0o755
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"folder {volume} is open to other users (mode 755" in w for w in warnings)

    # a database file an older version created 0644: named too, not changed behind the back
    caplog.clear()
    old = tmp_path / "old.sqlite3"
    old.touch(mode=0o644)
    old.chmod(0o644)
    with umask(0o022):
        await _open_and_write(old)
    assert mode(old) == 0o644
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"database {old} can be read by other users (mode 644)" in w for w in warnings)


# --- /docs ---------------------------------------------------------------------------------------


async def test_the_swagger_page_is_served_only_with_api_docs(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving() as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/openapi.json")).status_code == 200
    async with (
        BotWorld.open(tmp_path / "docs", env={"API_DOCS": "true"}) as world,
        world.serving() as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        page = await http.get("/docs")
        assert page.status_code == 200
        assert "swagger-ui" in page.text and "/openapi.json" in page.text
