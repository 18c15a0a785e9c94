"""What Telegram asks of a bot that sells: /terms and /paysupport, end to end. The customer reads
the terms and how to reach the shop; the admin reads who asked and their recent invoices, once a
customer per 10 minutes; a blocked customer opens nothing; a TERMS_TEXT Telegram could not send
stops start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.terms import MESSAGE_LIMIT, longest_terms
from fakes.telegram_html import utf16_len
from payments.clock import MINUTE_MS
from tests.botkit import ADMIN, BotWorld, Customer, address_of, amount_of, invoice_id_of
from tests.conftest import backends

WINDOW_MS = 10 * MINUTE_MS
DEFAULT_TERMS = "What you buy:"


def alerts(world: BotWorld, text: str = "/paysupport from") -> list[str]:
    return [m.plain for m in world.tg.bot_messages(ADMIN) if text in m.plain]


async def terms(customer: Customer) -> str:
    return (await customer.send("/terms", expect="/paysupport")).plain


# --- /terms, the command menu ----------------------------------------------------------------


async def test_terms_are_the_default_until_the_merchant_sets_theirs(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world:
        async with world.running():
            alice, olga = world.customer(101), world.customer(102, language="ru")
            shown = await terms(alice)
            assert shown.startswith("Terms of sale")
            assert DEFAULT_TERMS in shown and "Refunds:" in shown and "Renewals:" in shown
            assert "Questions about a payment: /paysupport" in shown
            in_russian = await terms(olga)
            assert in_russian.startswith("Условия продажи") and "Возвраты:" in in_russian
            # both commands are in the menu, in every language, and /help names them
            for call in world.tg.calls("setMyCommands"):
                names = [c["command"] for c in call.params["commands"]]
                assert {"paysupport", "terms"} <= set(names), names
            assert "/paysupport" in (await alice.send("/help")).plain
            assert "/terms" in (await alice.send("/help")).plain

        # the merchant's own terms: plain text as written (markup is not interpreted), the link
        own = "No refunds after 24 hours.\n<b>Not bold</b> & kept as typed."
        url = "https://shop.example/terms?lang=en&v=2"
        world.env |= {"TERMS_TEXT": own, "TERMS_URL": url}
        async with world.running():
            shown = await terms(alice)
            assert own in shown
            assert f"The full terms: {url}" in shown
            assert DEFAULT_TERMS not in shown
            assert own in await terms(olga)

        # a link alone
        del world.env["TERMS_TEXT"]
        async with world.running():
            shown = await terms(alice)
            assert f"The shop's terms are here: {url}" in shown
            assert DEFAULT_TERMS not in shown


async def test_the_longest_terms_that_pass_the_check_are_sent_whole(tmp_path: Path) -> None:
    """At the limit exactly (emoji count twice, as in Telegram): the setting is taken and the
    fake Bot API, which refuses a text over 4096 UTF-16 units, sends it."""
    url = "https://shop.example/terms"
    unit = "Terms 🙂 & conditions.\n"
    text = unit * (MESSAGE_LIMIT // len(unit))
    while longest_terms(text, url) > MESSAGE_LIMIT:
        text = text[:-1].rstrip()
    while longest_terms(text + "x", url) <= MESSAGE_LIMIT:
        text += "x"
    assert longest_terms(text, url) == MESSAGE_LIMIT
    env = {"TERMS_TEXT": text, "TERMS_URL": url}
    async with BotWorld.open(tmp_path, env=env) as world, world.running():
        lengths = []
        for customer in (world.customer(101), world.customer(102, language="ru")):
            shown = await customer.send("/terms", expect=url)
            assert text.strip() in shown.plain
            lengths.append(utf16_len(shown.plain))
        assert max(lengths) == MESSAGE_LIMIT


def test_terms_text_too_long_for_telegram_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_BOT_TOKEN": "123456:TOKEN",
        "ADMIN_IDS": "1",
        "OKX_API_KEY": "key",
        "OKX_SECRET_KEY": "secret",
        "OKX_PASSPHRASE": "passphrase",
        "TERMS_TEXT": "Our terms. " * 400,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("subsbot: TERMS_TEXT is too long: /terms would be ")
    assert "at most 4096" in lines[0]


# --- /paysupport -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", backends())
async def test_paysupport_gives_the_contact_and_alerts_the_admins_once_per_ten_minutes(
    tmp_path: Path, backend: str
) -> None:
    env = {"SUPPORT_CONTACT": "@shop_help"}
    async with BotWorld.open(tmp_path, env=env, backend=backend) as world, world.running():
        admin, alice, bob = world.customer(ADMIN), world.customer(301), world.customer(302)
        world.tg.user(alice.id, first_name="Alice <Smith>", username="alice_pays")
        paid = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(paid), to=address_of(paid))
        await alice.wait_text("Payment received", timeout=15)
        world.clock.advance(MINUTE_MS)
        opened = await alice.buy("Enterprise", "BTC", None)

        # a minute before a 10-minute mark of the clock: the next request falls past it
        world.clock.advance(WINDOW_MS - world.clock.now_ms() % WINDOW_MS - MINUTE_MS)
        reply = await alice.send("/paysupport")
        assert "write to @shop_help" in reply.plain
        assert "admins have been told" in reply.plain
        alert = await admin.wait_text("/paysupport from", timeout=15)
        assert f"Alice <Smith> (id {alice.id}, @alice_pays)" in alert.plain
        lines = alert.plain.splitlines()
        newest, older = lines[1], lines[2]
        assert newest.startswith(invoice_id_of(opened)) and "BTC · pending" in newest
        assert "Enterprise" in newest
        assert older.startswith(invoice_id_of(paid))
        assert f"Pro · {amount_of(paid)} USDT · paid" in older
        assert f"/user {alice.id}" in alert.plain

        # again, two minutes later (past the 10-minute mark): answered, no second alert
        world.clock.advance(2 * MINUTE_MS)
        again = await alice.send("/paysupport")
        assert "write to @shop_help" in again.plain and "admins have been told" in again.plain
        # bob asks after her: admin alerts go out in the order written, so once his is here,
        # a second one of alice's would be too
        await bob.send("/paysupport")
        await admin.wait_text(f"id {bob.id}", timeout=15)
        assert len(alerts(world, f"id {alice.id}")) == 1
        assert "Recent invoices:\nnone" in alerts(world, f"id {bob.id}")[0]

        # ten minutes after her alert: a new one
        world.clock.advance(8 * MINUTE_MS + 1_000)
        await alice.send("/paysupport", expect="admins have been told")
        await world.tg.wait_for(
            lambda: len(alerts(world, f"id {alice.id}")) == 2, 15, "a second alert"
        )
        await world.settled()
        assert alice.count("write to @shop_help") == 3


async def test_without_a_contact_the_customer_is_told_the_admins_will_write_and_a_blocked_one_opens_nothing(  # noqa: E501
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        admin, carol, mallory = world.customer(ADMIN), world.customer(401), world.customer(402)
        world.tg.user(carol.id, first_name="Carol", language_code="ru")
        await admin.send(f"/block {mallory.id}", expect="is blocked")

        refused = await mallory.send("/paysupport")
        assert "does not take support requests" in refused.plain
        assert "admins have been told" not in refused.plain

        told = await carol.send("/paysupport")
        assert "Администраторам магазина сообщили" in told.plain
        assert "пишите" not in told.plain  # no contact to give
        alert = await admin.wait_text(f"id {carol.id}", timeout=15)
        assert "/paysupport from Carol" in alert.plain  # the admins read their own language
        await world.settled()
        assert alerts(world, f"id {mallory.id}") == []
        assert len(alerts(world)) == 1
