"""The payments export (/export, GET /api/export): every payment of a range, both rails, ordered
by time, amounts exact; its CSV parses back to the same payments. Both databases."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from payments.catalog import Catalog, Plan
from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS
from payments.delivery.webhooks.events import iso_utc
from payments.ops import EXPORT_COLUMNS, ExportRow, ExportService, to_csv
from payments.stars import StarsCharge, StarsRail
from payments.storage import Database
from tests.shop import Shop, open_shop

ALICE, BOB = 7001, 7002
MONTH = Plan("month", "Month", Decimal("10"), 30, stars=500)


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


async def collect(service: ExportService, start: int, end: int) -> list[ExportRow]:
    return [row async for row in service.rows(start, end)]


async def test_export_lists_a_crypto_payment_a_stars_charge_and_its_refund_exactly(
    shop: Shop,
) -> None:
    start = shop.clock.now_ms()
    invoice = await shop.buy(ALICE)  # pro, USDT, paid a little over
    paid = Decimal(invoice.amount_text) + Decimal("0.000037")
    dep = shop.pay(invoice, paid)
    await shop.poll()
    unpaid = await shop.buy(BOB)  # open: no money, not exported
    shop.clock.advance(HOUR_MS)

    rail = StarsRail(shop.db, Catalog(plans=(MONTH,), coins=()), shop.clock, order_ttl_ms=HOUR_MS)
    order = await rail.open_order(BOB, "month")
    charged_at = shop.clock.now_ms()
    credited = await rail.record_charge(
        StarsCharge(BOB, "tg-charge-1", order.payload, 500, charged_at)
    )
    shop.clock.advance(MINUTE_MS)
    await rail.record_refund("tg-charge-1", by="admin")
    refunded_at = shop.clock.now_ms()
    end = shop.clock.now_ms() + 1

    rows = await collect(shop.payments.export, start, end)

    assert [r.rail for r in rows] == ["crypto", "stars"]
    crypto, stars = rows
    assert crypto.payment_id == invoice.id and crypto.customer_id == ALICE
    assert (crypto.plan, crypto.currency, crypto.chain) == ("pro", "USDT", "USDT-TRC20")
    assert crypto.amount_asked == Decimal(invoice.amount_text)
    assert crypto.amount_received == paid
    assert crypto.deposit_ids == (dep,) and crypto.status == "paid"
    assert len(crypto.tx_hashes) == 1 and crypto.tx_hashes[0]
    assert stars.payment_id == credited.payment_id and stars.order_id == order.id
    assert (stars.customer_id, stars.plan, stars.currency) == (BOB, "month", "XTR")
    assert stars.amount_received == 500 and stars.charge_id == "tg-charge-1"
    assert stars.status == "refunded" and stars.refunded_at == refunded_at
    assert stars.paid_at == charged_at and stars.renewal is False
    assert unpaid.id not in {r.payment_id for r in rows}

    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert tuple(parsed[0].keys()) == EXPORT_COLUMNS and EXPORT_COLUMNS[0] == "rail"
    first, second = parsed
    assert first["payment_id"] == invoice.id and first["customer_id"] == str(ALICE)
    assert Decimal(first["amount_received"]) == paid
    assert first["amount_received"] == format(paid, "f").rstrip("0")  # exact, no exponent
    assert Decimal(first["amount_asked"]) == Decimal(invoice.amount_text)
    assert first["tx_hashes"] == crypto.tx_hashes[0] and first["deposit_ids"] == dep
    assert first["paid_at"] == iso_utc(crypto.paid_at) and first["paid_at"].endswith("Z")
    assert first["renewal"] == "" and first["charge_id"] == ""
    assert second["rail"] == "stars" and second["currency"] == "XTR"
    assert second["amount_asked"] == "500" == second["amount_received"]
    assert second["charge_id"] == "tg-charge-1" and second["order_id"] == order.id
    assert second["renewal"] == "false" and second["status"] == "refunded"
    assert second["refunded_at"] == iso_utc(refunded_at) and second["created_at"] == ""

    # the range is [from, to): each end excludes what lies beyond it
    assert [r.rail for r in await collect(shop.payments.export, start, charged_at)] == ["crypto"]
    assert [r.rail for r in await collect(shop.payments.export, crypto.paid_at + 1, end)] == [
        "stars"
    ]
    assert await collect(shop.payments.export, end, end + DAY_MS) == []
    assert to_csv([]).strip() == ",".join(EXPORT_COLUMNS)


async def test_export_reads_in_chunks_and_keeps_time_order_across_rails(shop: Shop) -> None:
    start = shop.clock.now_ms()
    rail = StarsRail(shop.db, Catalog(plans=(MONTH,), coins=()), shop.clock, order_ttl_ms=DAY_MS)
    expected: list[str] = []
    for i in range(3):
        invoice = await shop.buy(ALICE + 10 + i)
        shop.pay(invoice)
        await shop.poll()
        expected.append(invoice.id)
        shop.clock.advance(MINUTE_MS)
        order = await rail.open_order(BOB + 10 + i, "month")
        credited = await rail.record_charge(
            StarsCharge(BOB + 10 + i, f"c-{i}", order.payload, 500, shop.clock.now_ms())
        )
        assert credited.payment_id is not None
        expected.append(credited.payment_id)
        shop.clock.advance(MINUTE_MS)

    small = ExportService(shop.db, chunk=2)  # several pages of each rail
    rows = await collect(small, start, shop.clock.now_ms())
    assert [r.payment_id for r in rows] == expected
    assert [r.paid_at for r in rows] == sorted(r.paid_at for r in rows)
    batches = [batch async for batch in small.chunks(start, shop.clock.now_ms())]
    assert [len(b) for b in batches] == [2, 2, 2]
