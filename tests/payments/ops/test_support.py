"""/paysupport's alert on the core's side: a customer who paid in Telegram Stars has their Stars
orders listed with their crypto invoices, newest first, five at most; the alert is written
once per window even when two requests race (two replicas answering at once)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from payments.catalog import Catalog, Coin, Network, Plan
from payments.clock import MINUTE_MS, ManualClock
from payments.ops import SupportService
from payments.stars import StarsCharge, StarsRail
from payments.storage import Database
from payments.storage.schema import outbox

ALICE = 6001
MONTH = Plan("month", "Month", Decimal(10), 30, stars=500)
WEEKS = tuple(Plan(f"w{n}", f"Week {n}", Decimal(3), 7, stars=150) for n in range(5))
COIN = Coin("USDT", "Tether", Decimal("0.0001"), (Network("TRC20", "USDT-TRC20", "Tron"),))
CATALOG = Catalog(plans=(MONTH, *WEEKS), coins=(COIN,))


async def alerts(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.payload).where(outbox.c.kind == "admin.support_request")
        )
        return [json.loads(payload) for (payload,) in rows]


async def test_stars_orders_are_listed_newest_first_five_at_most(
    db: Database, clock: ManualClock
) -> None:
    rail = StarsRail(db, CATALOG, clock, order_ttl_ms=120 * MINUTE_MS)
    paid = await rail.open_order(ALICE, "month")
    opened = []
    for week in WEEKS:
        clock.advance(MINUTE_MS)
        opened.append(await rail.open_order(ALICE, week.id))

    request = await SupportService(db, clock).request(ALICE, username="@alice", name=" Alice ")
    assert request.opened
    [alert] = await alerts(db)
    assert (alert["customer_id"], alert["username"], alert["name"]) == (ALICE, "alice", "Alice")
    listed = alert["invoices"]
    assert [i["invoice_id"] for i in listed] == [o.id for o in reversed(opened)]
    assert {(i["currency"], i["amount"], i["status"]) for i in listed} == {
        ("XTR", "150", "pending")
    }

    assert paid.id not in {i["invoice_id"] for i in listed}  # the sixth newest


async def test_a_paid_stars_order_is_listed_as_paid(db: Database, clock: ManualClock) -> None:
    rail = StarsRail(db, CATALOG, clock, order_ttl_ms=120 * MINUTE_MS)
    order = await rail.open_order(ALICE, "month")
    charge = StarsCharge(ALICE, "charge-1", order.payload, 500, clock.now_ms(), recurring=True)
    assert (await rail.record_charge(charge)).new
    assert (await SupportService(db, clock).request(ALICE)).opened
    [alert] = await alerts(db)
    [listed] = alert["invoices"]
    assert (listed["invoice_id"], listed["plan_id"], listed["amount"]) == (order.id, "month", "500")
    assert (listed["currency"], listed["status"]) == ("XTR", "paid")


async def test_two_requests_at_once_write_one_alert(db: Database, clock: ManualClock) -> None:
    support = SupportService(db, clock)
    outcomes = await asyncio.gather(*(support.request(ALICE) for _ in range(4)))
    assert sorted(o.outcome for o in outcomes) == ["opened", "recent", "recent", "recent"]
    assert len(await alerts(db)) == 1
