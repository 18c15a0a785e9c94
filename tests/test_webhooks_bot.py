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

from bot.check import check_settings
from bot.config import load_settings
from bot.logs import secrets_of
from fakes.receiver import WebhookReceiver
from payments.cli import Report
from payments.clock import DAY_MS, MINUTE_MS
from payments.storage.schema import merchant_events, webhook_attempts
from payments.webhooks import verify
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
