"""The fake Telegram Bot API, driven by PTB's real ``telegram.Bot`` and ``Application``."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from fakes.telegram import FakeTelegram
from tests.paths import REPO

USER = 4242


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(hang_s=5.0) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as b:
        yield b


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "navy").save(buffer, "PNG")
    return buffer.getvalue()


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d)] for t, d in pairs])


async def test_get_me_and_wrong_token(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "subsbot_test_bot")
    assert me.first_name == "Subsbot Test" and me.can_join_groups
    with pytest.raises(InvalidToken, match="rejected"):
        async with Bot("123456:WRONG", base_url=fake.base_url):
            pass
    assert [r.response_ok for r in fake.calls("getme")] == [True, True, False]  # 1: initialize


async def test_html_message_with_keyboard_is_recorded(fake: FakeTelegram, bot: Bot) -> None:
    markup = keyboard(("Buy 1 month", "buy:m1"), ("Help", "help"))
    sent = await bot.send_message(
        USER, "<b>Plan</b> &lt;Gold&gt; 👑 <i>5 USDT</i>", parse_mode="HTML", reply_markup=markup
    )
    assert sent.message_id == 1 and sent.chat.id == USER and sent.from_user is not None
    assert sent.text == "Plan <Gold> 👑 5 USDT" and sent.from_user.is_bot
    entities = [(e.type, e.offset, e.length) for e in sent.entities]
    assert entities == [("bold", 0, 4), ("italic", 15, 6)]  # 👑 counts 2 (UTF-16)
    message = fake.last(USER)
    assert message is not None and message.from_bot and message.parse_mode == "HTML"
    assert message.text == "<b>Plan</b> &lt;Gold&gt; 👑 <i>5 USDT</i>"
    assert message.plain == "Plan <Gold> 👑 5 USDT"
    assert fake.buttons(message) == [("Buy 1 month", "buy:m1"), ("Help", "help")]
    (call,) = fake.calls("sendMessage", chat_id=USER)
    assert call.params["chat_id"] == USER and call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "buy:m1"
    with pytest.raises(BadRequest, match=r'(?i)unsupported start tag "script"'):
        await bot.send_message(USER, "hi <script>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER, "x", reply_markup=keyboard(("a", "x" * 65)))
    assert len(fake.messages(USER)) == 1


async def test_photo_bytes_are_stored_and_reused_by_file_id(fake: FakeTelegram, bot: Bot) -> None:
    image = png(400, 300)
    first = await bot.send_photo(USER, image, caption="<b>Pay</b>", parse_mode="HTML")
    assert first.caption == "Pay" and first.photo[-1].width == 400 and len(first.photo) >= 2
    again = await bot.send_photo(USER, first.photo[-1].file_id, caption="again")
    assert again.photo[-1].file_unique_id == first.photo[-1].file_unique_id
    stored = fake.bot_messages(USER)
    assert [m.photo for m in stored] == [image, image] and stored[0].plain == "Pay"
    assert "photo" in fake.calls("sendPhoto")[0].files
    with Image.open(io.BytesIO(stored[1].photo or b"")) as decoded:
        assert decoded.size == (400, 300)
    remote = await bot.get_file(first.photo[-1].file_id)
    assert bytes(await remote.download_as_bytearray()) == image
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(USER, "AgACnope")


async def test_a_document_keeps_its_bytes_and_file_name(fake: FakeTelegram, bot: Bot) -> None:
    data = b"rail,id\r\ncrypto,INV1\r\n"
    sent = await bot.send_document(
        USER, data, filename="payments.csv", caption="<b>Export</b>", parse_mode="HTML"
    )
    assert sent.document is not None and sent.document.file_name == "payments.csv"
    assert sent.document.file_size == len(data) and sent.caption == "Export"
    [stored] = fake.bot_messages(USER)
    assert stored.document_bytes == data and stored.plain == "Export"
    again = await bot.send_document(USER, sent.document.file_id)
    assert again.document is not None and again.document.file_name == "payments.csv"
    assert fake.bot_messages(USER)[-1].document_bytes == data
    remote = await bot.get_file(sent.document.file_id)
    assert bytes(await remote.download_as_bytearray()) == data
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_document(USER, "BQACnope")
    assert len(fake.calls("sendDocument")) == 3


async def test_edits_and_not_modified(fake: FakeTelegram, bot: Bot) -> None:
    photo = await bot.send_photo(USER, png(), caption="old", reply_markup=keyboard(("a", "a")))
    edited = await bot.edit_message_caption(
        USER, photo.message_id, caption="new", reply_markup=keyboard(("a", "a"))
    )
    assert isinstance(edited, type(photo)) and edited.caption == "new"
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_caption(
            USER, photo.message_id, caption="new", reply_markup=keyboard(("a", "a"))
        )
    await bot.edit_message_reply_markup(USER, photo.message_id)  # keyboard removed
    (message,) = fake.bot_messages(USER)
    assert (message.caption, message.edits, message.reply_markup) == ("new", 2, None)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", USER, 99)
    assert await bot.delete_message(USER, photo.message_id)
    assert fake.messages(USER)[0].deleted and fake.last(USER) is None


async def test_long_poll_gets_an_update_injected_while_waiting(
    fake: FakeTelegram, bot: Bot
) -> None:
    timer = threading.Timer(0.2, fake.send_text, args=(USER, "hello"))
    started = time.monotonic()
    timer.start()
    try:
        (update,) = await bot.get_updates(timeout=3)
    finally:
        timer.join()
    assert 0.15 < time.monotonic() - started < 2.5
    assert update.message is not None and update.message.text == "hello"
    assert fake.pending_updates() == 1  # not confirmed until the next offset
    fake.send_text(USER, "second")
    (second,) = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert second.message is not None and second.message.text == "second"
    assert await bot.get_updates(offset=second.update_id + 1, timeout=0) == ()
    assert fake.pending_updates() == 0
    first_poller = asyncio.create_task(bot.get_updates(timeout=3))
    await fake.wait_for(lambda: len(fake.calls("getUpdates")) == 4, what="the first long poll")
    async with Bot(fake.token, base_url=fake.base_url) as other:  # a second bot instance
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates"):
        await first_poller


async def test_callback_press_round_trip(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Pick", reply_markup=keyboard(("One", "plan:1")))
    (message,) = fake.bot_messages(USER)
    query = fake.press(USER, message, "plan:forged")
    (update,) = await bot.get_updates(timeout=1)
    assert update.callback_query is not None and update.callback_query.data == "plan:forged"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == sent.message_id
    assert update.callback_query.from_user.id == USER
    assert await bot.answer_callback_query(query["id"], text="ok", show_alert=True)
    assert [(a.callback_query_id, a.text, a.show_alert) for a in fake.answers] == [
        (query["id"], "ok", True)
    ]
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):  # answered already
        await bot.answer_callback_query(query["id"])


async def test_faults(fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # else reading retry_after warns (an error here)
    fake.fail_next("sendMessage", "429", retry_after=3)
    with pytest.raises(RetryAfter) as limited:
        await bot.send_message(USER, "a")
    assert limited.value.retry_after == timedelta(seconds=3)
    fake.fail_next("sendmessage", "502")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(USER, "b")
    fake.fail_next("sendMessage", "forbidden", chat_id=USER + 1)
    await bot.send_message(USER, "other chat: not consumed")
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(USER + 1, "c")
    fake.block(USER)
    with pytest.raises(Forbidden):
        await bot.send_photo(USER, png())
    fake.unblock(USER)
    fake.fail_next("sendMessage", "timeout", hang_s=2)
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "d", read_timeout=0.2)
    assert [m.plain for m in fake.messages(USER)] == ["other chat: not consumed"]
    assert [r.response_ok for r in fake.calls("sendMessage")][:3] == [False, False, True]


async def test_webhook_conflict_and_delivery(fake: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    failures = [1]  # the first delivery is refused, then retried

    async def hook(request: web.Request) -> web.Response:
        if failures and failures.pop():
            return web.Response(status=500)
        token = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        received.append((token, await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret_-")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        fake.send_text(USER, "/start")
        fake.send_text(USER, "two")
        await fake.wait_for(
            lambda: len(received) == 2 and fake.pending_updates() == 0, 5, "two deliveries"
        )
        assert [secret for secret, _ in received] == ["s3cret_-", "s3cret_-"]
        texts = [Update.de_json(body, bot).message.text for _, body in received]  # type: ignore[union-attr]
        assert texts == ["/start", "two"]
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook") and info.last_error_message is not None
        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


async def test_ptb_application_polls_and_replies(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "hi")

    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        fake.send_text(USER, "/start")
        (reply,) = await fake.wait_bot_messages(USER, 1, timeout=5)
        await fake.wait_idle(timeout=5)
        await app.updater.stop()
        await app.stop()
    assert reply.plain == "hi" and reply.message_id == 2  # the user's /start took id 1
    assert fake.pending_updates() == 0
    assert fake.calls("deleteWebhook") and fake.calls("getMe")


def test_standalone_main_and_lifecycle() -> None:
    fake = FakeTelegram()
    fake.stop()  # not started: a no-op
    with fake, pytest.raises(RuntimeError, match="already running"):
        fake.start()
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes.telegram", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/bot")
        token = json.loads(process.stdout.readline())["token"]
        with urllib.request.urlopen(f"{url}{token}/GETME", timeout=5) as response:
            assert json.loads(response.read())["result"]["username"] == "subsbot_test_bot"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}{token}/noSuchMethod", timeout=5)
        with missing.value as refused:
            assert refused.code == 404 and json.loads(refused.read())["description"] == "Not Found"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


async def test_wait_for_times_out_with_a_dump(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(USER, "visible")
    with pytest.raises(AssertionError, match="never") as failed:
        await fake.wait_for(lambda: None, timeout=0.05, what="never")
    assert "'visible'" in str(failed.value)
    fake.reset()
    assert fake.messages(USER) == [] and fake.requests == []
    await asyncio.sleep(0)


async def test_fail_rate_fails_a_share_of_calls_but_never_get_updates(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.fail_rate(0.5, kinds=("429", "500"), seed=7)
    outcomes: dict[str, int] = {"ok": 0, "429": 0, "500": 0}
    for i in range(60):
        try:
            await bot.send_message(USER, f"m{i}")
            outcomes["ok"] += 1
        except RetryAfter as limited:
            assert limited.retry_after == timedelta(seconds=1)
            outcomes["429"] += 1
        except NetworkError:
            outcomes["500"] += 1
    for _ in range(20):  # the long poll is never failed
        assert await bot.get_updates(timeout=0) == ()
    assert all(count > 5 for count in outcomes.values()), outcomes
    assert dict(fake.faults_injected) == {"429": outcomes["429"], "500": outcomes["500"]}
    assert len(fake.messages(USER)) == outcomes["ok"]  # a failed call delivered nothing
    fake.fail_rate(0)
    await bot.send_message(USER, "after")
    assert fake.messages(USER)[-1].plain == "after"


async def test_fail_rate_timeouts_hang_and_are_counted(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_rate(1.0, kinds=("timeout",), hang_s=2)
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "lost", read_timeout=0.2)
    await fake.wait_for(lambda: fake.faults_injected["timeout"] == 1, what="the timeout counted")
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake.fail_rate(0.1, kinds=("teapot",))
    fake.fail_rate(0)
    await fake.wait_idle(timeout=10)  # the hung call has given up by now
    assert fake.messages(USER) == []


async def test_balanced_webhooks_take_turns_and_skip_a_dead_or_failing_backend(
    fake: FakeTelegram, bot: Bot
) -> None:
    """balance_webhooks: a load balancer in front of replicas, keeping the registered path and
    query; a backend that refuses the connection or answers 5xx is skipped for that update."""
    received: dict[str, list[str]] = {"a": [], "b": []}
    broken: set[str] = set()

    def receiver(name: str) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            if name in broken:
                return web.Response(status=503)
            assert request.query["replica"] == "x"  # the registered URL's query is kept
            assert request.headers.get("X-Telegram-Bot-Api-Secret-Token") == "s3cret"
            update = Update.de_json(await request.json(), bot)
            assert update.message is not None
            received[name].append(update.message.text or "")
            return web.Response()

        app = web.Application()
        app.router.add_post("/telegram/webhook", hook)
        return app

    runners = [web.AppRunner(receiver(name)) for name in ("a", "b")]
    roots: list[str] = []
    for runner in runners:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        roots.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
    with socket.socket() as closed:  # a port nobody listens on: a dead replica
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    try:
        await bot.set_webhook(
            "https://shop.example/telegram/webhook?replica=x", secret_token="s3cret"
        )
        fake.balance_webhooks([roots[0], roots[1] + "/"])
        for i in range(4):
            fake.send_text(USER, f"m{i}")
        await fake.wait_for(lambda: fake.pending_updates() == 0, 10, "four deliveries")
        assert received == {"a": ["m0", "m2"], "b": ["m1", "m3"]}  # round-robin, in order
        assert fake.webhook_backends == {roots[0]: 2, roots[1]: 2}

        fake.balance_webhooks([dead, roots[0], roots[1]])
        broken.add("b")
        for i in range(4, 10):
            fake.send_text(USER, f"m{i}")
        await fake.wait_for(lambda: fake.pending_updates() == 0, 10, "six more deliveries")
        assert received["a"] == ["m0", "m2", *(f"m{i}" for i in range(4, 10))]
        assert fake.webhook_backends[dead] == 0 and fake.webhook_backends[roots[0]] == 8

        fake.balance_webhooks([dead, roots[1]])  # every backend fails: retried until one works
        fake.send_text(USER, "late")
        await fake.wait_for(lambda: fake.webhook_error is not None, 10, "a failed delivery")
        assert fake.pending_updates() == 1
        broken.clear()
        await fake.wait_for(lambda: fake.pending_updates() == 0, 10, "the retried delivery")
        assert received["b"][-1] == "late"
        fake.balance_webhooks(None)  # back to the registered URL (unreachable here)
        assert fake.webhook is not None and fake.webhook["url"].startswith("https://shop.example")
    finally:
        for runner in runners:
            await runner.cleanup()
