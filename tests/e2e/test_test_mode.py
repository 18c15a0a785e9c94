"""Test mode (OKX_MODE=simulated), end to end: the real bot against the fake Bot API, with the
in-process simulated exchange instead of OKX (no keys). A customer buys, an admin simulates the
deposit with /simulate_deposit, and the customer is told as for a real payment, every screen
marked TEST. Outside test mode the command is refused and nothing changes."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from payments.clock import MINUTE_MS
from payments.storage.schema import deposits, invoices, outbox, subscriptions
from tests.botkit import ADMIN, BotWorld, address_of, amount_of, invoice_id_of
from tests.e2e.test_admin import ADMIN_ONLY, settled
from tests.e2e.test_chat_access import CLUB, invite_link, plans_with_chat
from tests.e2e.web.test_auth import tma

SIMULATED = {"OKX_MODE": "simulated", "OKX_API_KEY": "", "OKX_SECRET_KEY": "", "OKX_PASSPHRASE": ""}
TEST = "🧪 TEST MODE"
LIVE_ONLY = "/simulate_deposit works only in test mode (OKX_MODE=simulated)"


async def test_a_rehearsal_purchase_is_marked_test_and_paid_by_a_simulated_deposit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plans = plans_with_chat(tmp_path)
    env = {**SIMULATED, "PLANS_FILE": str(plans)}
    caplog.set_level(logging.INFO)
    async with BotWorld.open(tmp_path, env=env) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running():
            assert "payment rails: test mode (simulated exchange)" in caplog.text
            await rehearse(world)
        assert world.okx.count() == 0  # OKX is never called


async def rehearse(world: BotWorld) -> None:
    """/start, buy, /simulate_deposit: the paid message and the chat's invite link."""
    alice, admin = world.customer(101), world.customer(ADMIN)
    welcome = await alice.send("/start")
    assert welcome.plain.startswith(TEST), welcome.plain
    assert "Welcome" in welcome.plain
    photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
    assert photo.plain.startswith(TEST), photo.plain
    assert address_of(photo).startswith("TEST-USDT-TRC20-")
    invoice = invoice_id_of(photo)

    reply = await admin.send(f"/simulate_deposit {invoice.lower()}", expect="TEST")
    assert f"simulated a deposit of {amount_of(photo)} USDT" in reply.plain
    assert f"to invoice {invoice}" in reply.plain
    world.clock.advance(MINUTE_MS)

    paid = await alice.wait_text(f"Payment received for invoice {invoice}", timeout=15)
    assert paid.plain.startswith(TEST), paid.plain
    link = await invite_link(alice)
    assert link.startswith("https://t.me/+")
    assert (await world.invoice_row(invoice))["status"] == "paid"
    [deposit] = await world.rows(deposits)
    assert deposit["tx_id"].startswith("test")
    assert Decimal(deposit["amount"]) == Decimal(amount_of(photo))
    assert [s["customer_id"] for s in await world.rows(subscriptions)] == [101]


async def test_a_simulated_part_payment_leaves_the_invoice_part_paid(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path, env=SIMULATED) as world, world.running():
        alice, admin = world.customer(101), world.customer(ADMIN)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        invoice = invoice_id_of(photo)
        await admin.send(f"/simulate_deposit {invoice} 10", expect="TEST")
        world.clock.advance(MINUTE_MS)
        partial = await alice.wait_text(f"Part of your payment for invoice {invoice}", timeout=15)
        assert partial.plain.startswith(TEST), partial.plain
        assert "arrived: 10.0000 USDT" in partial.plain
        row = await world.invoice_row(invoice)
        assert row["status"] != "paid"
        assert "paid_partial" in row["exceptions"]
        assert row["topup_units"] is not None
        assert await world.rows(subscriptions) == []


async def test_simulate_deposit_refuses_bad_input_and_non_admins(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path, env=SIMULATED) as world, world.running():
        alice, admin = world.customer(101), world.customer(ADMIN)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        invoice = invoice_id_of(photo)
        before = await settled(world)

        reply = await alice.send(f"/simulate_deposit {invoice}")
        assert reply.plain == ADMIN_ONLY
        for amount in ("-5", "0", "abc", "1e9", "0.00001"):
            reply = await admin.send(f"/simulate_deposit {invoice} {amount}")
            assert "Nothing changed" in reply.plain or "nothing changed" in reply.plain, (
                amount,
                reply.plain,
            )
        reply = await admin.send("/simulate_deposit NOSUCHINV")
        assert reply.plain.startswith("Not done: no invoice NOSUCHINV"), reply.plain
        reply = await admin.send("/simulate_deposit")
        assert reply.plain.startswith("Usage: /simulate_deposit")
        assert await settled(world) == before


async def test_outside_test_mode_simulate_deposit_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, admin = world.customer(101), world.customer(ADMIN)
        welcome = await alice.send("/start")
        assert "TEST" not in welcome.plain
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        assert "TEST" not in photo.plain
        invoice = invoice_id_of(photo)
        before = await settled(world)
        reply = await admin.send(f"/simulate_deposit {invoice}")
        assert reply.plain.startswith(LIVE_ONLY), reply.plain
        reply = await alice.send(f"/simulate_deposit {invoice}")
        assert reply.plain == ADMIN_ONLY
        world.clock.advance(MINUTE_MS)
        await world.polled()
        after = await settled(world)
        assert after == before
        assert (await world.invoice_row(invoice))["status"] == "pending"
        assert [r for r in await world.rows(outbox) if "paid" in r["kind"]] == []
        assert len(await world.rows(invoices)) == 1


async def test_the_mini_app_catalog_says_test_mode(tmp_path: Path) -> None:
    """The Mini App shows its TEST banner when the catalog says test_mode (its text is among
    the page's texts, in Russian too); a live shop's catalog says false."""
    for env, expected in ((SIMULATED, True), ({}, False)):
        async with (
            BotWorld.open(tmp_path / str(expected), env=env) as world,
            world.serving(webhook=False) as served,
            httpx.AsyncClient(base_url=served.base_url) as http,
        ):
            await world.started(101)
            r = await http.get("/api/catalog", headers=tma(world.tg.token, 101))
            assert r.status_code == 200, r.text
            assert r.json()["test_mode"] is expected
            texts = (await http.get("/app/texts.json?lang=ru")).json()["texts"]
            assert texts["app_test_banner"].startswith("🧪 ТЕСТОВЫЙ РЕЖИМ")
