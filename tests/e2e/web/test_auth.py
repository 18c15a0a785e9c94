"""Who may call the JSON API: Telegram Mini App initData (``tma``), the merchant's Bearer token,
and the signed QR links. Pure functions first, then what a client sees over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest

from bot.web import signing
from bot.web.auth import (
    MAX_AGE_S,
    AuthError,
    Principal,
    authenticate,
    parse_user_id,
    validate_init_data,
)
from tests.botkit import ADMIN, BotWorld

TOKEN = "123456:AAE-test-bot-token"
NOW = 1_790_000_000.0
API_TOKEN = "merchant-api-token_0123456789abcdef"


def init_data(
    token: str,
    user_id: int = 101,
    *,
    auth_date: float,
    language: str | None = "en",
    fields: dict[str, str] | None = None,
) -> str:
    """initData as Telegram signs it (written out here, independently of bot.web.auth)."""
    user: dict[str, object] = {"id": user_id, "first_name": "Ann & Bob", "username": "ann"}
    if language is not None:
        user["language_code"] = language
    values = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(int(auth_date)),
        **(fields or {}),
    }
    check = "\n".join(f"{key}={values[key]}" for key in sorted(values))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    values["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(values, quote_via=quote)


def tma(token: str, user_id: int = 101, language: str | None = "en") -> dict[str, str]:
    """The Authorization header of a Mini App user, signed just now."""
    data = init_data(token, user_id, auth_date=time.time(), language=language)
    return {"Authorization": f"tma {data}"}


def refusal(text: str, *, now: float = NOW) -> str:
    with pytest.raises(AuthError) as caught:
        validate_init_data(text, TOKEN, now=now)
    return caught.value.error


# --- initData ------------------------------------------------------------------------------


def test_valid_init_data_names_the_user_and_language() -> None:
    data = init_data(TOKEN, 4242, auth_date=NOW - 60, language="ru")
    assert validate_init_data(data, TOKEN, now=NOW) == Principal(4242, "ru", "tma")
    without_language = init_data(TOKEN, 7, auth_date=NOW, language=None)
    assert validate_init_data(without_language, TOKEN, now=NOW) == Principal(7, None, "tma")


def test_init_data_signed_for_another_bot_or_tampered_is_refused() -> None:
    assert refusal(init_data("999:other-bot", auth_date=NOW)) == "auth_bad_signature"
    data = init_data(TOKEN, 101, auth_date=NOW)
    assert refusal(data.replace("%22id%22%3A101", "%22id%22%3A102")) == "auth_bad_signature"
    assert refusal(data.replace("query_id=AAH", "query_id=BAH")) == "auth_bad_signature"
    signed_hash = data.rsplit("hash=", 1)[1]
    assert refusal(data.replace(signed_hash, "0" * 64)) == "auth_bad_signature"
    assert refusal(data.replace(signed_hash, "xyz")) == "auth_bad_signature"
    # the hash's hex digits in upper case are the same hash
    upper = data.replace(signed_hash, signed_hash.upper())
    assert validate_init_data(upper, TOKEN, now=NOW).user_id == 101


def test_init_data_is_valid_for_a_day_and_not_from_the_future() -> None:
    assert validate_init_data(init_data(TOKEN, auth_date=NOW - MAX_AGE_S), TOKEN, now=NOW)
    assert refusal(init_data(TOKEN, auth_date=NOW - MAX_AGE_S - 1)) == "auth_expired"
    assert refusal(init_data(TOKEN, auth_date=NOW - 30 * MAX_AGE_S)) == "auth_expired"
    assert validate_init_data(init_data(TOKEN, auth_date=NOW + 60), TOKEN, now=NOW)
    assert refusal(init_data(TOKEN, auth_date=NOW + 3600)) == "auth_expired"


def test_malformed_init_data_is_refused() -> None:
    data = init_data(TOKEN, auth_date=NOW)
    assert refusal("") == "auth_malformed"
    assert refusal(data.split("&hash=")[0]) == "auth_malformed"  # no hash
    assert refusal(data + "&auth_date=1") == "auth_malformed"  # a repeated field
    assert refusal(data + "&hash=" + "0" * 64) == "auth_malformed"
    assert refusal("not a query string") == "auth_malformed"
    assert refusal(data + "&x=%ff") == "auth_malformed"  # not UTF-8
    assert refusal(data + "&pad=" + "a" * 10_000) == "auth_malformed"
    # signed, but not what a Mini App sends: checked after the signature
    for user in ("[1]", "{", '{"id":"101"}', '{"id":0}', '{"id":true}', '{"name":"x"}'):
        assert refusal(init_data(TOKEN, auth_date=NOW, fields={"user": user})) == "auth_malformed"
    assert refusal(init_data(TOKEN, auth_date=NOW, fields={"auth_date": "soon"})) == (
        "auth_malformed"
    )


def test_every_field_but_hash_is_signed_even_unknown_ones() -> None:
    data = init_data(TOKEN, auth_date=NOW, fields={"signature": "abc", "start_param": "x y"})
    assert validate_init_data(data, TOKEN, now=NOW).user_id == 101
    assert refusal(data.replace("start_param=x%20y", "start_param=x%20z")) == "auth_bad_signature"


# --- the Authorization header ------------------------------------------------------------


def auth_refusal(header: str | None, user: str | None = None, api: str | None = API_TOKEN) -> str:
    with pytest.raises(AuthError) as caught:
        authenticate(header, user, bot_token=TOKEN, api_token=api, now=NOW)
    assert API_TOKEN not in caught.value.detail
    return caught.value.error


def test_bearer_token_and_user_header() -> None:
    ok = authenticate(f"Bearer {API_TOKEN}", "42", bot_token=TOKEN, api_token=API_TOKEN, now=NOW)
    assert ok == Principal(42, None, "bearer")
    assert authenticate(f"bearer {API_TOKEN}", " 7 ", bot_token=TOKEN, api_token=API_TOKEN, now=0)
    assert auth_refusal(f"Bearer {API_TOKEN}", "42", api=None) == "auth_bearer_disabled"
    assert auth_refusal(f"Bearer {API_TOKEN}x", "42") == "auth_bad_token"
    assert auth_refusal("Bearer ", "42") == "auth_malformed"
    assert auth_refusal(f"Bearer {API_TOKEN}") == "auth_user_missing"
    for bad in ("abc", "-5", "0", "1.5", "+5", "٣", str(2**63)):
        assert auth_refusal(f"Bearer {API_TOKEN}", bad) == "auth_user_invalid", bad


def test_missing_or_unknown_schemes() -> None:
    assert auth_refusal(None) == "auth_missing"
    assert auth_refusal("   ") == "auth_missing"
    assert auth_refusal(f"Basic {API_TOKEN}") == "auth_unknown_scheme"
    assert auth_refusal("tma") == "auth_malformed"
    data = init_data(TOKEN, 55, auth_date=NOW)
    via = authenticate(f"TMA {data}", "999", bot_token=TOKEN, api_token=None, now=NOW)
    assert via == Principal(55, "en", "tma")  # X-Telegram-User-Id means nothing to tma
    assert parse_user_id("12345") == 12345


# --- signed QR links -----------------------------------------------------------------------


def test_qr_link_signatures() -> None:
    key = signing.link_key(TOKEN)
    assert key == hmac.new(TOKEN.encode(), b"subsbot-qr-link", hashlib.sha256).digest()
    link = signing.qr_link("https://shop.example/", key, "ABCD2345", now=NOW)
    expires = int(NOW) + signing.LIFETIME_S
    sig = signing.signature(key, "ABCD2345", expires)
    assert link == (
        "https://shop.example/api/payments/crypto/qr/ABCD2345.png"
        f"?expires={expires}&signature={sig}"
    )
    assert signing.verify(key, "ABCD2345", expires, sig, now=NOW)
    assert signing.verify(key, "ABCD2345", expires, sig.upper(), now=expires)
    assert not signing.verify(key, "ABCD2345", expires, sig, now=expires + 1)  # expired
    assert not signing.verify(key, "ABCD2346", expires, sig, now=NOW)  # another invoice
    assert not signing.verify(key, "ABCD2345", expires + 60, sig, now=NOW)  # lengthened
    assert not signing.verify(signing.link_key("9:x"), "ABCD2345", expires, sig, now=NOW)
    assert not signing.verify(key, "ABCD2345", expires, sig[:-1] + "é", now=NOW)
    assert not signing.verify(key, "ABCD2345", expires, "", now=NOW)


# --- over HTTP -----------------------------------------------------------------------------


async def assert_401(http: httpx.AsyncClient, headers: dict[str, str], error: str) -> None:
    for method, path in (("GET", "/api/users/me"), ("GET", "/api/payments/history")):
        r = await http.request(method, path, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"] == error and r.json()["detail"]
        assert "tma" in r.headers["www-authenticate"] and "Bearer" in r.headers["www-authenticate"]
        assert API_TOKEN not in r.text and "AAHdF6" not in r.text and "Ann" not in r.text
    body = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20"}
    r = await http.post("/api/payments/crypto/initialize", json=body, headers=headers)
    assert (r.status_code, r.json()["error"]) == (401, error)
    r = await http.get("/api/payments/crypto/status/ABCD2345", headers=headers)
    assert (r.status_code, r.json()["error"]) == (401, error)


async def test_http_tma_and_bearer_auth(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False, env={"API_TOKEN": API_TOKEN}) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        token = world.tg.token
        r = await http.get("/api/users/me", headers=tma(token, 101))
        assert r.status_code == 200 and r.json()["id"] == 101
        bearer = {"Authorization": f"Bearer {API_TOKEN}"}
        # a Bearer call acts only for someone who has started the bot
        r = await http.get("/api/users/me", headers=bearer | {"X-Telegram-User-Id": "202"})
        assert (r.status_code, r.json()["error"]) == (403, "customer_unknown")
        await world.started(202)
        r = await http.get("/api/users/me", headers=bearer | {"X-Telegram-User-Id": "202"})
        assert r.status_code == 200 and r.json()["id"] == 202

        await assert_401(http, {}, "auth_missing")
        await assert_401(http, {"Authorization": "Basic dXNlcjpwdw=="}, "auth_unknown_scheme")
        await assert_401(http, tma("999:another-bot"), "auth_bad_signature")
        stale = init_data(token, auth_date=time.time() - MAX_AGE_S - 600)
        await assert_401(http, {"Authorization": f"tma {stale}"}, "auth_expired")
        tampered = tma(token, 101)["Authorization"].replace("%22id%22%3A101", "%22id%22%3A102")
        await assert_401(http, {"Authorization": tampered}, "auth_bad_signature")
        await assert_401(http, {"Authorization": "tma query_id=1"}, "auth_malformed")
        wrong = {"Authorization": f"Bearer {API_TOKEN[:-1]}", "X-Telegram-User-Id": "202"}
        await assert_401(http, wrong, "auth_bad_token")
        await assert_401(http, bearer, "auth_user_missing")
        await assert_401(http, bearer | {"X-Telegram-User-Id": "-1"}, "auth_user_invalid")
        await assert_401(http, bearer | {"X-Telegram-User-Id": "abc"}, "auth_user_invalid")


async def test_http_bearer_is_refused_while_api_token_is_unset(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=True) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        headers = {"Authorization": f"Bearer {API_TOKEN}", "X-Telegram-User-Id": "202"}
        await assert_401(http, headers, "auth_bearer_disabled")
        guess = {"Authorization": "Bearer guess", "X-Telegram-User-Id": "202"}
        await assert_401(http, guess, "auth_bearer_disabled")
        r = await http.get("/api/users/me", headers=tma(world.tg.token, 303))
        assert r.status_code == 200
        assert r.json() == {"id": 303, "language": "en", "created_at": None, "subscriptions": []}


async def test_a_bearer_call_acts_only_for_customers_who_started_the_bot(
    tmp_path: Path,
) -> None:
    """The API token must not let one backend make invoices (and hold unique amounts) for any
    number of made-up user ids; a blocked customer gets no invoice through it either."""
    initialize = "/api/payments/crypto/initialize"
    body = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20"}
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    async with BotWorld.open(tmp_path) as world:
        async with (
            world.serving(webhook=False, env={"API_TOKEN": API_TOKEN}) as served,
            httpx.AsyncClient(base_url=served.base_url) as http,
        ):
            made_up = bearer | {"X-Telegram-User-Id": "424242"}
            r = await http.post(initialize, json=body, headers=made_up)
            assert (r.status_code, r.json()["error"]) == (403, "customer_unknown")
            assert await world.invoices_of(424242) == []

            await world.started(424242)
            r = await http.post(initialize, json=body, headers=made_up)
            assert r.status_code == 200, r.text

            done = await world.customer(ADMIN).send("/block 424242", expect="blocked")
            assert "may settle someone else's invoice" in done.plain  # the risk, said
            r = await http.post(initialize, json=body | {"network": "ERC20"}, headers=made_up)
            assert (r.status_code, r.json()["error"]) == (403, "customer_blocked")
        env = {"API_TOKEN": API_TOKEN, "API_ANY_CUSTOMER": "true"}
        async with (
            world.serving(webhook=False, env=env) as served,
            httpx.AsyncClient(base_url=served.base_url) as http,
        ):
            anyone = bearer | {"X-Telegram-User-Id": "515151"}
            r = await http.post(initialize, json=body, headers=anyone)
            assert r.status_code == 200, r.text
