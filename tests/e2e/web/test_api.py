"""The JSON API end to end: the real bot and its HTTP server against the fake OKX and the fake
Bot API, called over loopback HTTP as a Mini App (``tma``) or the merchant's backend would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import zxingcpp
from PIL import Image

from bot.web import signing
from payments.storage.schema import reservations
from tests.botkit import BotWorld, address_of, amount_of, invoice_id_of
from tests.e2e.web.test_auth import tma

INITIALIZE = "/api/payments/crypto/initialize"
USDT_TRC20 = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TX = "0x" + "ab" * 32


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(BytesIO(png)))
    assert len(results) == 1
    return str(results[0].text)


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b" " * size


def relative(url: str, base: str) -> str:
    """A QR link as a path: on ``base`` (WEBHOOK_URL's host), or relative already (no public
    URL configured: never the request's Host)."""
    if url.startswith("/api/"):
        return url
    assert url.startswith(base + "/api/"), url
    return url.removeprefix(base)


async def reserved_amount(world: BotWorld, invoice_id: str) -> Decimal:
    rows = [r for r in await world.rows(reservations) if r["invoice_id"] == invoice_id]
    assert len(rows) == 1
    return Decimal(rows[0]["amount_units"]).scaleb(-8)


async def test_initialize_pay_and_see_the_subscription(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        alice = world.customer(101)
        auth = tma(world.tg.token, 101)
        r = await http.post(INITIALIZE, json=USDT_TRC20, headers=auth)
        assert r.status_code == 200, r.text
        created = r.json()
        payment_id = created["payment_id"]
        amount, address = created["crypto_amount"], created["deposit_address"]
        assert isinstance(amount, str) and isinstance(created["amount_usd"], str)
        assert Decimal(created["amount_usd"]) == Decimal(29)
        assert Decimal(amount) == await reserved_amount(world, payment_id)
        assert Decimal(amount) >= 29 and len(amount.partition(".")[2]) == 4  # USDT's step
        served_addresses = {r["addr"] for r in world.okx.address_rows("USDT")}
        assert address in served_addresses and created["deposit_tag"] is None
        assert (created["network"], created["network_label"]) == ("TRC20", "Tron (TRC20)")
        assert (created["status"], created["reused"], created["plan"]) == ("pending", False, "pro")
        assert 0 < created["expires_in_seconds"] <= 120 * 60
        assert created["instructions"].startswith(
            f"Send exactly {amount} USDT on Tron (TRC20) to {address} before "
        )
        assert "<" not in created["instructions"] and "&amp;" not in created["instructions"]

        qr = await http.get(relative(created["qr_png_url"], served.base_url))
        assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
        assert qr.content.startswith(PNG_SIGNATURE) and decode_qr(qr.content) == address
        assert qr.headers["cache-control"].startswith("private, max-age=")

        status_path = f"/api/payments/crypto/status/{payment_id}"
        pending = (await http.get(status_path, headers=auth)).json()
        assert (pending["status"], pending["confirmed"], pending["tx_hash"]) == (
            "pending",
            False,
            None,
        )
        assert pending["crypto_amount"] == amount and pending["qr_png_url"]
        assert pending["paid_at"] is None and pending["exceptions"] == []

        world.okx.add_deposit("USDT", "USDT-TRC20", amount, to=address, tx_id=TX)
        await alice.wait_text("Payment received", timeout=15)
        paid = (await http.get(status_path, headers=auth)).json()
        assert (paid["status"], paid["confirmed"], paid["tx_hash"]) == ("paid", True, TX)
        assert paid["tx_hashes"] == [TX] and paid["paid_at"].endswith("Z")
        assert paid["qr_png_url"] is None and paid["instructions"] is None
        assert paid["crypto_amount"] == amount and paid["amount_usd"] == "29"

        history = (await http.get("/api/payments/history", headers=auth)).json()
        assert history == {"payments": [paid]}

        me = (await http.get("/api/users/me", headers=auth)).json()
        assert (me["id"], me["language"]) == (101, "en") and me["created_at"].endswith("Z")
        [subscription] = me["subscriptions"]
        assert subscription["plan"] == "pro" and subscription["plan_name"] == "Pro"
        assert subscription["status"] == "active" and subscription["active"] is True
        assert subscription["ends_at"] > subscription["started_at"]


async def test_the_api_hands_out_the_telegram_invoice_and_its_exact_photo(
    tmp_path: Path,
) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=True) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        alice = world.customer(101)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        r = await http.post(INITIALIZE, json=USDT_TRC20, headers=tma(world.tg.token, 101))
        assert r.status_code == 200, r.text
        same = r.json()
        assert same["reused"] is True and same["payment_id"] == invoice_id_of(photo)
        assert same["crypto_amount"] == amount_of(photo)
        assert same["deposit_address"] == address_of(photo)
        assert same["qr_png_url"].startswith(served.base_url + "/api/")  # WEBHOOK_URL's base
        qr = await http.get(relative(same["qr_png_url"], served.base_url))
        assert qr.content == photo.photo  # byte for byte what the Telegram photo shows

        # a coin offered on one network needs no network
        r = await http.post(
            INITIALIZE,
            json={"plan": "pro", "crypto_currency": "btc"},
            headers=(tma(world.tg.token, 101)),
        )
        assert r.status_code == 200, r.text
        btc = r.json()
        assert (btc["crypto_currency"], btc["network"]) == ("BTC", "BTC")
        assert Decimal(btc["crypto_amount"]) == await reserved_amount(world, btc["payment_id"])


async def test_a_customer_never_sees_another_customers_payment(tmp_path: Path) -> None:
    api_token = "merchant-token-0123456789abcdef"
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False, env={"API_TOKEN": api_token}) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        await world.started(101, 102)
        bearer = {"Authorization": f"Bearer {api_token}"}
        alice = bearer | {"X-Telegram-User-Id": "101"}
        r = await http.post(INITIALIZE, json=USDT_TRC20, headers=alice)
        assert r.status_code == 200, r.text
        payment_id = r.json()["payment_id"]
        mine = await http.get(f"/api/payments/crypto/status/{payment_id}", headers=alice)
        assert mine.status_code == 200 and mine.json()["payment_id"] == payment_id

        for bob in (tma(world.tg.token, 102), bearer | {"X-Telegram-User-Id": "102"}):
            theirs = await http.get(f"/api/payments/crypto/status/{payment_id}", headers=bob)
            unknown = await http.get("/api/payments/crypto/status/ZZZZ2222", headers=bob)
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json() == unknown.json()
            assert theirs.json()["error"] == "payment_not_found"
            history = await http.get("/api/payments/history", headers=bob)
            assert history.json() == {"payments": []}
            me = (await http.get("/api/users/me", headers=bob)).json()
            assert me["id"] == 102 and me["subscriptions"] == []

        history = (await http.get("/api/payments/history?limit=1", headers=alice)).json()
        assert [p["payment_id"] for p in history["payments"]] == [payment_id]


async def test_signed_qr_links_refuse_tampering_and_expire(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        r = await http.post(INITIALIZE, json=USDT_TRC20, headers=tma(world.tg.token, 101))
        link = httpx.URL(r.json()["qr_png_url"])
        payment_id = r.json()["payment_id"]
        expires, sig = int(link.params["expires"]), link.params["signature"]
        path = link.path
        assert (await http.get(path, params=link.params)).status_code == 200

        async def refused(params: dict[str, Any], status: int, url: str = path) -> None:
            answer = await http.get(url, params=params)
            assert answer.status_code == status, answer.text
            assert answer.json()["error"] and answer.json()["detail"]

        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        await refused({"expires": expires, "signature": flipped}, 403)
        await refused({"expires": expires + 60, "signature": sig}, 403)
        other_path = path.replace(payment_id, "ZZZZ2222")
        await refused({"expires": expires, "signature": sig}, 403, other_path)
        await refused({"expires": expires}, 422)
        await refused({"expires": "soon", "signature": sig}, 422)
        # correctly signed, but no such invoice
        key = signing.link_key(world.tg.token)
        await refused(
            {"expires": expires, "signature": signing.signature(key, "ZZZZ2222", expires)},
            404,
            other_path,
        )
        # eleven minutes later the link has expired (the web app's clock, not a sleep)
        context = served.web.state.web if served.web else None
        assert context is not None
        wall = context.now
        context.now = lambda: wall() + signing.LIFETIME_S + 60
        await refused(dict(link.params), 403)
        context.now = wall
        assert (await http.get(path, params=link.params)).status_code == 200


async def test_bad_input_is_a_422_in_the_error_shape_never_a_500(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        auth = tma(world.tg.token, 101)

        async def post(
            body: Any = None, content: bytes | AsyncIterator[bytes] | None = None
        ) -> httpx.Response:
            headers = auth | {"Content-Type": "application/json"}
            if content is None:
                return await http.post(INITIALIZE, json=body, headers=headers)
            return await http.post(INITIALIZE, content=content, headers=headers)

        async def get(path: str) -> httpx.Response:
            return await http.get(path, headers=auth)

        cases: list[tuple[httpx.Response, int, str]] = [
            (await post(USDT_TRC20 | {"plan": "gold"}), 422, "unknown_plan"),
            (await post(USDT_TRC20 | {"crypto_currency": "DOGE"}), 422, "unknown_currency"),
            (await post(USDT_TRC20 | {"network": "TON"}), 422, "unknown_network"),
            (await post({"plan": "pro", "crypto_currency": "USDT"}), 422, "network_required"),
            (await post({"crypto_currency": "USDT", "network": "TRC20"}), 422, "invalid_request"),
            (await post(USDT_TRC20 | {"plan": 5}), 422, "invalid_request"),
            (await post(USDT_TRC20 | {"network": ["TRC20"]}), 422, "invalid_request"),
            (await post(USDT_TRC20 | {"coupon": "x"}), 422, "invalid_request"),
            (await post(USDT_TRC20 | {"plan": "p" * 65}), 422, "invalid_request"),
            (await post([USDT_TRC20]), 422, "invalid_request"),
            (await post(content=b'{"plan": "pro",'), 422, "invalid_json"),
            (await post(content=b"\xff\xfe garbage"), 422, "invalid_json"),
            (await post(content=b""), 422, "invalid_request"),
            (await post(content=b" " * 70_000), 413, "body_too_large"),
            (await post(content=chunks(20, 4096)), 413, "body_too_large"),  # no Content-Length
            (await get("/api/payments/history?limit=0"), 422, "invalid_request"),
            (await get("/api/payments/history?limit=101"), 422, "invalid_request"),
            (await get("/api/payments/history?limit=x"), 422, "invalid_request"),
            (await get("/api/payments/crypto/status/" + "A" * 40), 422, "invalid_request"),
            (await get("/api/nothing-here"), 404, "not_found"),
            (await http.delete("/api/users/me", headers=auth), 405, "method_not_allowed"),
        ]
        for response, status, error in cases:
            assert (response.status_code, response.json()["error"]) == (status, error), (
                response.request.url,
                response.text,
            )
            assert set(response.json()) == {"error", "detail"} and response.json()["detail"]
            assert "Traceback" not in response.text
        assert "plans: pro, enterprise" in cases[0][0].json()["detail"]
        assert "TRC20, ERC20, BEP20, SOL" in cases[3][0].json()["detail"]
        assert await world.invoices_of(101) == []


async def test_refusals_to_create_map_to_status_codes(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world:
        world.okx.set_chain("USDT-BSC", can_dep=False)
        world.okx.set_chain("USDT-ERC20", min_dep="50")  # above the $29 plan
        async with (
            world.serving(webhook=False, env={"MAX_OPEN_INVOICES": "2"}) as served,
            httpx.AsyncClient(base_url=served.base_url) as http,
        ):
            auth = tma(world.tg.token, 101)

            async def create(coin: str, network: str, plan: str = "pro") -> httpx.Response:
                body = {"plan": plan, "crypto_currency": coin, "network": network}
                return await http.post(INITIALIZE, json=body, headers=auth)

            paused = await create("USDT", "BEP20")
            assert (paused.status_code, paused.json()["error"]) == (409, "deposits_paused")
            assert "paused" in paused.json()["detail"]
            below = await create("USDT", "ERC20")
            assert (below.status_code, below.json()["error"]) == (422, "below_minimum_deposit")

            world.okx.remove_price("SOL")
            world.clock.advance(2 * 60_000)  # the cached tickers are too old now
            prices = await create("SOL", "SOL")
            assert (prices.status_code, prices.json()["error"]) == (503, "prices_unavailable")
            assert "Prices are unavailable" in prices.json()["detail"]

            assert (await create("USDT", "TRC20")).status_code == 200
            assert (await create("BTC", "BTC")).status_code == 200
            too_many = await create("ETH", "ERC20")
            assert too_many.status_code == 429
            assert too_many.json()["error"] == "too_many_open_invoices"
            assert "You have 2 open invoices" in too_many.json()["detail"]


async def test_the_openapi_document_lists_the_routes_and_security(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        doc = (await http.get("/openapi.json")).json()
        paths = doc["paths"]
        assert {
            "/api/payments/crypto/initialize",
            "/api/payments/crypto/status/{payment_id}",
            "/api/payments/history",
            "/api/users/me",
            "/api/payments/crypto/qr/{payment_id}.png",
        } <= set(paths)
        schemes = doc["components"]["securitySchemes"]
        assert {"TelegramMiniApp", "ApiToken"} <= set(schemes)
        me = paths["/api/users/me"]["get"]
        assert {"TelegramMiniApp": []} in me["security"] and {"ApiToken": []} in me["security"]
        qr = paths["/api/payments/crypto/qr/{payment_id}.png"]["get"]
        assert "security" not in qr and "401" not in qr["responses"]
        init = paths["/api/payments/crypto/initialize"]["post"]
        for status in ("200", "401", "409", "422", "429", "503"):
            assert status in init["responses"], status
        error_ref = init["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        assert error_ref.endswith("/ErrorBody")
        created = doc["components"]["schemas"]["PaymentCreated"]["properties"]
        assert created["crypto_amount"]["type"] == "string"
        assert "403" in init["responses"]  # a blocked customer
        rails = {"crypto": "PaymentCreated", "stars": "StarsPaymentCreated"}
        answer = init["responses"]["200"]["content"]["application/json"]["schema"]
        mapping = answer["discriminator"]["mapping"]
        assert {k: v.rsplit("/", 1)[1] for k, v in mapping.items()} == rails
        stars = doc["components"]["schemas"]["StarsPaymentCreated"]["properties"]
        assert stars["invoice_link"]["type"] == "string" and stars["stars"]["type"] == "integer"
        listed = doc["components"]["schemas"]["PaymentHistory"]["properties"]["payments"]
        assert set(listed["items"]["discriminator"]["mapping"]) == {"crypto", "stars"}
        assert world.tg.token not in str(doc)
