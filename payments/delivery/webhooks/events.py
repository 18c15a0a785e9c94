"""Merchant events: one ``merchant_events`` row per occurrence, written in the transaction of the
decision it reports (so an event exists exactly when its decision committed).

``key`` de-duplicates: a retried decision writes the same key and changes nothing. ``order_key``
groups events a receiver must get in order (``customer:<telegram id>``, ``deposit:<dep_id>``).
Payloads are validated like outbox payloads: Decimals become strings, floats are refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.delivery.outbox import dump_payload
from payments.delivery.webhooks.store import deliver_new
from payments.storage.db import insert_ignore
from payments.storage.schema import merchant_events

INVOICE_PAID = "invoice.paid"
INVOICE_EXPIRED = "invoice.expired"
SUBSCRIPTION_ACTIVATED = "subscription.activated"
SUBSCRIPTION_EXTENDED = "subscription.extended"
SUBSCRIPTION_EXPIRED = "subscription.expired"
SUBSCRIPTION_REVOKED = "subscription.revoked"  # an admin's correction took a period back
DEPOSIT_UNMATCHED = "deposit.unmatched"
TYPES = (
    INVOICE_PAID,
    INVOICE_EXPIRED,
    SUBSCRIPTION_ACTIVATED,
    SUBSCRIPTION_EXTENDED,
    SUBSCRIPTION_EXPIRED,
    SUBSCRIPTION_REVOKED,
    DEPOSIT_UNMATCHED,
)

_KEY_MAX = cast(String, merchant_events.c.event_key.type).length or 200
_ORDER_MAX = cast(String, merchant_events.c.order_key.type).length or 80


def iso_utc(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC, e.g. ``2026-11-26T15:04:05.123Z``."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def customer_order(customer_id: int) -> str:
    return f"customer:{customer_id}"


def deposit_order(dep_id: str) -> str:
    return f"deposit:{dep_id}"[:_ORDER_MAX]


def new_public_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


def event_row(
    type: str,
    key: str,
    order_key: str,
    data: Mapping[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    """The validated ``merchant_events`` row of one event (see :func:`record`)."""
    if type not in TYPES:
        raise ValueError(f"unknown event type {type!r}")
    if not key or len(key) > _KEY_MAX:
        raise ValueError(f"event key must be 1..{_KEY_MAX} characters")
    if not order_key or len(order_key) > _ORDER_MAX:
        raise ValueError(f"order key must be 1..{_ORDER_MAX} characters")
    return {
        "event_key": key,
        "public_id": new_public_id(),
        "type": type,
        "order_key": order_key,
        "payload": dump_payload(data),
        "created_at": now_ms,
    }


async def record(
    conn: AsyncConnection,
    type: str,
    key: str,
    order_key: str,
    data: Mapping[str, Any],
    now_ms: int,
) -> bool:
    """Write an event, and its deliveries to the webhook URLs in force, in the caller's
    transaction; False when ``key`` was recorded already."""
    return await record_row(conn, event_row(type, key, order_key, data, now_ms))


async def record_row(conn: AsyncConnection, row: Mapping[str, Any]) -> bool:
    """:func:`record` of an :func:`event_row` row."""
    if await insert_ignore(conn, merchant_events, row, ["event_key"]) != 1:
        return False
    await deliver_new(conn, [row["public_id"]], now_ms=int(row["created_at"]))
    return True


async def record_rows(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write many :func:`event_row` rows, in order (keys already recorded are skipped), with
    their deliveries."""
    unique = list({row["event_key"]: row for row in rows}.values())
    for start in range(0, len(unique), 500):
        await insert_ignore(conn, merchant_events, unique[start : start + 500], ["event_key"])
    if unique:
        now_ms = max(int(row["created_at"]) for row in unique)
        await deliver_new(conn, [row["public_id"] for row in unique], now_ms=now_ms)
