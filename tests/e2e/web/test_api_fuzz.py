"""The JSON API under fire: schemathesis generates requests from the served ``/openapi.json``
(valid and invalid ones), sent over loopback HTTP to the real bot's server, without credentials,
as a Mini App user and as the merchant's backend. Never a 5xx, every answer as documented, and
a caller only ever sees, cancels or claims on their own payments. Then SQL-looking and unicode
input in every path, query and body parameter, by hand.

Already covered elsewhere (not repeated here): malformed JSON, wrong types and bodies over 64 KiB
(tests/e2e/web/test_api.py, 422/413); forged, tampered and expired initData and wrong Bearer tokens
(tests/e2e/web/test_auth.py, 401); a wrong or missing webhook secret
(tests/e2e/web/test_service.py, 403,
and the update never reaches a handler).

The bot and its server run on an event loop in a thread of their own: schemathesis calls
synchronously, and the server must answer meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from payments.storage.schema import invoices, star_invoices
from tests.botkit import ADMIN, BotWorld
from tests.e2e.test_stars import stars_plans
from tests.e2e.web.test_auth import tma

T = TypeVar("T")
API_TOKEN = "fuzz-api-token_0123456789abcdef"
ALICE, BOB = 101, 202  # the caller, and the customer whose data must never reach her
INITIALIZE = "/api/payments/crypto/initialize"
MINI_APP_ACTIONS = ("/api/payments/{payment_id}/cancel", "/api/payments/{payment_id}/claim")
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
FUZZ = settings(
    max_examples=200,
    derandomize=True,  # the same requests on every run
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Shop:
    """The served bot on its own loop and thread; Alice and Bob each have open invoices."""

    world: BotWorld
    base_url: str
    loop: asyncio.AbstractEventLoop
    alice: list[str] = field(default_factory=list)  # Alice's payment ids
    bob: list[str] = field(default_factory=list)  # Bob's payment ids

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def as_alice(self, scheme: str) -> dict[str, str]:
        if scheme == "tma":
            return tma(self.world.tg.token, ALICE)
        return {"Authorization": f"Bearer {API_TOKEN}", "X-Telegram-User-Id": str(ALICE)}

    def invoice_rows(self) -> list[dict[str, Any]]:
        """Crypto invoices and Stars orders."""
        rows = self.call(self.world.rows(invoices)) + self.call(self.world.rows(star_invoices))
        return sorted(rows, key=lambda r: str(r["id"]))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="served-bot", daemon=True)
    thread.start()
    stack = AsyncExitStack()

    async def start() -> tuple[BotWorld, str]:
        workdir = tmp_path_factory.mktemp("fuzz")
        plans = {"PLANS_FILE": str(stars_plans(workdir))}  # Pro is sold for Stars too
        world = await stack.enter_async_context(BotWorld.open(workdir, env=plans))
        env = {"API_TOKEN": API_TOKEN}
        served = await stack.enter_async_context(world.serving(webhook=False, env=env))
        return world, served.base_url

    try:
        world, base_url = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=120)
        shop = Shop(world, base_url, loop)
        _seed(shop)
        yield shop
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _seed(shop: Shop) -> None:
    """Bob: two open invoices, an open Stars order and a subscription; Alice: one open invoice
    and an open Stars order, no subscription."""
    shop.call(shop.world.started(ALICE, BOB))
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    with httpx.Client(base_url=shop.base_url, timeout=30) as http:
        rails = ((BOB, shop.bob, ("BTC", "ETH", "XTR")), (ALICE, shop.alice, ("SOL", "XTR")))
        for who, ids, coins in rails:
            for coin in coins:
                body = {"plan": "pro", "crypto_currency": coin}
                headers = bearer | {"X-Telegram-User-Id": str(who)}
                created = http.post(INITIALIZE, json=body, headers=headers)
                assert created.status_code == 200, created.text
                ids.append(created.json()["payment_id"])
    admin = shop.world.customer(ADMIN)
    shop.call(admin.send(f"/grant {BOB} enterprise 30", expect="Granted"))


def assert_only_alices(shop: Shop, response: httpx.Response | Any, sent: str = "") -> None:
    """No payment, subscription or id of Bob's in an answer to Alice (``sent``: what the
    request itself carried, which an error's detail may echo)."""
    text = response.text
    for payment_id in shop.bob:
        echoed = response.status_code >= 400 and payment_id in sent
        assert payment_id not in text or echoed, (payment_id, text[:300])
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return
    body = response.json()
    found = [p["payment_id"] for p in body.get("payments", [])] if isinstance(body, dict) else []
    if isinstance(body, dict) and "payment_id" in body:
        found.append(body["payment_id"])
    assert set(found) <= set(shop.alice), found
    if isinstance(body, dict) and "subscriptions" in body:
        assert body["id"] == ALICE and body["subscriptions"] == [], body


# --- schemathesis ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["none", "tma", "bearer"])
def test_generated_requests_never_fail_and_never_show_another_customer(
    shop: Shop, scheme: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{shop.base_url}/openapi.json", timeout=30)
    before = shop.invoice_rows()
    headers = {} if scheme == "none" else shop.as_alice(scheme)
    about_one = [
        schema["/api/payments/crypto/status/{payment_id}"]["GET"],
        *(schema[path]["POST"] for path in MINI_APP_ACTIONS),
    ]
    cases = st.one_of(
        schema.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
        *(
            operation.as_strategy(path_parameters={"payment_id": bob})
            for operation in about_one
            for bob in shop.bob
        ),
    )
    statuses: list[int] = []
    operations: set[tuple[str, str]] = set()

    @FUZZ
    @given(case=cases)
    def check(case: schemathesis.Case[Any]) -> None:
        if case.method == "POST" and case.path == INITIALIZE and scheme != "none":
            return  # creating invoices is Alice's right: tests/e2e/web/test_api.py
        response = case.call(base_url=shop.base_url, headers=headers, timeout=30)
        statuses.append(response.status_code)
        operations.add((case.method.upper(), case.path))
        case.validate_response(response, checks=CHECKS, headers=headers)
        assert_only_alices(shop, response, sent=repr(case))

    check()
    assert shop.invoice_rows() == before  # nothing created, changed or dropped
    assert len(statuses) >= FUZZ.max_examples // 2, len(statuses)  # some were initialize
    wanted = {("GET", "/api/catalog")} | {("POST", path) for path in MINI_APP_ACTIONS}
    assert wanted <= operations, wanted - operations
    if scheme != "none":
        assert 200 in statuses, statuses  # authenticated requests got through, too
    else:
        assert 401 in statuses, statuses


# --- SQL-looking and unicode input in every parameter ------------------------------------------

HOSTILE_VALUES = [
    "' OR 1=1 --",
    "1; DROP TABLE invoices",
    '" OR ""="',
    "%' OR '%'='",
    "\u202eDSU\u202c",  # right-to-left override
    "\u200f\u200e\u2066x\u2069",  # RTL/LTR marks and isolates
    "🙂💸",
    "a\x00b",  # NUL
    "%00",
    "../../../etc/passwd",
    "ＰＲＯ",  # fullwidth
    "pro\u0301",  # a combining accent
    "𝐩𝐫𝐨",
    "\\x27",
    "${jndi:ldap://127.0.0.1/a}",
    "<script>alert(1)</script>",
    "9" * 40,
]


def _answered(shop: Shop, response: httpx.Response, sent: str) -> None:
    assert response.status_code < 500, (response.request.url, response.text)
    assert response.status_code != 200 or response.request.url.path.endswith("/history"), (
        response.request.url,
        response.text,
    )
    assert "Traceback" not in response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if response.status_code >= 400:
            assert set(body) == {"error", "detail"}, body
    assert_only_alices(shop, response, sent)


@pytest.mark.parametrize("scheme", ["tma", "bearer"])
def test_sql_and_unicode_in_every_parameter_is_a_4xx_and_changes_nothing(
    shop: Shop, scheme: str
) -> None:
    before = shop.invoice_rows()
    auth = shop.as_alice(scheme)
    values = [*HOSTILE_VALUES, f"{shop.bob[0]}' --", f"{shop.bob[0]}%27%20OR%201=1"]
    with httpx.Client(base_url=shop.base_url, timeout=30) as http:
        for value in values:
            quoted = quote(value, safe="")
            answers = [
                http.get(f"/api/payments/crypto/status/{quoted}", headers=auth),
                http.get("/api/payments/history", params={"limit": value}, headers=auth),
                http.get(
                    f"/api/payments/crypto/qr/{quoted}.png",
                    params={"expires": "9999999999", "signature": "00" * 32},
                ),
                http.get(
                    f"/api/payments/crypto/qr/{shop.alice[0]}.png",
                    params={"expires": value, "signature": value},
                ),
            ]
            answers.append(http.post(f"/api/payments/{quoted}/cancel", headers=auth))
            for target in (quoted, shop.bob[0]):
                answers.append(
                    http.post(
                        f"/api/payments/{target}/claim", json={"reference": value}, headers=auth
                    )
                )
            for key in ("plan", "crypto_currency", "network"):
                body = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20", key: value}
                answers.append(http.post(INITIALIZE, json=body, headers=auth))
            if "\x00" not in value and scheme == "bearer":  # a header cannot carry a NUL
                header = [(b"Authorization", auth["Authorization"].encode())]
                header.append((b"X-Telegram-User-Id", value.encode()))
                answers.append(http.get("/api/users/me", headers=header))
            for response in answers:
                _answered(shop, response, sent=json.dumps(value) + value)
    assert shop.invoice_rows() == before


def test_a_mini_app_user_cannot_name_another_customer_in_a_header(shop: Shop) -> None:
    """X-Telegram-User-Id is for the merchant's backend only: with initData it is ignored."""
    alice = shop.as_alice("tma") | {"X-Telegram-User-Id": str(BOB)}
    with httpx.Client(base_url=shop.base_url, timeout=30) as http:
        me = http.get("/api/users/me", headers=alice)
        assert (me.status_code, me.json()["id"], me.json()["subscriptions"]) == (200, ALICE, [])
        history = http.get("/api/payments/history", headers=alice)
        assert [p["payment_id"] for p in history.json()["payments"]] == shop.alice
        for payment_id in shop.bob:
            theirs = http.get(f"/api/payments/crypto/status/{payment_id}", headers=alice)
            assert (theirs.status_code, theirs.json()["error"]) == (404, "payment_not_found")


def test_a_body_that_is_not_utf8_is_invalid_json_not_a_bare_400(shop: Shop) -> None:
    """Regression (found by schemathesis): FastAPI answered bytes that are not UTF-8 with
    ``400 {"detail": "There was an error parsing the body"}``, a status the API does not
    document; they are invalid JSON like any other."""
    headers = shop.as_alice("tma") | {"Content-Type": "application/json"}
    with httpx.Client(base_url=shop.base_url, timeout=30) as http:
        for body in (b"pn~\xc3\x28\xa0\xa1ge", b'{"plan": "\xff"}', b"\x80"):
            response = http.post(INITIALIZE, content=body, headers=headers)
            assert (response.status_code, response.json()["error"]) == (422, "invalid_json")
