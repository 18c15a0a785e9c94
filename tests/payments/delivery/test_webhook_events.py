"""Merchant events are recorded in the transaction of what they report, once each, whether or
not a webhook URL is configured (payments level, against the fake OKX; both databases)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS
from payments.delivery.webhooks.events import iso_utc
from payments.storage import Database
from payments.storage.schema import merchant_events
from tests.shop import Shop, open_shop


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


async def recorded(shop: Shop) -> list[dict[str, Any]]:
    async with shop.db.read() as conn:
        rows = await conn.execute(select(merchant_events).order_by(merchant_events.c.id))
        return [{**dict(r), "data": json.loads(r["payload"])} for r in rows.mappings()]


async def test_a_payment_records_invoice_paid_then_activated_and_a_second_one_extended(
    shop: Shop,
) -> None:
    first = await shop.buy(1)
    dep = shop.pay(first)
    await shop.poll()
    paid_at = shop.clock.now_ms()

    events = await recorded(shop)
    assert [e["type"] for e in events] == ["invoice.paid", "subscription.activated"]
    assert {e["order_key"] for e in events} == {"customer:1"}
    assert all(e["public_id"].startswith("evt_") for e in events)
    paid, activated = events[0]["data"], events[1]["data"]
    ends = paid_at + 30 * DAY_MS
    assert paid == {
        "rail": "crypto",
        "invoice_id": first.id,
        "customer": 1,
        "plan_id": "pro",
        "currency": "USDT",
        "network": "TRC20",
        "amount": first.amount_text,
        "received": first.amount_text,
        "exceptions": [],
        "paid_at": iso_utc(paid_at),
        "subscription_ends_at": iso_utc(ends),
        "tx_ids": [(await shop.deposit(dep))["tx_id"]],
    }
    assert activated == {
        "customer": 1,
        "plan_id": "pro",
        "starts_at": iso_utc(paid_at),
        "ends_at": iso_utc(ends),
        "invoice_id": first.id,
        "source": "payment",
    }

    shop.clock.advance(HOUR_MS)
    await shop.poll()  # the same history again: nothing new
    assert len(await recorded(shop)) == 2

    second = await shop.buy(1)
    shop.pay(second)
    await shop.poll()
    events = await recorded(shop)
    assert [e["type"] for e in events[2:]] == ["invoice.paid", "subscription.extended"]
    extended = events[3]["data"]
    assert (extended["starts_at"], extended["ends_at"]) == (
        iso_utc(ends),
        iso_utc(ends + 30 * DAY_MS),
    )
    assert events[2]["data"]["subscription_ends_at"] == iso_utc(ends + 30 * DAY_MS)


async def test_an_expired_invoice_is_recorded_once(shop: Shop) -> None:
    invoice = await shop.buy(7)
    shop.clock.advance(3 * HOUR_MS)
    await shop.poll()
    assert await shop.payments.expire_due() == 1
    await shop.poll()
    assert await shop.payments.expire_due() == 0

    [event] = await recorded(shop)
    assert (event["type"], event["order_key"]) == ("invoice.expired", "customer:7")
    assert event["data"] == {
        "rail": "crypto",
        "invoice_id": invoice.id,
        "customer": 7,
        "plan_id": "pro",
        "currency": "USDT",
        "network": "TRC20",
        "amount": invoice.amount_text,
        "expired_at": iso_utc(shop.clock.now_ms()),
    }


async def test_a_subscription_expiry_is_recorded_once(shop: Shop) -> None:
    granted = await shop.payments.admin.grant(5, "pro", 2)
    assert granted.ends_at is not None
    shop.clock.advance(3 * DAY_MS)
    await shop.payments.remind_and_expire()
    await shop.payments.remind_and_expire()

    events = await recorded(shop)
    assert [e["type"] for e in events] == ["subscription.activated", "subscription.expired"]
    assert events[0]["data"]["source"] == "grant" and events[0]["data"]["invoice_id"] is None
    assert events[1]["data"] == {
        "customer": 5,
        "plan_id": "pro",
        "ended_at": iso_utc(granted.ends_at),
    }


async def test_a_grant_on_a_running_subscription_is_an_extension(shop: Shop) -> None:
    await shop.payments.admin.grant(5, "pro", 2)
    await shop.payments.admin.grant(5, "pro", 3)
    events = await recorded(shop)
    assert [e["type"] for e in events] == ["subscription.activated", "subscription.extended"]
    assert [e["data"]["source"] for e in events] == ["grant", "grant"]


async def test_an_unmatched_deposit_is_recorded_once(shop: Shop) -> None:
    invoice = await shop.buy(1)
    dep = shop.pay(invoice, ts=invoice.created_at - 10 * MINUTE_MS)  # older than the invoice
    await shop.poll()
    shop.clock.advance(MINUTE_MS)
    await shop.poll()

    [event] = await recorded(shop)
    deposit = await shop.deposit(dep)
    assert (event["type"], event["order_key"]) == ("deposit.unmatched", f"deposit:{dep}")
    assert event["data"] == {
        "dep_id": dep,
        "currency": "USDT",
        "chain": "USDT-TRC20",
        "amount": deposit["amount"],
        "tx_id": deposit["tx_id"],
        "ts": iso_utc(invoice.created_at - 10 * MINUTE_MS),
        "reason": deposit["note"],
    }
    assert Decimal(event["data"]["amount"]) == Decimal(invoice.amount_text)


async def test_an_admin_confirmation_records_the_payment_too(shop: Shop) -> None:
    invoice = await shop.buy(3)
    await shop.payments.admin.confirm(invoice.id, force=True)
    events = await recorded(shop)
    assert [e["type"] for e in events] == ["invoice.paid", "subscription.activated"]
    assert events[0]["data"]["received"] is None
    assert "marked" in events[0]["data"]["exceptions"]
    assert events[1]["data"]["source"] == "payment"


async def test_a_late_payment_worth_less_now_expires_the_invoice_once(shop: Shop) -> None:
    invoice = await shop.buy(4, currency="ETH", network="ERC20")
    shop.clock.advance(5 * HOUR_MS)
    shop.okx.set_price("ETH", "2000")  # fell by a third: the payment waits for an admin
    shop.pay(invoice)
    await shop.poll()  # the poll sees it before the expiry job does
    await shop.payments.expire_due()
    await shop.poll()

    events = await recorded(shop)
    assert [(e["type"], e["data"]["invoice_id"]) for e in events] == [
        ("invoice.expired", invoice.id)
    ]
