"""The JSON API sells in Telegram Stars: ``initialize`` with ``crypto_currency: "XTR"`` opens a
Stars order and hands back the invoice link the bot made with ``createInvoiceLink`` (what a Mini
App opens with ``Telegram.WebApp.openInvoice``); the fake Bot API pays it, and status, history
and users/me then show the customer credited. Over loopback HTTP against the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from payments.clock import MINUTE_MS
from tests.botkit import BotWorld
from tests.conftest import backends
from tests.e2e.test_stars import CLUB, MONTH_S, PRO_STARS, QUARTER_STARS, now_s, paid, stars_plans
from tests.e2e.web.test_auth import tma

INITIALIZE = "/api/payments/crypto/initialize"
HISTORY = "/api/payments/history"


@asynccontextmanager
async def _chat(world: BotWorld) -> AsyncIterator[None]:
    world.tg.add_chat(CLUB, title="Pro Club")  # Pro's paid chat exists
    yield


def status_path(payment_id: str) -> str:
    return f"/api/payments/crypto/status/{payment_id}"


async def created(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await http.post(INITIALIZE, json=body, headers=auth)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


@pytest.mark.parametrize("backend", backends())
async def test_a_mini_app_buys_in_stars_through_the_api_and_is_credited(
    tmp_path: Path, backend: str
) -> None:
    env = {"PLANS_FILE": str(stars_plans(tmp_path))}
    async with (
        BotWorld.open(tmp_path, env=env, backend=backend) as world,
        _chat(world),
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        alice = world.customer(6901)
        auth = tma(world.tg.token, alice.id)
        crypto = await created(http, auth, plan="pro", crypto_currency="USDT", network="TRC20")
        assert crypto["rail"] == "crypto"
        world.clock.advance(MINUTE_MS)

        pro = await created(http, auth, plan="pro", crypto_currency="xtr")
        assert (pro["rail"], pro["status"], pro["crypto_currency"]) == ("stars", "pending", "XTR")
        assert (pro["plan"], pro["plan_name"], pro["stars"]) == ("pro", "Pro", PRO_STARS)
        assert (pro["subscription"], pro["subscription_period"], pro["reused"]) == (
            True,
            MONTH_S,
            False,
        )
        assert 0 < pro["expires_in_seconds"] <= 120 * 60
        [issued] = [i for i in world.tg.invoice_links() if i.link == pro["invoice_link"]]
        assert (issued.currency, issued.amount, issued.subscription_period) == (
            "XTR",
            PRO_STARS,
            MONTH_S,
        )
        again = await created(http, auth, plan="pro", crypto_currency="XTR")
        assert again["payment_id"] == pro["payment_id"] and again["reused"] is True
        assert again["invoice_link"] == pro["invoice_link"]
        assert len(world.tg.invoice_links()) == 1  # the link is made once

        pending = (await http.get(status_path(pro["payment_id"]), headers=auth)).json()
        assert (pending["rail"], pending["status"], pending["confirmed"]) == (
            "stars",
            "pending",
            False,
        )
        assert pending["invoice_link"] == pro["invoice_link"] and pending["charges"] == []

        payment = await paid(world, world.tg.pay(alice.id, pro["invoice_link"], now_s=now_s(world)))
        assert payment.outcome == "paid", payment.outcome
        await alice.wait_text(f"Payment received: {PRO_STARS} Stars", timeout=15)
        done = (await http.get(status_path(pro["payment_id"]), headers=auth)).json()
        assert (done["status"], done["confirmed"], done["renews"], done["refunded"]) == (
            "paid",
            True,
            True,
            False,
        )
        [charge] = done["charges"]
        assert charge["stars"] == PRO_STARS and charge["renewal"] is False
        assert charge["refunded_at"] is None and done["paid_at"] == charge["paid_at"]
        assert done["invoice_link"] is None

        world.clock.advance(MINUTE_MS)
        quarter = await created(http, auth, plan="quarter", crypto_currency="XTR")
        assert (quarter["subscription"], quarter["subscription_period"]) == (False, None)
        [one_off] = [i for i in world.tg.invoice_links() if i.link == quarter["invoice_link"]]
        assert (one_off.amount, one_off.subscription_period) == (QUARTER_STARS, None)
        payment = await paid(
            world, world.tg.pay(alice.id, quarter["invoice_link"], now_s=now_s(world))
        )
        assert payment.outcome == "paid", payment.outcome
        await alice.wait_text(f"Payment received: {QUARTER_STARS} Stars", timeout=15)

        history = (await http.get(HISTORY, headers=auth)).json()["payments"]
        assert [(p["rail"], p["payment_id"]) for p in history] == [
            ("stars", quarter["payment_id"]),
            ("stars", pro["payment_id"]),
            ("crypto", crypto["payment_id"]),
        ]
        assert history[0]["status"] == "paid" and history[0]["renews"] is None
        assert history[1] == (await http.get(status_path(pro["payment_id"]), headers=auth)).json()
        assert (
            len((await http.get(HISTORY, params={"limit": 2}, headers=auth)).json()["payments"])
            == 2
        )

        me = (await http.get("/api/users/me", headers=auth)).json()
        assert {(s["plan"], s["active"]) for s in me["subscriptions"]} == {
            ("pro", True),
            ("quarter", True),
        }

        bob = tma(world.tg.token, 6902)
        theirs = await http.get(status_path(pro["payment_id"]), headers=bob)
        assert theirs.status_code == 404 and theirs.json()["error"] == "payment_not_found"
        assert (await http.get(HISTORY, headers=bob)).json() == {"payments": []}


async def test_stars_refusals_take_the_apis_error_shape(tmp_path: Path) -> None:
    env = {"PLANS_FILE": str(stars_plans(tmp_path))}
    async with (
        BotWorld.open(tmp_path, env=env) as world,
        _chat(world),
        world.serving(webhook=False) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        auth = tma(world.tg.token, 7001)
        cases = [
            ({"plan": "enterprise", "crypto_currency": "XTR"}, 422, "not_sold_for_stars"),
            ({"plan": "nope", "crypto_currency": "XTR"}, 422, "unknown_plan"),
            ({"plan": "pro", "crypto_currency": "XTR", "network": "TON"}, 422, None),
        ]
        for body, status, error in cases:
            r = await http.post(INITIALIZE, json=body, headers=auth)
            assert r.status_code == status, r.text
            answer = r.json()
            assert set(answer) == {"error", "detail"}, answer
            assert error is None or answer["error"] == error, answer
        r = await http.post(INITIALIZE, json=cases[0][0], headers=auth)
        assert (
            "'enterprise' is not sold for Telegram Stars; Stars plans: pro, quarter"
            in (r.json()["detail"])
        )
        assert world.tg.invoice_links() == []

        admin = world.customer(900)
        await admin.send("/block 7001", expect="is blocked")
        r = await http.post(
            INITIALIZE, json={"plan": "pro", "crypto_currency": "XTR"}, headers=auth
        )
        assert (r.status_code, r.json()["error"]) == (403, "customer_blocked")
        assert world.tg.invoice_links() == []
