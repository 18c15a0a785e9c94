"""What the Mini App asks of the JSON API besides creating and following a payment: the shop
window (``GET /api/catalog``), cancelling an invoice and claiming a payment by its tx hash; and
the bot opening the Mini App (the menu button and /start's "Open checkout"). The real bot and
its HTTP server against the fake OKX and the fake Bot API, over loopback HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from payments.catalog import default_plans_path
from payments.storage.schema import claims
from tests.botkit import ADMIN, FAST, BotWorld, address_of, amount_of, invoice_id_of
from tests.conftest import backends
from tests.e2e.test_stars import CLUB, PRO_STARS, QUARTER_STARS, stars_plans
from tests.e2e.test_stars_only import stars_only_world
from tests.e2e.web.test_auth import tma

CATALOG = "/api/catalog"
INITIALIZE = "/api/payments/crypto/initialize"
USDT_TRC20 = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20"}
TX = "ab" * 32
TON = """
[[coins]]
symbol = "TON"
name = "Toncoin"
step = "0.0001"
networks = [{ code = "TON", chain = "TON-TON", label = "TON" }]
"""


def cancel_path(payment_id: str) -> str:
    return f"/api/payments/{payment_id}/cancel"


def claim_path(payment_id: str) -> str:
    return f"/api/payments/{payment_id}/claim"


async def eventually(
    ask: Callable[[], Awaitable[Any]],
    done: Callable[[Any], bool],
    timeout: float = 15,  # noqa: ASYNC109
) -> Any:
    """``ask()`` again until ``done`` holds for its answer (the last answer either way)."""
    deadline = time.monotonic() + timeout
    answer = await ask()
    while not done(answer) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        answer = await ask()
    return answer


def networks_of(catalog: dict[str, Any]) -> dict[str, list[str]]:
    return {c["symbol"]: [n["code"] for n in c["networks"]] for c in catalog["coins"]}


# --- GET /api/catalog --------------------------------------------------------------------------


async def test_the_catalog_lists_plans_with_stars_and_the_coins_taking_deposits_now(
    tmp_path: Path,
) -> None:
    plans = stars_plans(tmp_path)  # Pro also for Stars (a paid chat), Quarter for Stars only
    plans.write_text(plans.read_text(encoding="utf-8") + TON, encoding="utf-8")
    fast_directory = dataclasses.replace(FAST, directory=0.3)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with (
            world.serving(webhook=False, timings=fast_directory) as served,
            httpx.AsyncClient(base_url=served.base_url) as http,
        ):
            await _catalog_checks(world, http)


async def _catalog_checks(world: BotWorld, http: httpx.AsyncClient) -> None:
    auth = tma(world.tg.token, 101)

    async def catalog() -> dict[str, Any]:
        r = await http.get(CATALOG, headers=auth)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    # the chat's rights check (just after start-up) learns the paid chat's title
    shop = await eventually(catalog, lambda c: c["plans"][0]["chat_titles"] == ["Pro Club"])
    assert (shop["crypto"], shop["stars"]) == (True, True)
    pro, enterprise, quarter = shop["plans"]
    assert pro == {
        "id": "pro",
        "name": "Pro",
        "days": 30,
        "price_usd": "29",
        "description": "Everything in the service for 30 days",
        "chats": 1,
        "chat_titles": ["Pro Club"],
        "stars": PRO_STARS,
        "renews_by_itself": True,
    }
    assert (enterprise["id"], enterprise["stars"], enterprise["renews_by_itself"]) == (
        "enterprise",
        None,
        False,
    )
    assert (enterprise["chats"], enterprise["chat_titles"]) == (0, [])
    assert (quarter["id"], quarter["price_usd"], quarter["days"]) == ("quarter", "79", 90)
    assert (quarter["stars"], quarter["renews_by_itself"]) == (QUARTER_STARS, False)

    # the coins as the chat's buttons show them, in the plans file's order
    assert networks_of(shop) == {
        "BTC": ["BTC"],
        "ETH": ["ERC20"],
        "USDT": ["TRC20", "ERC20", "BEP20", "SOL"],
        "USDC": ["ERC20", "SOL"],
        "SOL": ["SOL"],
        "BNB": ["BEP20"],
        "TON": ["TON"],
    }
    usdt = next(c for c in shop["coins"] if c["symbol"] == "USDT")
    assert usdt["name"] == "Tether USD"
    assert usdt["networks"][0] == {
        "code": "TRC20",
        "label": "Tron (TRC20)",
        "needs_memo": False,
    }
    ton = next(c for c in shop["coins"] if c["symbol"] == "TON")
    assert ton["networks"] == [{"code": "TON", "label": "TON", "needs_memo": True}]

    # OKX pauses deposits on a chain: at the next refresh it leaves the catalog, and the
    # coin too once none of its networks is left
    world.okx.set_chain("USDT-TRC20", can_dep=False)
    world.okx.set_chain("BTC-Bitcoin", can_dep=False)
    later = await eventually(catalog, lambda c: "BTC" not in networks_of(c))
    assert networks_of(later)["USDT"] == ["ERC20", "BEP20", "SOL"]
    assert "BTC" not in networks_of(later) and "ETH" in networks_of(later)
    customer = world.customer(101)
    await customer.send("/start", expect="Welcome")
    under_plan = await customer.press("Pro", expect="Which coin")
    coins = [text for text, _ in world.tg.buttons(under_plan)]
    assert "BTC" not in coins and "USDT" in coins  # the chat's buttons agree

    anonymous = await http.get(CATALOG)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "auth_missing"


async def test_a_stars_only_shop_lists_its_plans_and_no_coin(tmp_path: Path) -> None:
    async with (
        stars_only_world(tmp_path) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        r = await http.get(CATALOG, headers=tma(world.tg.token, 101))
        assert r.status_code == 200, r.text
        shop = r.json()
        assert (shop["crypto"], shop["stars"], shop["coins"]) == (False, True, [])
        assert [(p["id"], p["stars"]) for p in shop["plans"]] == [
            ("pro", PRO_STARS),
            ("quarter", 4000),
        ]


async def test_a_shop_without_stars_plans_says_so(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path, env={"PLANS_FILE": str(default_plans_path())}) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        shop = (await http.get(CATALOG, headers=tma(world.tg.token, 101))).json()
        assert (shop["crypto"], shop["stars"]) == (True, False)
        assert all(p["stars"] is None and not p["renews_by_itself"] for p in shop["plans"])
        assert "USDT" in networks_of(shop)


# --- POST /api/payments/{id}/cancel --------------------------------------------------------


@pytest.mark.parametrize("backend", backends())
async def test_cancel_own_open_invoice_not_anothers_nor_a_paid_one(
    tmp_path: Path, backend: str
) -> None:
    async with (
        BotWorld.open(
            tmp_path, env={"PLANS_FILE": str(stars_plans(tmp_path))}, backend=backend
        ) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        alice, bob = world.customer(101), world.customer(102)
        as_alice, as_bob = tma(world.tg.token, 101), tma(world.tg.token, 102)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        mine = invoice_id_of(photo)

        # Bob cannot cancel it: the same 404 as an unknown id, and nothing changes
        theirs = await http.post(cancel_path(mine), headers=as_bob)
        unknown = await http.post(cancel_path("ZZZZ2222"), headers=as_bob)
        assert theirs.status_code == unknown.status_code == 404
        assert (
            theirs.json()
            == unknown.json()
            == {
                "error": "payment_not_found",
                "detail": "no such payment",
            }
        )
        assert (await world.invoice_row(mine))["status"] == "pending"
        assert "CANCELLED" not in alice.current(photo).plain

        r = await http.post(cancel_path(mine), headers=as_alice)
        assert r.status_code == 200, r.text
        cancelled = r.json()
        assert (cancelled["payment_id"], cancelled["status"]) == (mine, "cancelled")
        assert cancelled["qr_png_url"] is None and cancelled["instructions"] is None
        assert (await world.invoice_row(mine))["status"] == "cancelled"
        # the photo in the chat says so, as after the Cancel button
        await world.tg.wait_for(lambda: "CANCELLED" in alice.current(photo).plain)
        status = await http.get(f"/api/payments/crypto/status/{mine}", headers=as_alice)
        assert status.json()["status"] == "cancelled"

        again = await http.post(cancel_path(mine), headers=as_alice)
        assert (again.status_code, again.json()["error"]) == (409, "payment_closed")
        assert "can't be cancelled" in again.json()["detail"]

        # a paid invoice: 409, and it stays paid
        r = await http.post(INITIALIZE, json=USDT_TRC20, headers=as_bob)
        paid_id, amount = r.json()["payment_id"], r.json()["crypto_amount"]
        to = r.json()["deposit_address"]
        world.okx.add_deposit("USDT", "USDT-TRC20", amount, to=to, tx_id=TX)
        await bob.wait_text("Payment received", timeout=15)
        refused = await http.post(cancel_path(paid_id), headers=as_bob)
        assert (refused.status_code, refused.json()["error"]) == (409, "payment_closed")
        assert refused.json()["detail"] == f"Invoice {paid_id} can't be cancelled: it is paid."
        assert (await world.invoice_row(paid_id))["status"] == "paid"

        # a Telegram Stars order is not an invoice to cancel
        r = await http.post(
            INITIALIZE, json={"plan": "pro", "crypto_currency": "XTR"}, headers=as_alice
        )
        order = r.json()["payment_id"]
        stars = await http.post(cancel_path(order), headers=as_alice)
        assert (stars.status_code, stars.json()["error"]) == (409, "stars_not_cancellable")
        assert (await http.post(cancel_path(order), headers=as_bob)).status_code == 404


# --- POST /api/payments/{id}/claim ---------------------------------------------------------


@pytest.mark.parametrize("backend", backends())
async def test_claiming_an_ambiguous_deposit_by_its_tx_hash_attaches_it(
    tmp_path: Path, backend: str
) -> None:
    async with (
        BotWorld.open(tmp_path, backend=backend) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        alice, admin = world.customer(101), world.customer(ADMIN)
        as_alice, as_bob = tma(world.tg.token, 101), tma(world.tg.token, 102)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        mine = invoice_id_of(photo)
        r = await http.post(INITIALIZE, json=USDT_TRC20, headers=as_bob)
        bobs = r.json()["payment_id"]
        assert r.json()["deposit_address"] == address_of(photo)  # the chain has one address
        # short by about 0.7 %: within tolerance of both invoices, so it settles neither
        world.okx.add_deposit("USDT", "USDT-TRC20", "28.8", to=address_of(photo), tx_id=TX)
        await admin.wait_text("Unmatched deposit", timeout=15)
        assert (await http.post(cancel_path(bobs), headers=as_bob)).status_code == 200

        # a reference that cannot be a tx hash, and one that reached nobody: nothing attached
        bad = await http.post(claim_path(mine), json={"reference": "my money!!"}, headers=as_alice)
        assert (bad.status_code, bad.json()["error"]) == (422, "bad_reference")
        assert "doesn't look like" in bad.json()["detail"]
        missing = await http.post(claim_path(mine), json={"reference": "cd" * 32}, headers=as_alice)
        assert missing.status_code == 200, missing.text
        assert missing.json() == {
            "payment_id": mine,
            "outcome": "not_found",
            "reason": None,
            "status": "pending",
            "detail": missing.json()["detail"],
        }
        assert "has reached the shop's account yet" in missing.json()["detail"]

        # Bob cannot claim on Alice's invoice: 404 as an unknown one, and no claim is recorded
        before = len(await world.rows(claims))
        theirs = await http.post(claim_path(mine), json={"reference": TX}, headers=as_bob)
        assert (theirs.status_code, theirs.json()["error"]) == (404, "payment_not_found")
        assert len(await world.rows(claims)) == before

        found = await http.post(claim_path(mine), json={"reference": TX}, headers=as_alice)
        assert found.status_code == 200, found.text
        answer = found.json()
        assert (answer["outcome"], answer["reason"]) == ("attached", None)
        assert answer["detail"].startswith(f"Found it: that payment is now on invoice {mine}.")
        await alice.wait_text("Payment received", timeout=15)
        status = await http.get(f"/api/payments/crypto/status/{mine}", headers=as_alice)
        assert status.json()["status"] == "paid" and status.json()["tx_hashes"] == [TX]

        # the same hash again, now the invoice is paid: refused with the reason
        again = await http.post(claim_path(mine), json={"reference": TX}, headers=as_alice)
        assert again.status_code == 200, again.text
        assert (again.json()["outcome"], again.json()["reason"]) == ("rejected", "invoice_paid")
        assert again.json()["status"] == "paid"
        assert "the invoice is paid" in again.json()["detail"]


@pytest.mark.parametrize("backend", backends())
async def test_claims_through_the_api_share_the_chats_hourly_limit(
    tmp_path: Path, backend: str
) -> None:
    async with (
        BotWorld.open(tmp_path, backend=backend) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        alice = world.customer(101)
        as_alice = tma(world.tg.token, 101)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        mine = invoice_id_of(photo)
        limit = world.settings.payment_settings().claims_per_hour
        # one in the chat, the rest through the API: the same customer's claims
        await alice.press("I paid: claim it", expect="transaction hash")
        await alice.send("00" * 32, expect="has reached the shop's account yet")
        for n in range(1, limit):
            body = {"reference": f"{n:02d}" * 32}
            r = await http.post(claim_path(mine), json=body, headers=as_alice)
            assert (r.status_code, r.json()["outcome"]) == (200, "not_found"), r.text
        refused = await http.post(claim_path(mine), json={"reference": "ef" * 32}, headers=as_alice)
        assert (refused.status_code, refused.json()["error"]) == (429, "claims_rate_limited")
        assert refused.headers["Retry-After"] == "3600"
        assert "many payment references" in refused.json()["detail"]
        assert len(await world.rows(claims)) == limit  # the refused one is not recorded
        # and the chat refuses the next one too
        await alice.press("I paid: claim it", expect="transaction hash")
        await alice.send("ab" * 32, expect="many payment references")
        assert amount_of(photo)  # the invoice is still there to pay
        assert [r["status"] for r in await world.invoices_of(alice.id)] == ["pending"]


# --- the OpenAPI document --------------------------------------------------------------------


async def test_the_openapi_document_lists_the_mini_app_operations(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        document = (await http.get("/openapi.json")).json()
        paths = document["paths"]
        catalog = paths["/api/catalog"]["get"]
        cancel = paths["/api/payments/{payment_id}/cancel"]["post"]
        claim = paths["/api/payments/{payment_id}/claim"]["post"]
        assert {"200", "401"} <= set(catalog["responses"])
        assert {"200", "401", "404", "409", "422"} <= set(cancel["responses"])
        assert {"200", "401", "404", "422", "429"} <= set(claim["responses"])
        body = claim["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith("/ClaimRequest")
        schemas = document["components"]["schemas"]
        assert {"CatalogAnswer", "CatalogPlan", "CatalogCoin", "CatalogNetwork"} <= set(schemas)
        assert schemas["ClaimAnswer"]["properties"]["outcome"]["enum"] == [
            "attached",
            "not_found",
            "admin",
            "rejected",
        ]
        error = cancel["responses"]["409"]["content"]["application/json"]["schema"]["$ref"]
        assert error.endswith("/ErrorBody")


# --- the bot opens the Mini App ------------------------------------------------------------


def web_app_buttons(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(text, url) of the inline buttons that open a Mini App."""
    rows = (markup or {}).get("inline_keyboard", [])
    return [(b["text"], b["web_app"]["url"]) for row in rows for b in row if "web_app" in b]


async def test_with_a_public_url_the_menu_button_and_start_open_the_mini_app(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.serving(webhook=True) as served:
        app_url = served.base_url + "/app"  # WEBHOOK_URL's /app
        assert world.tg.menu_button() == {
            "type": "web_app",
            "text": "Checkout",
            "web_app": {"url": app_url},
        }
        assert world.tg.menu_button(101) == world.tg.menu_button()  # every private chat
        menu = await world.customer(101).send("/start", expect="Welcome")
        assert web_app_buttons(menu.reply_markup) == [("Open checkout", app_url)]
        # under the plans, which still work as before
        assert world.tg.buttons(menu)[0][0].startswith("Pro")
        ru = await world.customer(102, "ru").send("/start", expect="Добро пожаловать")
        assert web_app_buttons(ru.reply_markup) == [("Открыть оплату", app_url)]

    own = {"WEBAPP_URL": "https://pages.example.com/checkout/"}
    async with BotWorld.open(tmp_path / "own") as world, world.serving(env=own):
        assert world.tg.menu_button()["web_app"] == {"url": "https://pages.example.com/checkout"}
        menu = await world.customer(101).send("/start", expect="Welcome")
        assert web_app_buttons(menu.reply_markup) == [
            ("Open checkout", "https://pages.example.com/checkout")
        ]


async def test_without_a_public_url_the_chat_offers_no_mini_app(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.serving(webhook=False):
        assert world.tg.calls("setChatMenuButton") == []
        assert world.tg.menu_button() == {"type": "commands"}
        menu = await world.customer(101).send("/start", expect="Welcome")
        assert web_app_buttons(menu.reply_markup) == []
        assert [text for text, _ in world.tg.buttons(menu)] == [
            "Pro · $29 / 30 days",
            "Enterprise · $99 / 30 days",
        ]
