"""The web service as Telegram and a hosting platform see it: the webhook route (secret, body
cap, malformed bodies), updates answered in webhook mode, and ``/healthz`` through a database
outage, an OKX outage and a stopped application. Real loopback HTTP: the fake Bot API delivers
webhooks to uvicorn, and tests call the routes with httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from bot.config import load_settings
from bot.serve import http_port
from bot.services import Heartbeats
from payments.errors import ConfigError
from tests.botkit import ADMIN, WEBHOOK_SECRET, BotWorld
from tests.conftest import PG_URL

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
API_TOKEN = "health-api-token-0123456789"
WITH_TOKEN = {"API_TOKEN": API_TOKEN}
DETAILS = {"Authorization": f"Bearer {API_TOKEN}"}  # /healthz's details need the API token


def start_update(update_id: int, user_id: int, text: str = "/start") -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "en"}
    chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
    message = {"message_id": update_id, "date": 1_700_000_000, "chat": chat, "from": user}
    message |= {"text": text}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


async def admin_alerts(world: BotWorld, text: str) -> list[str]:
    return [t for t in world.customer(ADMIN).texts() if text in t]


# --- 1. the webhook route ----------------------------------------------------------------------


async def test_webhook_mode_registers_the_secret_and_answers_a_whole_purchase(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.serving(webhook=True) as served:
        hook = world.tg.webhook
        assert hook is not None
        assert hook["url"] == f"{served.base_url}/telegram/webhook"
        assert hook["secret_token"] == WEBHOOK_SECRET
        assert "callback_query" in (hook["allowed_updates"] or [])
        alice = world.customer(101)
        photo = await alice.buy()  # /start, plan, coin, network: every update by webhook
        assert "Send exactly" in photo.plain
        assert world.tg.webhook_error is None


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", WEBHOOK_SECRET + "x"])
async def test_a_wrong_or_missing_secret_is_refused_and_never_reaches_a_handler(
    tmp_path: Path, secret: str | None
) -> None:
    async with BotWorld.open(tmp_path) as world, world.serving(webhook=True) as served:
        world.customer(101)
        headers = {} if secret is None else {SECRET_HEADER: secret}
        async with httpx.AsyncClient(base_url=served.base_url) as http:
            refused = await http.post(
                "/telegram/webhook", json=start_update(7001, 101), headers=headers
            )
            assert refused.status_code == 403
            accepted = await http.post(
                "/telegram/webhook",
                json=start_update(7002, 102),
                headers={SECRET_HEADER: WEBHOOK_SECRET},
            )
            assert accepted.status_code == 200
        bob = world.customer(102)
        await bob.wait_text("Welcome")  # the accepted update was handled ...
        await world.settled()
        assert world.tg.bot_messages(101) == []  # ... the refused one never was


async def test_oversized_and_malformed_bodies_get_a_4xx(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with BotWorld.open(tmp_path) as world, world.serving(webhook=True) as served:
        world.customer(101)
        good = {SECRET_HEADER: WEBHOOK_SECRET}
        big = json.dumps(start_update(7003, 101, "x" * (2 << 20)))
        cases: list[tuple[bytes | str, int]] = [
            (big, 413),
            (b"{not json", 400),
            (b"\xff\xfe\x00", 400),
            (b"[1, 2, 3]", 400),
            (json.dumps({"message": {"text": "/start"}}), 400),  # no update_id
            (json.dumps({"update_id": "7"}), 400),
            # from Telegram (the secret matches) but unreadable: skipped, never redelivered
            (json.dumps({"update_id": 7004, "message": {"text": "/start"}}), 200),  # no chat
        ]
        async with httpx.AsyncClient(base_url=served.base_url) as http:
            for body, status in cases:
                answer = await http.post("/telegram/webhook", content=body, headers=good)
                assert answer.status_code == status, (body[:60], answer.text)
            # a chunked body without Content-Length is capped while it is read
            chunks = (big[i : i + 65536].encode() for i in range(0, len(big), 65536))

            async def stream() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            answer = await http.post("/telegram/webhook", content=stream(), headers=good)
            assert answer.status_code == 413
            assert (await http.get("/healthz")).status_code == 200  # still serving
        await world.settled()
        assert world.tg.bot_messages(101) == []
        skipped = [r.getMessage() for r in caplog.records if "skipped update" in r.getMessage()]
        assert len(skipped) == 1 and skipped[0].startswith("skipped update 7004 (message)")


async def test_long_polling_with_port_serves_health_but_no_webhook(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path, env=WITH_TOKEN) as world,
        world.serving(webhook=False) as served,
    ):
        assert world.tg.webhook is None
        await world.customer(101).send("/start", expect="Welcome")  # by getUpdates
        async with httpx.AsyncClient(base_url=served.base_url) as http:
            health = await http.get("/healthz", headers=DETAILS)
            assert health.status_code == 200
            assert health.json()["mode"] == "polling"
            hook = await http.post(
                "/telegram/webhook",
                json=start_update(7005, 101),
                headers={SECRET_HEADER: WEBHOOK_SECRET},
            )
            assert hook.status_code == 404


# --- 2. /healthz --------------------------------------------------------------------------------


async def test_health_is_ok_when_everything_works(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path, env=WITH_TOKEN) as world, world.serving() as served:
        async with httpx.AsyncClient(base_url=served.base_url) as http:
            answer = await http.get("/healthz", headers=DETAILS)
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "ok"
        assert (body["database"], body["okx"], body["telegram"]) == ("ok", "ok", "running")
        assert set(body["jobs"]) == {"poll-deposits", "send-outbox", "replica-lease"}
        assert body["role"] == "primary"  # the only replica takes the lease at start-up


async def test_health_turns_503_while_the_sqlite_database_is_gone_and_200_after(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with BotWorld.open(tmp_path, env=WITH_TOKEN) as world:
        world.env["DATABASE_URL"] = f"sqlite:///{data / 'bot.sqlite3'}"
        async with world.serving() as served, httpx.AsyncClient(base_url=served.base_url) as http:
            assert (await http.get("/healthz")).status_code == 200
            data.rename(tmp_path / "elsewhere")  # the volume is gone
            try:
                answer = await http.get("/healthz", headers=DETAILS)
                assert answer.status_code == 503
                assert answer.json()["database"] == "unreachable"
                assert "the database cannot be read" in answer.json()["problems"]
            finally:
                (tmp_path / "elsewhere").rename(data)
            answer = await http.get("/healthz")
            assert answer.status_code == 200, answer.text
            await world.customer(101).send("/start", expect="Welcome")


class TcpProxy:
    """A loopback TCP proxy to PostgreSQL that the test can cut and restore: the database
    server "goes away" for this bot only, as a network partition would."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@asynccontextmanager
async def proxied(world: BotWorld) -> AsyncIterator[TcpProxy]:
    url = make_url(world.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        if proxy._server is not None:
            await proxy.cut()


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
async def test_health_turns_503_while_postgresql_is_unreachable_and_200_after(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path, backend="postgresql") as world, proxied(world) as proxy:
        via_proxy = make_url(world.database_url).set(host="127.0.0.1", port=proxy.port)
        env = {"DATABASE_URL": via_proxy.render_as_string(hide_password=False)}
        async with (
            world.serving(env=env) as served,
            httpx.AsyncClient(base_url=served.base_url) as http,
        ):
            assert (await http.get("/healthz")).status_code == 200
            await proxy.cut()
            answer = await http.get("/healthz")
            assert answer.status_code == 503
            assert answer.json()["database"] == "unreachable"
            await proxy.start()  # the same port again
            answer = await http.get("/healthz")
            assert answer.status_code == 200, answer.text
            await world.customer(101).send("/start", expect="Welcome")


async def test_an_okx_outage_is_degraded_with_200_and_told_to_the_admins_once(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path, env=WITH_TOKEN) as world, world.serving() as served:
        admin = world.customer(ADMIN)
        async with httpx.AsyncClient(base_url=served.base_url) as http:
            await world.polled()
            world.okx.fail_rate(1.0, kinds=("server_error", "unavailable"))
            start = world.okx.count(None)
            await world.tg.wait_for(lambda: world.okx.count(None) >= start + 3, 15, "polls")
            world.clock.advance(6 * 60_000)
            await admin.wait_text("OKX has not answered since", timeout=15)
            answer = await http.get("/healthz", headers=DETAILS)
            assert answer.status_code == 200
            body = answer.json()
            assert (body["status"], body["okx"]) == ("degraded", "unavailable")
            assert isinstance(body["okx_failing_since_ms"], int)
            start = world.okx.count(None)
            await world.tg.wait_for(lambda: world.okx.count(None) >= start + 5, 15, "polls")
            await world.tg.wait_idle()
            assert len(await admin_alerts(world, "OKX has not answered")) == 1
            world.okx.clear_faults()
            await admin.wait_text("OKX answers again", timeout=15)
            answer = await http.get("/healthz")
            assert (answer.status_code, answer.json()["status"]) == (200, "ok")


async def test_a_stopped_application_is_503(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving() as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        assert (await http.get("/healthz")).status_code == 200
        await served.application.stop()
        answer = await http.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["telegram"] == "stopped"
        refused = await http.post(
            "/telegram/webhook",
            json=start_update(7006, 101),
            headers={SECRET_HEADER: WEBHOOK_SECRET},
        )
        assert refused.status_code == 503  # Telegram keeps it and retries


def test_a_job_that_stops_finishing_is_reported_stalled() -> None:
    now = [1000.0]
    beats = Heartbeats(lambda: now[0])
    limits = {"poll-deposits": 240.0, "send-outbox": 66.0}
    assert beats.stalled(limits) == []
    now[0] += 60
    beats.beat("send-outbox")
    now[0] += 65
    assert beats.stalled(limits) == []
    now[0] += 2
    assert beats.stalled(limits) == ["send-outbox"]
    now[0] += 200
    beats.beat("send-outbox")
    assert beats.stalled(limits) == ["poll-deposits"]  # never finished since start-up


def test_http_is_served_in_webhook_mode_always_and_with_long_polling_only_when_port_is_set() -> (
    None
):
    base = {"TELEGRAM_BOT_TOKEN": "1:x", "ADMIN_IDS": "7", "OKX_API_KEY": "k"}
    base |= {"OKX_SECRET_KEY": "s", "OKX_PASSPHRASE": "p"}
    hook = {"WEBHOOK_URL": "https://shop.example.com", "WEBHOOK_SECRET": "abc_0123456789abcdef"}
    assert http_port(load_settings(base)) is None  # two laptops' bots never fight over a port
    assert http_port(load_settings(base | {"PORT": "9000"})) == 9000
    assert http_port(load_settings(base | hook)) == 8080
    assert http_port(load_settings(base | hook | {"PORT": "10000"})) == 10000  # Render's PORT


async def test_a_webhook_telegram_refuses_stops_start_up_naming_webhook_url(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world:
        refusal = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        world.tg.fail_next("setWebhook", "bad_request", description=refusal)
        with pytest.raises(ConfigError) as stopped:
            async with world.serving(webhook=True):
                pytest.fail("the bot must not start with a webhook Telegram refused")
        assert str(stopped.value).startswith("WEBHOOK_URL: Telegram refused the webhook http://")
        assert "an https url must be provided" in str(stopped.value).lower()
        assert world.tg.webhook is None
