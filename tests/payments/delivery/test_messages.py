"""The message catalogue: every kind the core sends, the one way into the outbox, and a message
the catalogue does not know refused when it is written (not days later, by the bot)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from payments.clock import ManualClock
from payments.delivery import messages, outbox
from payments.delivery.messages import KINDS, InvalidMessage, Kind, Message
from payments.storage import Database
from payments.storage.schema import outbox as outbox_table

# The stable names: rows already in databases, the bot's renderings and the tests depend on
# them, so a kind is never renamed (a new one is added here as well as to the catalogue).
STABLE_NAMES = {
    "customer": {
        "payment.detected",
        "payment.partial",
        "invoice.paid",
        "invoice.expired",
        "invoice.rejected",
        "invoice.revoked",
        "payment.partial_expired",
        "payment.late_review",
        "payment.on_hold",
        "subscription.granted",
        "subscription.reminder",
        "subscription.expired",
        "access.invite",
        "access.removed",
        "stars.paid",
        "stars.refunded",
    },
    "admins": {
        "admin.payment_settled",
        "admin.deposit_unmatched",
        "admin.deposit_on_hold",
        "admin.invoice_frozen",
        "admin.duplicate_payment",
        "admin.payment_after_close",
        "admin.late_review",
        "admin.partial_unfinished",
        "admin.topup_unavailable",
        "admin.claim_review",
        "admin.deposits_not_sold",
        "admin.payment_unsettled",
        "admin.invoice_revoked",
        "admin.okx_auth_failed",
        "admin.okx_unreachable",
        "admin.okx_recovered",
        "admin.clock_offset",
        "admin.capacity_low",
        "admin.webhook_failed",
        "admin.webhook_gone",
        "admin.access_failing",
        "admin.chat_rights",
        "admin.message_unrenderable",
        "admin.stars_paid",
        "admin.stars_refunded",
        "admin.stars_unmatched",
        "admin.support_request",
    },
}


async def rows(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(outbox_table).order_by(outbox_table.c.id))).all())


def sample_message(kind: Kind[Any], key: str) -> Message:
    return kind.message(kind.sample, key=key, customer_id=7)


def test_the_catalogue_holds_every_stable_kind_with_its_audience() -> None:
    by_audience = {
        audience: {name for name, kind in KINDS.items() if kind.audience == audience}
        for audience in messages.AUDIENCES
    }
    assert by_audience == STABLE_NAMES
    assert all(kind.doc for kind in KINDS.values())


async def test_every_sample_is_written_as_it_is(db: Database, clock: ManualClock) -> None:
    """Each kind's sample fits it, and the stored JSON is the payload itself (the rows the bot
    reads and the merchant-facing texts depend on exactly these keys)."""
    async with db.transaction() as conn:
        written = await outbox.enqueue(
            conn,
            *(sample_message(kind, f"k:{name}") for name, kind in KINDS.items()),
            now_ms=clock.now_ms(),
        )
    assert written == len(KINDS)
    stored = await rows(db)
    assert [row.kind for row in stored] == list(KINDS)
    for row in stored:
        kind = KINDS[row.kind]
        assert (row.audience, row.customer_id) == (kind.audience, 7)
        assert json.loads(row.payload) == json.loads(json.dumps(kind.sample))


async def test_an_unknown_kind_is_refused_and_nothing_is_written(
    db: Database, clock: ManualClock
) -> None:
    unknown = Kind("payment.from_the_future", "customer", messages.InvoiceFields, {}, "?")
    good = sample_message(messages.PAYMENT_DETECTED, "good")
    async with db.transaction() as conn:
        with pytest.raises(
            InvalidMessage, match=r"unknown message kind 'payment\.from_the_future'"
        ):
            await outbox.enqueue(
                conn,
                good,  # written in the same call: refused with it
                unknown.message(messages.PAYMENT_DETECTED.sample, key="new", customer_id=7),
                now_ms=clock.now_ms(),
            )
        with pytest.raises(InvalidMessage, match="unknown message kind 'alert'"):
            await outbox.enqueue(conn, Message("alert", {}, key="bare"), now_ms=clock.now_ms())
    assert await rows(db) == []
    assert issubclass(InvalidMessage, ValueError)


async def test_a_payload_that_does_not_fit_its_kind_is_refused(
    db: Database, clock: ManualClock
) -> None:
    sample = dict(messages.INVOICE_PAID.sample)
    del sample["ends_at"]
    short = messages.INVOICE_PAID.message(cast(Any, sample), key="short", customer_id=7)
    extra = messages.ADMIN_CLOCK.message(cast(Any, {"offset_ms": 1, "typo": 2}), key="extra")
    async with db.transaction() as conn:
        with pytest.raises(InvalidMessage, match=r"invoice\.paid payload lacks ends_at"):
            await outbox.enqueue(conn, short, now_ms=clock.now_ms())
        with pytest.raises(InvalidMessage, match=r"admin\.clock_offset payload has unknown typo"):
            await outbox.enqueue(conn, extra, now_ms=clock.now_ms())
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(outbox_table))).scalar() == 0


async def test_a_key_used_before_is_skipped_and_counted_so(
    db: Database, clock: ManualClock
) -> None:
    first = sample_message(messages.SUBSCRIPTION_EXPIRED, "sub:1:expired:5")
    async with db.transaction() as conn:
        assert await outbox.enqueue(conn, first, first, now_ms=clock.now_ms()) == 1
        again = sample_message(messages.SUBSCRIPTION_EXPIRED, "sub:1:expired:5")
        other = sample_message(messages.SUBSCRIPTION_EXPIRED, "sub:2:expired:5")
        assert await outbox.enqueue(conn, again, other, now_ms=clock.now_ms()) == 1
    assert [row.dedupe_key for row in await rows(db)] == ["sub:1:expired:5", "sub:2:expired:5"]


def test_an_admin_alert_about_a_customer_keeps_them_on_the_row() -> None:
    paid = messages.ADMIN_PAID.message(messages.ADMIN_PAID.sample, key="a:inv:X:paid")
    assert paid.customer_id == messages.ADMIN_PAID.sample["customer_id"]
    assert messages.ADMIN_CLOCK.message({"offset_ms": 1}, key="a:clock:1").customer_id is None
