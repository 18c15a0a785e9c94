"""The payments export end to end: /export as a CSV document for admins (refused to anyone
else), and GET /api/export for the merchant's backend (Bearer only; a Mini App user gets 403)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from fakes.telegram_state import ChatMessage
from tests.botkit import ADMIN, BotWorld, address_of, amount_of, invoice_id_of
from tests.e2e.web.test_auth import tma

API_TOKEN = "merchant-token-0123456789abcdef"
ADMIN_ONLY = "This command is for the shop's admins."
USAGE = "Usage: /export [from] [to]"


def today(world: BotWorld) -> str:
    return datetime.fromtimestamp(world.clock.now_ms() / 1000, tz=UTC).date().isoformat()


def days_ago(world: BotWorld, days: int) -> str:
    moment = datetime.fromtimestamp(world.clock.now_ms() / 1000, tz=UTC) - timedelta(days=days)
    return moment.date().isoformat()


def parsed(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.startswith("rail,"), text[:80]
    return rows


async def paid_invoice(world: BotWorld, user_id: int) -> tuple[str, Decimal, str]:
    """A customer buys and pays exactly; (invoice id, amount, depId) once they were told."""
    customer = world.customer(user_id)
    photo: ChatMessage = await customer.buy()
    invoice, amount = invoice_id_of(photo), Decimal(amount_of(photo))
    dep_id = world.okx.add_deposit("USDT", "USDT-TRC20", str(amount), to=address_of(photo))
    await customer.wait_text(f"Payment received for invoice {invoice}", timeout=15)
    return invoice, amount, dep_id


async def test_admin_export_sends_a_csv_document_and_customers_are_refused(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        admin, ivan = world.customer(ADMIN), world.customer(103)
        invoice, amount, dep_id = await paid_invoice(world, 101)
        await world.customer(102).buy()  # open, unpaid: not exported

        before = len(admin.messages())
        world.tg.send_text(ADMIN, "/export")
        document = await admin.wait_new(before, "Payments")
        assert document.document is not None and document.document_bytes is not None
        name = f"payments-{days_ago(world, 29)}-{today(world)}.csv"
        assert document.document["file_name"] == name
        [row] = parsed(document.document_bytes.decode())
        assert (row["rail"], row["payment_id"], row["customer_id"]) == ("crypto", invoice, "101")
        assert Decimal(row["amount_asked"]) == amount == Decimal(row["amount_received"])
        assert row["deposit_ids"] == dep_id and row["status"] == "paid"
        assert (row["currency"], row["chain"]) == ("USDT", "USDT-TRC20")

        day = today(world)
        dated = await admin.send(f"/export {day} {day}", expect="Payments")
        assert dated.document is not None and dated.document_bytes is not None
        assert dated.document["file_name"] == f"payments-{day}-{day}.csv"
        assert [r["payment_id"] for r in parsed(dated.document_bytes.decode())] == [invoice]

        empty = await admin.send("/export 2020-01-01 2020-01-31", expect="No payments")
        assert empty.document is None and "2020-01-01" in empty.plain
        for bad in ("/export 2026-02-30", "/export yesterday", "/export 2026-02-01 2026-01-01"):
            refused = await admin.send(bad, expect=USAGE)
            assert refused.document is None
        refused_to_customer = await ivan.send("/export", expect=ADMIN_ONLY)
        assert refused_to_customer.document is None
        await world.settled()
        assert all(m.document is None for m in ivan.messages())
        assert len(world.tg.calls("sendDocument")) == 2


async def test_api_export_is_a_csv_for_the_bearer_token_only(tmp_path: Path) -> None:
    async with (
        BotWorld.open(tmp_path) as world,
        world.serving(webhook=False, env={"API_TOKEN": API_TOKEN}) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        invoice, amount, dep_id = await paid_invoice(world, 101)
        bearer = {"Authorization": f"Bearer {API_TOKEN}"}
        day = today(world)

        r = await http.get("/api/export", params={"from": day, "to": day}, headers=bearer)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert f"payments-{day}-{day}.csv" in r.headers["content-disposition"]
        [row] = parsed(r.text)
        assert (row["rail"], row["payment_id"], row["deposit_ids"]) == ("crypto", invoice, dep_id)
        assert Decimal(row["amount_received"]) == amount
        assert [
            x["payment_id"] for x in parsed((await http.get("/api/export", headers=bearer)).text)
        ] == [invoice]

        empty = await http.get("/api/export?from=2020-01-01&to=2020-01-02", headers=bearer)
        assert empty.status_code == 200 and parsed(empty.text) == []

        customer = await http.get("/api/export", headers=tma(world.tg.token, 101))
        assert customer.status_code == 403 and customer.json()["error"] == "merchant_only"
        wrong = await http.get("/api/export", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await http.get("/api/export")).status_code == 401
        for query in ("from=2026-02-30", "from=yesterday", "from=2026-02-01&to=2026-01-01"):
            bad = await http.get(f"/api/export?{query}", headers=bearer)
            assert bad.status_code == 422, (query, bad.text)
            assert bad.json()["error"]

        schema = (await http.get("/openapi.json")).json()
        operation = schema["paths"]["/api/export"]["get"]
        assert "text/csv" in operation["responses"]["200"]["content"]
        assert {p["name"] for p in operation["parameters"]} >= {"from", "to"}
