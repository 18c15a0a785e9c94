"""The security checklist (docs/reliability.md). Each item is proven by the tests named here,
which assert what an attacker would observe through the real surfaces (the webhook route, the
chat, the JSON API, the process); "B:" is tests/e2e/test_security.py.

1. Webhook secret required and compared in constant time:
   test_webhook_url_without_a_secret_does_not_start,
   test_webhook_requests_without_the_exact_secret_never_reach_a_handler,
   test_secrets_are_compared_in_constant_time (+ test_the_constant_time_check_catches_a_plant);
   also tests/e2e/web/test_service.py::
   test_a_wrong_or_missing_secret_is_refused_and_never_reaches_a_handler.
2. Admin commands refused for non-admins, also a forwarded admin message and a spoofed username:
   B: test_admin_commands_are_refused_for_non_admins_forwarded_or_spoofed; also
   tests/e2e/test_admin.py::test_non_admins_are_refused_and_nothing_changes,
   tests/e2e/test_hostile_input.py.
3. A customer cannot see, cancel, claim or confirm another customer's invoice:
   test_a_customer_cannot_see_cancel_claim_or_confirm_anothers_invoice (chat and API); also
   tests/e2e/web/test_api.py::test_a_customer_never_sees_another_customers_payment,
   tests/e2e/test_hostile_input.py::test_any_callback_data_is_answered_and_only_the_owner_acts.
4. Txid claims cannot steal someone else's deposit:
   B: test_txid_claims_cannot_steal_someone_elses_deposit; the rules on the core in
   tests/payments/deposits/test_claims_and_corrections.py.
5. OKX keys with withdraw/trade permission refused (read-only accepted: every other test):
   B: test_okx_keys_that_can_trade_or_withdraw_are_refused (`python -m bot run`, the bot),
   test_a_key_okx_could_not_check_at_start_up_reads_no_deposit_until_it_passes;
   `python -m bot check`: tests/e2e/test_check.py::test_a_key_that_can_withdraw_fails (and
   ..._fails_and_says_so for `python -m payments check`).
6. Secrets never logged (nor shown in a message, an API answer or a merchant webhook):
   B: test_secrets_never_reach_a_log_a_message_or_an_answer; also tests/e2e/test_main.py.
7. API tokens compared in constant time: test_secrets_are_compared_in_constant_time; wrong ones
   refused: test_wrong_api_tokens_are_401; refused while API_TOKEN is unset:
   tests/e2e/web/test_auth.py::test_http_bearer_is_refused_while_api_token_is_unset.
8. Rate limits on invoice creation per customer (the hourly cap, chat and API):
   test_invoice_creation_is_rate_limited_per_customer; the open-invoice cap in
   tests/e2e/test_customer.py::test_refusals_to_create_an_invoice_say_why and
   tests/e2e/web/test_api.py::test_refusals_to_create_map_to_status_codes. Claims (tx hashes are
   public) are capped per customer too: tests/payments/deposits/test_claims_and_corrections.py::
   test_claims_are_rate_limited_per_customer_and_a_refused_one_changes_nothing and
   tests/e2e/test_customer.py::test_a_customer_sending_reference_after_reference_is_told_to_wait.
9. Nobody gains money they did not send, and nobody can stall the others' payments (each an
   attack that once worked, on both databases, in
   tests/payments/deposits/test_money_path_holes.py; and
   tests/soak/test_money_model.py, where an adversary picks the sequence): dust in a
   coin the shop does not sell delays nobody
   (test_dust_in_coins_the_shop_does_not_sell_never_delays_an_honest_payment);
   a public tx hash takes neither a late payment nor a second one
   (test_a_late_payment_cannot_be_taken_by_claiming_its_public_tx_hash,
   test_a_second_payment_cannot_be_claimed_once_the_first_settles); a claim sees what the
   poller saw (test_a_claim_for_a_six_decimal_coin_sees_what_the_poller_saw); a part-paid
   invoice is never completed with someone else's money
   (test_a_part_paid_invoice_is_never_completed_with_someone_elses_money); a payer's second,
   fee-reduced payment is never a stranger's
   (test_a_paid_invoices_address_is_nobody_elses_own_until_its_quarantine_ends); an admin's
   mistake and its undo credit nothing twice and lose nothing
   (test_a_mistaken_reassign_undone_leaves_both_customers_as_they_were,
   test_moving_a_top_up_away_takes_back_the_period_it_completed).
"""

from __future__ import annotations

import ast
import asyncio
import re
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
from bot.__main__ import main
from bot.app import CUSTOMER_COMMANDS
from bot.config import load_settings
from fakes.okx import FakeOkx
from fakes.receiver import WebhookReceiver
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from fakes.telegram_state import ChatMessage, flat_buttons
from payments.config import PaymentSettings
from payments.errors import ConfigError, UnsafeApiKey
from payments.storage.schema import (
    access_links,
    claim_waits,
    claims,
    customers,
    deposits,
    invoices,
    memberships,
    merchant_events,
    outbox,
    reservations,
    subscription_periods,
    subscriptions,
    webhook_deliveries,
)
from tests.botkit import (
    ADMIN,
    HISTORY,
    WEBHOOK_SECRET,
    BotWorld,
    Customer,
    amount_of,
    answer_to,
    invoice_id_of,
)
from tests.e2e.web.test_auth import tma
from tests.e2e.web.test_service import SECRET_HEADER, start_update
from tests.paths import REPO

ROOT = REPO
ADMIN_ONLY = "This command is for the shop's admins."
NOT_YOURS = "This invoice isn't yours."
INITIALIZE = "/api/payments/crypto/initialize"
API_TOKEN = "merchant-api-token_0123456789abcdef"
MONEY_TABLES = [invoices, reservations, deposits, claims, subscriptions, subscription_periods]
MONEY_TABLES += [claim_waits, memberships, access_links, merchant_events, webhook_deliveries]


async def money_rows(world: BotWorld) -> dict[str, list[dict[str, Any]]]:
    """Every row that money or access depends on, once the bot is idle and the outbox sent."""
    for _ in range(100):
        await world.settled()
        if all(r["status"] != "pending" for r in await world.rows(outbox)):
            break
    return {table.name: await world.rows(table) for table in MONEY_TABLES}


# --- 1. the webhook secret ------------------------------------------------------------------------


def test_webhook_url_without_a_secret_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "ADMIN_IDS": "7", "OKX_API_KEY": "k"}
    env |= {"OKX_SECRET_KEY": "s", "OKX_PASSPHRASE": "p", "WEBHOOK_URL": "https://a.example"}
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET is required when WEBHOOK_URL is set"):
        load_settings(env)
    monkeypatch.chdir(tmp_path)  # no .env here
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 2  # what `python -m bot run` does, before anything starts
    assert capsys.readouterr().err.splitlines() == [
        "subsbot: WEBHOOK_SECRET is required when WEBHOOK_URL is set"
    ]


async def test_webhook_requests_without_the_exact_secret_never_reach_a_handler(
    tmp_path: Path,
) -> None:
    wrong: list[str | None] = [None, "", "wrong", WEBHOOK_SECRET[:1], WEBHOOK_SECRET[:-1]]
    wrong += [WEBHOOK_SECRET + "x", WEBHOOK_SECRET.upper(), WEBHOOK_SECRET[::-1], "x" * 300]
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=True) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        for n, secret in enumerate(wrong):
            headers = {} if secret is None else {SECRET_HEADER: secret}
            update = start_update(9000 + n, 200 + n)
            refused = await http.post("/telegram/webhook", json=update, headers=headers)
            assert (refused.status_code, refused.text) == (403, "forbidden\n"), secret
        right = {SECRET_HEADER: WEBHOOK_SECRET}
        accepted = await http.post("/telegram/webhook", json=start_update(9100, 300), headers=right)
        assert accepted.status_code == 200
        await world.customer(300).wait_text("Welcome")  # the right secret reaches the bot ...
        await world.settled()
        for n in range(len(wrong)):  # ... and none of the refused updates did
            assert world.tg.bot_messages(200 + n) == []
        assert [r["id"] for r in await world.rows(customers)] == [300]


# --- 1 and 7. constant-time comparisons, checked on the source ----------------------------------

SENSITIVE = {"secret", "secrets", "token", "tokens", "hash", "signature", "sig", "passphrase"}
SENSITIVE |= {"password", "digest", "hmac", "credentials"}
# comparisons that look sensitive and are not: the exact source text, and why
NOT_SECRET = {
    "before.token != taken.token": "a lease's fencing token, a public counter",
    "name not in given": "the names of the OKX settings given, not their values",
    "code.group(1) == REGION_CODE": "an OKX error code in its answer",
}
COMPARING = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def _words(name: str) -> set[str]:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return {part.lower() for part in name.split("_") if part}


def _sensitive(name: str) -> bool:
    return not name.isupper() and bool(_words(name) & SENSITIVE)


def _secret_names(node: ast.AST, holders: set[str]) -> set[str]:
    """Names in ``node`` that say they are a secret, or hold one (``holders``). A length is not
    the secret, nor is a plain field of it (``response.status_code``); a method's result is
    (``given.lower()``)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Call):
            if isinstance(item.func, ast.Name) and item.func.id == "len":
                continue
            method = item.func if isinstance(item.func, ast.Attribute) else None
            if method is not None and _sensitive(method.attr):
                found.add(method.attr)
            stack.append(method.value if method is not None else item.func)
            stack.extend([*item.args, *(k.value for k in item.keywords)])
            continue
        if isinstance(item, ast.Attribute):
            if _sensitive(item.attr):
                found.add(item.attr)
            continue
        if isinstance(item, ast.Name) and (item.id in holders or _sensitive(item.id)):
            found.add(item.id)
        elif isinstance(item, ast.Constant) and isinstance(item.value, str):
            found |= {item.value} if _sensitive(item.value) else set()  # fields["hash"]
        stack.extend(ast.iter_child_nodes(item))
    return found


def _holders(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The local names that hold a secret: the parameters of a function named after one
    (``secret_matches(given, expected)``), and every name assigned from an expression with a
    secret in it (``expected = init_data_hash(...)``), until nothing changes."""
    args = function.args
    holders = set()
    if _sensitive(function.name):
        holders = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    flows: list[tuple[list[ast.expr], ast.expr]] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            flows.append((node.targets, node.value))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and node.value:
            flows.append(([node.target], node.value))
    changed = True
    while changed:
        changed = False
        for targets, value in flows:
            if _secret_names(value, holders):
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name) and name.id not in holders:
                            holders.add(name.id)
                            changed = True
    return holders


def _is_sql(node: ast.AST) -> bool:
    """``table.c.column == x`` builds SQL for the database; Python compares nothing."""
    return any(
        isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and n.value.attr == "c"
        for n in ast.walk(node)
    )


def plain_secret_comparisons(source: str) -> list[str]:
    """Every ``==``, ``!=``, ``in``, ``startswith`` or ``endswith`` on a secret, or a value
    derived from one (see :func:`_holders`), where no side is a literal: those must be
    ``hmac.compare_digest``."""
    tree = ast.parse(source)
    scopes: list[tuple[ast.AST, set[str]]] = [(tree, set())]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scopes.append((node, _holders(node)))
    found: dict[int, str] = {}
    for scope, holders in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Compare) and any(isinstance(o, COMPARING) for o in node.ops):
                operands = [node.left, *node.comparators]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("startswith", "endswith")
            ):
                operands = [node.func.value, *node.args]
            else:
                continue
            if any(isinstance(o, ast.Constant) or _is_sql(o) for o in operands):
                continue
            text = ast.unparse(node)
            if text not in NOT_SECRET and any(_secret_names(o, holders) for o in operands):
                found[node.lineno] = f"{node.lineno}: {text}"
    return sorted(found.values())


def _calls_compare_digest(path: Path, function: str) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return "hmac.compare_digest(" in ast.unparse(node)
    raise AssertionError(f"no function {function} in {path}")


def test_secrets_are_compared_in_constant_time() -> None:
    comparing = {
        "bot/web/webhook.py": ["secret_matches"],  # WEBHOOK_SECRET
        "bot/web/auth.py": ["validate_init_data", "_check_bearer"],  # initData hash, API_TOKEN
        "bot/web/signing.py": ["verify"],  # signed QR links
        "payments/delivery/webhooks/signing.py": ["verify"],  # merchant webhook signatures
    }
    for file, functions in comparing.items():
        for function in functions:
            assert _calls_compare_digest(ROOT / file, function), (file, function)
    route = ast.unparse(ast.parse((ROOT / "bot/web/webhook.py").read_text()))
    assert "secret_matches(request.headers.get(SECRET_HEADER)" in route.replace("\n", "")
    found = {
        str(path.relative_to(ROOT)): plain_secret_comparisons(path.read_text())
        for root in ("bot", "payments")
        for path in sorted((ROOT / root).rglob("*.py"))
    }
    assert {file: hits for file, hits in found.items() if hits} == {}


def test_the_constant_time_check_catches_a_plant() -> None:
    planted = [
        "ok = given == settings.webhook_secret.get_secret_value()",
        "if credentials != api_token: raise AuthError()",
        "if fields['hash'] == computed: pass",
        "valid = expected in {signature}",
        "return header.strip() == sign(secret, body)",
        "ok = expected_digest.startswith(given)",
        "ok = bearer.credentials == expected",
        "def verify(key, given):\n    expected = signature(key)\n    return expected == given",
        "def secret_matches(given, expected):\n    return given.lower() == expected",
        "def check(fields):\n    given = fields.get('hash')\n    return given != computed",
    ]
    for line in planted:
        assert plain_secret_comparisons(line), line
    fine = [
        "ok = hmac.compare_digest(given.encode(), secret.encode())",
        "if len(signature) != 64: pass",
        "if secret is None or token == '': pass",
        "query = select(leases).where(leases.c.token == token)",
        "if header.startswith('sha256='): pass",
        "same = invoice.id == other.id",
        "def send(secret):\n    r = post(headers=sign(secret))\n    return r.status_code != code",
    ]
    for line in fine:
        assert plain_secret_comparisons(line) == [], line


# --- 3. another customer's invoice ----------------------------------------------------------------


async def test_a_customer_cannot_see_cancel_claim_or_confirm_anothers_invoice(
    tmp_path: Path,
) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False, env={"API_TOKEN": API_TOKEN}) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        alice, bob, carol = world.customer(101), world.customer(102), world.customer(103)
        bob_photo = await bob.buy()
        theirs = invoice_id_of(bob_photo)
        mine = await alice.buy("Pro", "BTC", None)
        await alice.buy("Enterprise", "BTC", None)
        before = await money_rows(world)

        # the chat: forged buttons carrying Bob's invoice id, under Alice's own photo
        forged: list[tuple[cb.Action, str]] = [
            (cb.CheckInvoice(theirs), NOT_YOURS),
            (cb.ClaimInvoice(theirs), NOT_YOURS),
            (cb.CancelInvoice(theirs), NOT_YOURS),
            (cb.AdminConfirm(theirs, True), ADMIN_ONLY),
            (cb.AdminReject(theirs), ADMIN_ONLY),
        ]
        for action, refusal in forged:
            assert await answer_to(world, alice, mine, cb.encode(action)) == refusal, action
        # commands: /cancel offers only her own invoices, whatever follows it
        pick = await alice.send(f"/cancel {theirs}", expect="Which invoice")
        offered = " ".join(f"{text} {data}" for text, data in flat_buttons(pick.reply_markup))
        assert theirs not in offered and invoice_id_of(mine) in offered
        assert "no open invoice" in (await carol.send(f"/cancel {theirs}")).plain
        assert (await alice.send(f"/confirm {theirs}")).plain == ADMIN_ONLY
        for command in ("/history", "/status"):
            assert theirs not in (await alice.send(command)).plain
        # the forged claim button left no wait behind: a tx hash now only gets the help
        assert "/help" in (await alice.send("ab" * 32)).plain
        assert await money_rows(world) == before
        assert "CANCELLED" not in bob.current(bob_photo).plain

        # the JSON API, as Alice (Mini App and Bearer): Bob's payment is an unknown one
        bearer = {"Authorization": f"Bearer {API_TOKEN}", "X-Telegram-User-Id": "101"}
        for auth in (tma(world.tg.token, 101), bearer):
            status = await http.get(f"/api/payments/crypto/status/{theirs}", headers=auth)
            unknown = await http.get("/api/payments/crypto/status/ZZZZ2222", headers=auth)
            assert status.status_code == unknown.status_code == 404
            assert (
                status.json()
                == unknown.json()
                == {
                    "error": "payment_not_found",
                    "detail": "no such payment",
                }
            )
            history = (await http.get("/api/payments/history?limit=100", headers=auth)).json()
            assert theirs not in str(history) and len(history["payments"]) == 2
        # her own QR link's signature does not open Bob's QR image
        own = await http.get(f"/api/payments/crypto/status/{invoice_id_of(mine)}", headers=bearer)
        link = own.json()["qr_png_url"].removeprefix(served.base_url)
        assert (await http.get(link)).status_code == 200
        moved = await http.get(link.replace(invoice_id_of(mine), theirs))
        assert (moved.status_code, moved.json()["error"]) == (403, "bad_signature")
        assert await money_rows(world) == before


# --- 7. API tokens --------------------------------------------------------------------------------


async def test_wrong_api_tokens_are_401(tmp_path: Path) -> None:
    wrong = ["wrong", API_TOKEN[:-1], API_TOKEN + "x", API_TOKEN.upper(), API_TOKEN[:1], "x" * 500]
    me = "/api/users/me"
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False, env={"API_TOKEN": API_TOKEN}) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        for token in wrong:
            headers = {"Authorization": f"Bearer {token}", "X-Telegram-User-Id": "101"}
            refused = await http.get(me, headers=headers)
            assert refused.status_code == 401, token
            assert refused.json() == {
                "error": "auth_bad_token",
                "detail": "the Bearer token is not valid",
            }
            assert len(token) < 4 or token not in refused.text + str(refused.headers)
        await world.started(101)
        headers = {"Authorization": f"Bearer {API_TOKEN}", "X-Telegram-User-Id": "101"}
        assert (await http.get(me, headers=headers)).json()["id"] == 101
        assert await world.invoices_of(101) == []


# --- 8. rate limits on invoice creation -----------------------------------------------------------


async def test_invoice_creation_is_rate_limited_per_customer(tmp_path: Path) -> None:
    per_hour = PaymentSettings().invoices_per_hour
    choices = [("USDT", n) for n in ("TRC20", "ERC20", "BEP20", "SOL")] + [("USDC", "ERC20")]
    choices += [("USDC", "SOL"), ("BTC", "BTC"), ("ETH", "ERC20"), ("SOL", "SOL")]
    choices += [("BNB", "BEP20")]
    assert len(choices) >= per_hour
    env = {"API_TOKEN": API_TOKEN, "MAX_OPEN_INVOICES": str(per_hour + 5)}
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False, env=env) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):

        async def create(user_id: int, plan: str, coin: str, network: str) -> httpx.Response:
            body = {"plan": plan, "crypto_currency": coin, "network": network}
            auth = {"Authorization": f"Bearer {API_TOKEN}", "X-Telegram-User-Id": str(user_id)}
            return await http.post(INITIALIZE, json=body, headers=auth)

        await world.started(101, 102)
        for coin, network in choices[:per_hour]:
            assert (await create(101, "pro", coin, network)).status_code == 200
        limited = await create(101, "enterprise", "USDT", "TRC20")
        # honestly: when the first of this hour's invoices is an hour old
        assert limited.status_code == 429 and 3500 < int(limited.headers["Retry-After"]) <= 3600
        assert limited.json() == {
            "error": "rate_limited",
            "detail": "You've created many invoices in the last hour. Please try later.",
        }
        # the chat says the same, and makes no invoice either
        alice = world.customer(101)
        await alice.send("/start")
        await alice.press("Enterprise", expect="Which coin")
        await alice.press("BTC", expect="created many invoices in the last hour")
        assert len(await world.invoices_of(101)) == per_hour
        # another customer is not affected, in the chat or through the API
        assert (await create(102, "enterprise", "USDT", "TRC20")).status_code == 200
        assert "Send exactly" in (await world.customer(102).buy("Enterprise", "BTC", None)).plain
        assert len(await world.invoices_of(102)) == 2


# --- B: through the chat and the bot's process -------------------------------------------------


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
