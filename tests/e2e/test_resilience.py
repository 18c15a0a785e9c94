"""The bot keeps serving when OKX is down at start-up, and offers coins once OKX answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from payments.storage.schema import pool_addresses
from tests.botkit import BotWorld


async def test_okx_down_at_start_up_the_bot_serves_and_recovers(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world:
        world.okx.fail_rate(1.0, kinds=("unavailable",))
        async with world.running():
            alice = world.customer(101)
            menu = await alice.send("/start", expect="Welcome")
            assert "Pro" in menu.plain
            no_coins = await alice.press("Pro", expect="No coin can be paid right now")
            assert "USDT" not in [text for text, _ in world.tg.buttons(no_coins)]

            world.okx.clear_faults()  # OKX is back: the directory is refreshed within seconds
            for _ in range(200):  # the directory is stored for every coin
                stored = {r["currency"] for r in await world.rows(pool_addresses)}
                if stored >= {"BTC", "ETH", "USDT", "USDC", "SOL", "BNB"}:
                    break
                await asyncio.sleep(0.05)
            await alice.send("/start", expect="Welcome")
            await alice.press("Pro", expect="Which coin")
            photo = await alice.press("BTC", expect="Send exactly")
            assert "Bitcoin" in photo.plain


async def test_a_telegram_5xx_on_a_reply_is_retried(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(102)
        world.tg.fail_next("sendMessage", "502", count=2, chat_id=102)
        reply = await alice.send("/help", expect="How it works")
        assert alice.texts().count(reply.plain) == 1
        failed = [c for c in world.tg.calls("sendMessage", chat_id=102) if not c.response_ok]
        assert len(failed) == 2


async def test_an_admin_alert_retried_for_one_admin_is_not_repeated_to_the_other(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path, env={"ADMIN_IDS": "900,901"}) as world, world.running():
        first, second = world.customer(900), world.customer(901)
        world.tg.fail_next("sendMessage", "502", count=3, chat_id=901)  # beyond quick retries
        world.okx.add_deposit("USDT", "USDT-TRC20", "12.3456")  # nobody ordered this
        await first.wait_text("Unmatched deposit", timeout=15)
        for _ in range(40):  # the outbox retries 901 later (backoff on the payments clock)
            world.clock.advance(10_000)
            if second.count("Unmatched deposit"):
                break
            await asyncio.sleep(0.1)
        await second.wait_text("Unmatched deposit")
        await world.tg.wait_idle(quiet_s=0.3)
        assert (first.count("Unmatched deposit"), second.count("Unmatched deposit")) == (1, 1)
