"""A key OKX stops accepting while the shop runs: no crypto invoice is made (in the chat and in
the JSON API) until OKX accepts it again, Telegram Stars are offered instead where the plan has
them, and the admins are told once. (A key refused on the very first start stops ``run``:
tests/e2e/test_main.py.)"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.botkit import ADMIN, BotWorld
from tests.e2e.test_stars import CLUB, offer_rows, stars_plans
from tests.e2e.web.test_auth import tma

INITIALIZE = "/api/payments/crypto/initialize"
UNAVAILABLE = "Crypto payment is unavailable right now. You can pay with Telegram Stars instead."
AUTH_ALERT = "OKX refused the API key"


async def test_a_refused_key_stops_crypto_invoices_offers_stars_and_tells_admins_once(
    tmp_path: Path,
) -> None:
    env = {"PLANS_FILE": str(stars_plans(tmp_path))}
    async with BotWorld.open(tmp_path, env=env) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with (
            world.serving(webhook=False) as served,
            httpx.AsyncClient(base_url=served.base_url) as http,
        ):
            alice = world.customer(6201)
            await alice.buy()  # the key works: an invoice

            world.okx.secret, secret = "rotated-on-okx", world.okx.secret
            admin = world.customer(ADMIN)
            await world.tg.wait_for(
                lambda: admin.count(AUTH_ALERT) >= 1, timeout=20, what="the refused-key alert"
            )

            bob = world.customer(6202)
            await bob.send("/start")
            await bob.press("Pro", expect="Which coin")
            await bob.press("USDT", expect="Which network")
            refused = await bob.press("Tron (TRC20)", expect="unavailable")
            assert refused.plain == UNAVAILABLE
            assert [b.text for row in offer_rows(refused) for b in row] == ["⭐ Telegram Stars"]
            await bob.press("⭐ Telegram Stars", message=refused, expect="every 30 days")
            assert await world.invoices_of(bob.id) == []

            body = {"plan": "pro", "crypto_currency": "USDT", "network": "TRC20"}
            answer = await http.post(INITIALIZE, json=body, headers=tma(world.tg.token, 6203))
            assert (answer.status_code, answer.headers["Retry-After"]) == (503, "300")
            assert answer.json() == {"error": "crypto_unavailable", "detail": UNAVAILABLE}

            world.okx.secret = secret  # the merchant fixed the key: invoices again
            await world.tg.wait_for(
                lambda: admin.count("OKX answers again") >= 1, timeout=20, what="the recovery"
            )
            await bob.send("/start")
            await bob.press("Pro", expect="Which coin")
            await bob.press("USDT", expect="Which network")
            await bob.press("Tron (TRC20)", expect="Send exactly")
            assert admin.count(AUTH_ALERT) == 1  # told once for the whole time
