"""The security checklist of tests/bot/web/test_security.py, items 2, 4, 5 and 6: admin commands
from
anyone else, txid claims of someone else's deposit, OKX keys that can trade or withdraw, and
secrets in logs, messages and answers; through the chat and the bot's process."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from telegram.ext import CommandHandler

from bot import callbacks as cb
from bot.app import CUSTOMER_COMMANDS
from fakes.okx import FakeOkx
from fakes.receiver import WebhookReceiver
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from fakes.telegram_state import ChatMessage, flat_buttons
from payments.errors import UnsafeApiKey
from payments.storage.schema import deposits, subscriptions
from tests.bot.web.test_security import (
    ADMIN_ONLY,
    API_TOKEN,
    INITIALIZE,
    money_rows,
)
from tests.bot.web.test_service import SECRET_HEADER
from tests.botkit import (
    ADMIN,
    HISTORY,
    BotWorld,
    Customer,
    amount_of,
    answer_to,
    invoice_id_of,
)

# --- 2. admin commands ----------------------------------------------------------------------------


def admin_commands(application: Any) -> list[str]:
    """Every command the bot registers that is not a customer's: the admin commands."""
    names = {
        name
        for handlers in application.handlers.values()
        for handler in handlers
        if isinstance(handler, CommandHandler)
        for name in handler.commands
    }
    return sorted(names - set(CUSTOMER_COMMANDS) - {"join"})


def forwarded(world: BotWorld, sender: dict[str, Any], origin: dict[str, Any], text: str) -> None:
    """``sender`` forwards a message ``origin`` wrote (``text``, a command) to the bot."""
    chat = {"id": sender["id"], "type": "private", "first_name": sender["first_name"]}
    date = int(time.time())
    message: dict[str, Any] = {"message_id": 3_000_000 + len(world.tg.requests), "date": date}
    message |= {"chat": chat, "from": sender, "text": text}
    message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    message["forward_origin"] = {"type": "user", "date": date - 60, "sender_user": origin}
    message |= {"forward_from": origin, "forward_date": date - 60}  # the pre-7.0 fields too
    world.tg.add_update({"message": message})


async def test_admin_commands_are_refused_for_non_admins_forwarded_or_spoofed(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.running() as app:
        commands = admin_commands(app)
        assert {"confirm", "grant", "pending", "reassign", "refunded", "reject"} <= set(commands)
        alice, admin = world.customer(101), world.customer(ADMIN)
        photo = await alice.buy()
        invoice = invoice_id_of(photo)
        dep_id = world.okx.add_deposit("USDT", "USDT-ERC20", "3.1415", to="0x" + "ab" * 20)
        await admin.wait_text(f"Unmatched deposit {dep_id}", timeout=15)
        arguments = {
            "confirm": f"{invoice} {dep_id}",
            "reject": invoice,
            "reassign": f"{dep_id} {invoice}",
            "refunded": dep_id,
            "grant": "666 pro 30",
            "user": "101",
            "redeliver": "failed",
            "members": "pro",
        }
        admin_user = world.tg.user(ADMIN, first_name="Shop Owner", username="shop_owner")
        mallory_user = world.tg.user(666, first_name="Shop Owner", username="shop_owner")
        mallory = Customer(world, 666)
        before = await money_rows(world)
        for name in commands:
            text = f"/{name} {arguments.get(name, '')}".strip()
            # a stranger; the same from a spoofed username (admins are ids, not names)
            for sender in (world.customer(102), mallory):
                reply = await sender.send(text)
                assert reply.plain == ADMIN_ONLY, (sender.id, text, reply.plain)
            # an admin's own message, forwarded to the bot by someone else
            seen = len(mallory.messages())
            forwarded(world, mallory_user, admin_user, text)
            reply = await mallory.wait_new(seen)
            assert reply.plain == ADMIN_ONLY, ("forwarded", text, reply.plain)
        # the admin buttons, with forged data under any message
        for action in (cb.AdminConfirm(invoice, True), cb.AdminReject(invoice), cb.AdminPage(0)):
            answer = await answer_to(world, mallory, mallory.messages()[-1], cb.encode(action))
            assert answer == ADMIN_ONLY, action
        assert await money_rows(world) == before
        assert (await world.invoice_row(invoice))["status"] == "pending"
        assert not [m for m in mallory.texts() if m != ADMIN_ONLY]  # nothing else reached them
        # the same commands from the admin do act: the refusals above were not a broken bot
        stats = await admin.send("/stats")
        assert stats.plain != ADMIN_ONLY and "Pro" in (await admin.send("/pending")).plain
        granted = await admin.send("/grant 666 pro 30", expect="666")
        assert granted.plain != ADMIN_ONLY and await world.rows(subscriptions) != []


# --- 4. txid claims -------------------------------------------------------------------------------


async def claim(customer: Customer, photo: ChatMessage, reference: str) -> str:
    """Press "I paid: claim it" under ``photo`` and send ``reference``; the bot's answer."""
    await customer.press("I paid: claim it", message=photo, expect="transaction hash")
    return (await customer.send(reference)).plain


async def test_txid_claims_cannot_steal_someone_elses_deposit(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob, admin = world.customer(501), world.customer(502), world.customer(ADMIN)
        mine = await alice.buy()
        bob_pro = await bob.buy()
        theirs = invoice_id_of(bob_pro)

        # Bob's payment is seen, not yet final: it is his; Alice's claim of its hash is refused
        tx_b = "b0" * 32
        dep_b = world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(bob_pro), tx_id=tx_b)
        world.okx.set_deposit(dep_b, state="0")
        await bob.wait_text("Waiting for network confirmations", timeout=15)
        assert "it already paid another invoice" in await claim(alice, mine, tx_b)
        world.okx.set_deposit(dep_b, state="2")
        await bob.wait_text(f"Payment received for invoice {theirs}", timeout=15)

        # an OKX-to-OKX transfer, claimed by Bob's withdrawal ID
        bob_ent = await bob.buy("Enterprise")
        wd_id = "7123456789"
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(bob_ent), type="3", from_wd_id=wd_id)
        await bob.wait_text(f"Payment received for invoice {invoice_id_of(bob_ent)}", timeout=15)
        assert "it already paid another invoice" in await claim(alice, mine, wd_id)

        # a hash claimed before OKX shows the deposit: it still goes to the invoice it pays
        bob_erc = await bob.buy("Pro", "USDT", "Ethereum (ERC20)")
        tx_c = "0x" + "c0" * 32
        assert "reached the shop's account yet" in await claim(alice, mine, tx_c)
        world.okx.add_deposit("USDT", "USDT-ERC20", amount_of(bob_erc), tx_id=tx_c)
        await bob.wait_text(f"Payment received for invoice {invoice_id_of(bob_erc)}", timeout=15)
        assert "it already paid another invoice" in (await alice.send(tx_c.upper())).plain

        # a deposit that fits Alice's invoice and another one: an admin decides, not the claim
        other = await world.customer(503).buy()
        tx_d = "d0" * 32
        dep_d = world.okx.add_deposit("USDT", "USDT-TRC20", "28.8", tx_id=tx_d)
        await admin.wait_text(f"Unmatched deposit {dep_d}", timeout=15)
        assert "passed this to an admin" in await claim(alice, mine, tx_d)
        await admin.wait_text(invoice_id_of(mine), timeout=15)

        await world.settled()
        owners = {d["dep_id"]: d["invoice_id"] for d in await world.rows(deposits)}
        assert owners[dep_b] == theirs and owners[dep_d] is None
        assert invoice_id_of(mine) not in owners.values()
        assert (await world.invoice_row(invoice_id_of(mine)))["status"] == "pending"
        assert (await world.invoice_row(invoice_id_of(other)))["status"] == "pending"
        assert {s["customer_id"] for s in await world.rows(subscriptions)} == {502}
        assert alice.count("Payment received") == 0


# --- 5. OKX key permissions -----------------------------------------------------------------------


def process_env(tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, **extra: str) -> dict[str, str]:
    database_url = f"sqlite:///{tmp_path / 'process.sqlite3'}"
    return bot_env(
        tg, okx, database_url, admins=str(ADMIN), home=tmp_path, PAYMENT_POLL_SECONDS="1", **extra
    )


async def bot_process(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", *args),
        cwd=env["HOME"],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_okx_keys_that_can_trade_or_withdraw_are_refused(tmp_path: Path) -> None:
    with FakeTelegram() as tg, FakeOkx() as okx:
        okx.set_permissions("read_only,withdraw", ip="203.0.113.7")
        run = await bot_process(process_env(tg, okx, tmp_path), "run")
        _, err = await asyncio.wait_for(run.communicate(), 120)
        assert run.returncode == 2, err.decode()
        last = err.decode().strip().splitlines()[-1]
        assert last.startswith('subsbot: The OKX API key has the "withdraw" permission'), last
        assert "ALLOW_UNSAFE_API_KEY" in last
        assert tg.calls("getUpdates") == [] and tg.calls("setWebhook") == []  # nothing served

    async with BotWorld.open(tmp_path) as world:
        world.okx.set_permissions("read_only,trade", ip="203.0.113.7")
        with pytest.raises(UnsafeApiKey, match='"trade" permission'):
            async with world.running():
                raise AssertionError("the bot started with a key that can trade")
        assert world.tg.calls("getUpdates") == []
        world.env["ALLOW_UNSAFE_API_KEY"] = "true"  # the merchant accepts the risk: it runs
        async with world.running():
            assert "Welcome" in (await world.customer(101).send("/start")).plain


async def test_a_key_okx_could_not_check_at_start_up_reads_no_deposit_until_it_passes(
    tmp_path: Path,
) -> None:
    """OKX does not answer the check at start-up: the bot serves customers, but reads no deposit
    with the key until the check ran and passed (it used to skip the check for good)."""
    async with BotWorld.open(tmp_path) as world:
        world.okx.set_permissions("read_only,withdraw", ip="203.0.113.7")
        world.okx.fail_next(1, "unavailable", path_prefix="/api/v5/account/config")
        async with world.running():
            admin = world.customer(ADMIN)
            refused = await admin.wait_text("OKX refused the API key", timeout=15)
            assert '"withdraw" permission' in refused.plain
            assert "Welcome" in (await world.customer(102).send("/start")).plain
            assert world.okx.count(HISTORY) == 0  # not one deposit-history request
            world.okx.set_permissions("read_only", ip="203.0.113.7")  # the merchant fixes it
            await admin.wait_text("OKX answers again", timeout=15)
            await world.polled()


# --- 6. secrets never logged ----------------------------------------------------------------------


def find_button(tg: FakeTelegram, user_id: int, label: str) -> tuple[ChatMessage, str] | None:
    for message in reversed(tg.bot_messages(user_id)):
        for text, data in flat_buttons(message.reply_markup):
            if label in text and data is not None:
                return message, data
    return None


async def tap(tg: FakeTelegram, user_id: int, label: str) -> None:
    message, data = await tg.wait_for(lambda: find_button(tg, user_id, label), 30, label)
    tg.press(user_id, message, data)


async def test_secrets_never_reach_a_log_a_message_or_an_answer(tmp_path: Path) -> None:
    hook_secret, merchant_secret = "hook-secret_never-logged-1", "merchant-secret-never-logged-2"
    with (
        FakeTelegram(token="7000001:AAH-bot-token-never-logged") as tg,
        FakeOkx(api_key="okx-key-never-logged", secret="okx-secret-never-logged") as okx,
        WebhookReceiver() as receiver,
    ):
        okx.passphrase = "okx-passphrase-never-logged"
        port = free_port()
        env = process_env(tg, okx, tmp_path, LOG_LEVEL="DEBUG", HOST="127.0.0.1", PORT=str(port))
        env |= {"WEBHOOK_URL": f"http://127.0.0.1:{port}", "WEBHOOK_SECRET": hook_secret}
        env |= {"API_TOKEN": API_TOKEN, "MERCHANT_WEBHOOK_URLS": receiver.url}
        env |= {"MERCHANT_WEBHOOK_SECRET": merchant_secret}
        secrets = [tg.token, okx.api_key, okx.secret, okx.passphrase, hook_secret, API_TOKEN]
        secrets.append(merchant_secret)
        answers: list[str] = []
        process = await bot_process(env, "run")
        try:
            await tg.wait_for(lambda: tg.webhook, 60, "setWebhook")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

                async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
                    response = await http.request(method, url, **kwargs)
                    answers.append(f"{response.status_code} {response.headers} {response.text}")
                    return response

                # a purchase in the chat, its photo first refused by Telegram (a 500, retried)
                tg.send_text(101, "/start")
                tg.fail_next("sendPhoto", "500", count=3)
                for label in ("Pro", "USDT", "Tron (TRC20)"):
                    await tap(tg, 101, label)
                await tg.wait_for(lambda: len(tg.calls("sendPhoto")) >= 3, 30, "three sendPhoto")
                await tap(tg, 101, "Tron (TRC20)")  # again: the invoice arrives
                await tg.wait_for(lambda: find_text(tg, 101, "Send exactly"), 30, "the invoice")
                # a request Telegram refuses outright: the error handler logs a traceback
                tg.fail_next("sendMessage", "bad_request", chat_id=103, description="boom")
                tg.send_text(103, "/help")
                await tg.wait_for(lambda: find_text(tg, 103, "Something went wrong"), 30)
                # a purchase through the API, paid on OKX: the customer, the admin and the
                # merchant's backend are told
                tg.send_text(102, "/start")  # a customer the merchant's backend acts for
                await tg.wait_for(lambda: tg.bot_messages(102), 60, "the welcome")
                bearer = {"Authorization": f"Bearer {API_TOKEN}", "X-Telegram-User-Id": "102"}
                body = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20"}
                created = (await call("POST", INITIALIZE, json=body, headers=bearer)).json()
                okx.add_deposit("USDT", "USDT-TRC20", created["crypto_amount"])
                await tg.wait_for(lambda: len(tg.bot_messages(102)) > 1, 60, "the activation")
                await tg.wait_for(lambda: receiver.accepted(), 60, "a merchant webhook")
                await call(
                    "GET", f"/api/payments/crypto/status/{created['payment_id']}", headers=bearer
                )
                # refusals: wrong credentials of every kind
                await call("GET", "/api/users/me", headers={"Authorization": "Bearer wrong-token"})
                await call("GET", "/api/users/me", headers={"Authorization": f"Bearer {API_TOKEN}"})
                await call("GET", "/api/users/me", headers={"Authorization": "tma hash=00"})
                await call("POST", INITIALIZE, json={"plan": 1}, headers=bearer)
                await call("POST", "/telegram/webhook", json={}, headers={SECRET_HEADER: "x"})
                # OKX refuses the key for a while: the admins are told, /healthz says so
                okx.passphrase = "okx-passphrase-now-different"
                await tg.wait_for(lambda: find_text(tg, ADMIN, "OKX refused the API key"), 60)
                health = await call(
                    "GET", "/healthz", headers={"Authorization": f"Bearer {API_TOKEN}"}
                )
                assert health.json()["okx"] == "auth", health.text
                await call("GET", "/openapi.json")
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 60)
        logs = out.decode() + err.decode()
        assert process.returncode == 0, logs[-3000:]
        # the paths above were really taken, and logged at DEBUG
        for expected in (" DEBUG ", "Traceback", "sendPhoto", "50105", "refused: wrong or missing"):
            assert expected in logs, expected
        messages = [m.plain for chat in (101, 102, 103, ADMIN) for m in tg.bot_messages(chat)]
        deliveries = [f"{r.headers} {r.body.decode()}" for r in receiver.received]
        everything = {"logs": logs, "answers": "\n".join(answers)}
        everything |= {"messages": "\n".join(messages), "webhooks": "\n".join(deliveries)}
        for secret in secrets:
            for form in {secret, quote(secret, safe=""), secret.split(":")[-1]}:
                leaks = [where for where, text in everything.items() if form in text]
                assert leaks == [], (form, leaks)


def find_text(tg: FakeTelegram, chat_id: int, text: str) -> bool:
    return any(text in m.plain for m in tg.bot_messages(chat_id))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
