"""Merchant webhooks through the real bot: a customer pays in the chat and the merchant's backend
(fakes/receiver.py) hears about it, signed and in order; admins see failures with /webhooks and
send again with /redeliver; anyone else is refused."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.check import check_settings, run_check
from bot.config import load_settings
from bot.logs import secrets_of
from fakes.okx import FakeOkx
from fakes.receiver import WebhookReceiver
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from payments.clock import DAY_MS, MINUTE_MS, ManualClock
from payments.delivery.webhooks import WebhookSender, verify
from payments.delivery.webhooks import events as ev
from payments.ops.setup_check import Report
from payments.storage import Database
from payments.storage.schema import merchant_events, webhook_attempts
from tests.botkit import ADMIN, FAST, BotWorld, address_of, amount_of
from tests.conftest import backends

SECRET = "merchant-secret-0123456789"
TIMINGS = replace(FAST, webhooks=0.2)
ADMIN_ONLY = "This command is for the shop's admins."


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(1000):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def failures(world: BotWorld, status: int) -> bool:
    return any(a["status_code"] == status for a in await world.rows(webhook_attempts))


@pytest.mark.parametrize("backend", backends())
async def test_paying_in_the_chat_reaches_the_backend_signed_and_in_order(
    tmp_path: Path, backend: str
) -> None:
    with WebhookReceiver() as receiver:
        env = {"MERCHANT_WEBHOOK_URLS": receiver.url, "MERCHANT_WEBHOOK_SECRET": SECRET}
        async with (
            BotWorld.open(tmp_path, env=env, backend=backend) as world,
            world.running(timings=TIMINGS),
        ):
            alice = world.customer(101)
            photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
            world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo))
            await alice.wait_text("Payment received", timeout=15)
            got = await world.tg.wait_for(
                lambda: receiver.accepted() if len(receiver.accepted()) >= 2 else None,
                15,
                "two webhooks",
            )

            assert [r.json()["type"] for r in got] == ["invoice.paid", "subscription.activated"]
            now = world.clock.now_ms() / 1000
            for request in got:
                signature = request.header("X-Subsbot-Signature")
                assert verify(SECRET, request.body, signature, now=now)
            paid = got[0].json()["data"]
            assert (paid["customer"], paid["plan_id"], paid["amount"]) == (
                101,
                "pro",
                amount_of(photo),
            )
            assert got[1].json()["data"]["source"] == "payment"


async def test_admins_see_failures_and_redeliver_others_are_refused(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        env = {"MERCHANT_WEBHOOK_URLS": receiver.url, "MERCHANT_WEBHOOK_SECRET": SECRET}
        async with BotWorld.open(tmp_path, env=env) as world, world.running(timings=TIMINGS):
            alice, admin = world.customer(101), world.customer(ADMIN)
            receiver.answer(500)
            await admin.send("/grant 102 pro 7", expect="Granted")

            await eventually(lambda: failures(world, 500), "a delivery answered with 500")
            listing = (await admin.send("/webhooks", expect="Webhooks")).plain
            assert f"{receiver.url}: 0 delivered · 1 pending · 0 failed" in listing
            match = re.search(r"#(\d+) subscription\.activated evt_[0-9a-f]+ · tries: 1", listing)
            assert match, listing
            assert "HTTP 500 · next try" in listing

            for command in ("/webhooks", "/redeliver failed", f"/redeliver {match[1]}"):
                assert (await alice.send(command)).plain == ADMIN_ONLY, command

            assert "Usage" in (await admin.send("/redeliver", expect="Usage")).plain
            assert "No delivery #999" in (await admin.send("/redeliver 999")).plain

            receiver.answer(200)
            done = await admin.send(f"/redeliver {match[1]}", expect="again")
            assert f"#{match[1]}" in done.plain
            [sent] = await world.tg.wait_for(lambda: receiver.accepted(), 10, "the redelivery")
            assert sent.json()["type"] == "subscription.activated"
            assert sent.json()["data"]["customer"] == 102
            assert sent.header("X-Subsbot-Delivery") == match[1]
            delivered = f"{receiver.url}: 1 delivered · 0 pending · 0 failed"
            for _ in range(50):  # the receiver answered; the sender records it a moment later
                after = (await admin.send("/webhooks", expect="Webhooks")).plain
                if delivered in after:
                    break
                await asyncio.sleep(0.1)
            assert delivered in after

            # still failing three days later: given up, and the admins are told once
            receiver.answer(503)
            await admin.send("/grant 103 pro 7", expect="Granted")
            await eventually(lambda: failures(world, 503), "a delivery answered with 503")
            world.clock.advance(3 * DAY_MS + MINUTE_MS)
            alert = await admin.wait_text("given up after 3 days", timeout=15)
            assert f"Webhook to {receiver.url} given up" in alert.plain
            assert "subscription.activated" in alert.plain and "HTTP 503" in alert.plain
            listing = (await admin.send("/webhooks", expect="Webhooks")).plain
            assert f"{receiver.url}: 1 delivered · 0 pending · 1 failed" in listing
            assert "HTTP 503 · given up" in listing
            assert admin.count("given up after 3 days") == 1


async def test_without_urls_events_are_kept_and_webhooks_says_so(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running(timings=TIMINGS):
        admin = world.customer(ADMIN)
        await admin.send("/grant 102 pro 7", expect="Granted")
        reply = (await admin.send("/webhooks")).plain
        assert reply == "No webhook URL is configured (MERCHANT_WEBHOOK_URLS)."
        assert [e["type"] for e in await world.rows(merchant_events)] == ["subscription.activated"]


def test_check_names_how_many_webhook_urls_by_host_only() -> None:
    base = {"TELEGRAM_BOT_TOKEN": "1:x", "ADMIN_IDS": "7", "OKX_API_KEY": "k"}
    base |= {"OKX_SECRET_KEY": "s", "OKX_PASSPHRASE": "p"}
    hooks = "https://shop.example/hooks?token=abc123,http://10.0.0.5:8000/subsbot"
    settings = load_settings(
        {**base, "MERCHANT_WEBHOOK_URLS": hooks, "MERCHANT_WEBHOOK_SECRET": SECRET}
    )
    report = Report(secrets=secrets_of(settings))
    check_settings(settings, report)
    assert "  ok    MERCHANT_WEBHOOK_URLS: 2 URL(s) (shop.example, 10.0.0.5)" in report.lines
    assert not any("abc123" in line or "/hooks" in line for line in report.lines)

    off = Report()
    check_settings(load_settings(base), off)
    assert "  ok    MERCHANT_WEBHOOK_URLS: not set (no webhooks to your backend)" in off.lines
    assert SECRET in secrets_of(settings)  # scrubbed from logs and the check's output


@pytest.mark.parametrize("backend", backends())
async def test_a_rotated_token_leaves_deliveries_that_admins_are_told_of_once_and_move(
    tmp_path: Path, backend: str
) -> None:
    """The token in the URL is rotated while the receiver is down: what was pending to the old
    URL is neither sent nor lost silently; admins hear of it once and move it to the new URL."""
    with WebhookReceiver() as receiver:
        old = f"{receiver.url}?token=old-token-0001"
        new = f"{receiver.url}?token=new-token-0002"
        env = {"MERCHANT_WEBHOOK_URLS": old, "MERCHANT_WEBHOOK_SECRET": SECRET}
        async with BotWorld.open(tmp_path, env=env, backend=backend) as world:
            alice, admin = world.customer(101), world.customer(ADMIN)
            async with world.running(timings=TIMINGS):
                receiver.answer(503)
                await admin.send("/grant 102 pro 7", expect="Granted")
                await eventually(lambda: failures(world, 503), "a delivery answered with 503")

            world.env["MERCHANT_WEBHOOK_URLS"] = new
            gone = "no longer in MERCHANT_WEBHOOK_URLS"
            async with world.running(timings=TIMINGS):
                alert = await admin.wait_text(gone, timeout=15)
                assert f"{receiver.url} · id " in alert.plain and ": 1 pending" in alert.plain
                assert "/webhooks move" in alert.plain and "/webhooks drop" in alert.plain
            async with world.running(timings=TIMINGS):  # the same settings again: no news
                listing = (await admin.send("/webhooks", expect="Webhooks")).plain
                await asyncio.sleep(1.0)  # many outbox runs
                assert admin.count(gone) == 1

                assert f"{receiver.url}: 0 delivered · 0 pending · 0 failed" in listing
                new_id = re.search(r"0 failed · id ([0-9a-f]{8})", listing)
                old_id = re.search(r"· id ([0-9a-f]{8}): 1 pending, the oldest from", listing)
                assert new_id and old_id, listing
                assert "No longer in MERCHANT_WEBHOOK_URLS" in listing
                assert "token" not in listing and "token" not in alert.plain

                for bad in ("/webhooks move", "/webhooks move 12", "/webhooks drop a b"):
                    assert "Usage: /webhooks" in (await admin.send(bad)).plain, bad
                reply = (await admin.send("/webhooks drop ffffffff")).plain
                assert "No URL that is gone" in reply and "Nothing changed" in reply
                reply = (await admin.send(f"/webhooks move {old_id[1]} ffffffff")).plain
                assert "No URL in MERCHANT_WEBHOOK_URLS has the id ffffffff" in reply
                reply = (await admin.send(f"/webhooks move {new_id[1]} {new_id[1]}")).plain
                assert "No URL that is gone" in reply
                assert (await alice.send(f"/webhooks drop {old_id[1]}")).plain == ADMIN_ONLY
                assert receiver.accepted() == []

                receiver.answer(200)
                moved = await admin.send(f"/webhooks move {old_id[1]} {new_id[1]}", expect="moved")
                assert f"1 pending deliveries moved from {receiver.url} to {receiver.url}" in (
                    moved.plain
                )
                [sent] = await world.tg.wait_for(lambda: receiver.accepted(), 10, "the move")
                assert sent.query == "token=new-token-0002"
                assert sent.json()["type"] == "subscription.activated"
                assert sent.json()["data"]["customer"] == 102
                after = (await admin.send("/webhooks", expect="Webhooks")).plain
                assert "No longer in" not in after


async def test_check_names_deliveries_left_to_a_url_that_is_gone_without_its_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'check.sqlite3'}"
    old = "http://127.0.0.1:9/hooks/subsbot?token=old-token-0001"  # nothing listens there
    db = Database.from_url(database_url)
    clock = ManualClock()
    sender = WebhookSender(db, [old], SECRET, clock)
    try:
        await db.migrate()
        await sender.start()
        async with db.transaction() as conn:  # recorded while the old URL was in force
            await ev.record(conn, ev.INVOICE_PAID, "k1", "customer:1", {}, clock.now_ms())
        await sender.run()  # refused: still pending
    finally:
        await sender.close()
        await db.close()

    fake_okx = FakeOkx(secret="s3cr3t-value-xyz", passphrase="pass-phrase-abc").start()
    fake_tg = FakeTelegram(token="654321:bot-token-SECRET-value").start()
    try:
        env = bot_env(fake_tg, fake_okx, database_url, admins="900")
        env |= {
            "MERCHANT_WEBHOOK_URLS": "https://new.example/hooks?token=new-token-0002",
            "MERCHANT_WEBHOOK_SECRET": SECRET,
        }
        code = await run_check(load_settings(env))
    finally:
        fake_tg.stop()
        fake_okx.stop()
    out = capsys.readouterr().out
    assert code == 0, out
    line = re.search(
        r"  warn  MERCHANT_WEBHOOK_URLS: 1 delivery\(ies\) still pending to "
        r"http://127\.0\.0\.1:9/hooks/subsbot \(id ([0-9a-f]{8})\), which is no longer "
        r"configured: /webhooks move \1 <new id> or /webhooks drop \1 in the bot\n",
        out,
    )
    assert line, out
    assert "old-token" not in out and "new-token" not in out


async def test_with_every_url_taken_out_what_was_left_is_told_and_can_be_dropped(
    tmp_path: Path,
) -> None:
    with WebhookReceiver() as receiver:
        env = {"MERCHANT_WEBHOOK_URLS": receiver.url, "MERCHANT_WEBHOOK_SECRET": SECRET}
        async with BotWorld.open(tmp_path, env=env) as world:
            admin = world.customer(ADMIN)
            async with world.running(timings=TIMINGS):
                receiver.answer(500)
                await admin.send("/grant 102 pro 7", expect="Granted")
                await eventually(lambda: failures(world, 500), "a delivery answered with 500")
            del world.env["MERCHANT_WEBHOOK_URLS"]
            async with world.running(timings=TIMINGS):
                await admin.wait_text("no longer in MERCHANT_WEBHOOK_URLS", timeout=15)
                listing = (await admin.send("/webhooks", expect="No webhook URL")).plain
                old_id = re.search(r"· id ([0-9a-f]{8}): 1 pending", listing)
                assert old_id, listing
                assert (await admin.send("/redeliver failed")).plain == (
                    "No webhook URL is configured (MERCHANT_WEBHOOK_URLS)."
                )
                dropped = await admin.send(f"/webhooks drop {old_id[1]}", expect="dropped")
                assert f"1 pending delivery to {receiver.url} dropped." == dropped.plain
                after = (await admin.send("/webhooks", expect="No webhook URL")).plain
                assert after == "No webhook URL is configured (MERCHANT_WEBHOOK_URLS)."
