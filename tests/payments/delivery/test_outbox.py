"""The outbox: a message exists exactly when its event committed, and is sent at least once."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from payments.botstate.lease import acquire
from payments.clock import DAY_MS, HOUR_MS, ManualClock
from payments.delivery import messages, outbox
from payments.delivery.outbox import (
    OutboxMessage,
    backoff_ms,
    claim_batch,
    mark_retry,
    mark_sent,
    reassert,
    release,
)
from payments.invoicing.customers import ensure_customer
from payments.storage import Database
from payments.storage.schema import customers
from payments.storage.schema import outbox as outbox_table

CUSTOMER = 42


def message(
    key: str, payload: dict[str, Any] | None = None, *, customer: int | None = CUSTOMER
) -> messages.Message:
    """A message named ``key`` (its ``invoice_id``): "payment detected" to ``customer``, or an
    alert to the admins (None); ``payload`` replaces some of its values."""
    if customer is None:
        alert: dict[str, Any] = {**messages.ADMIN_ON_HOLD.sample, "invoice_id": key}
        return messages.ADMIN_ON_HOLD.message(alert | (payload or {}), key=key)  # type: ignore[arg-type]
    told: dict[str, Any] = {
        **messages.PAYMENT_DETECTED.sample,
        "invoice_id": key,
        "customer_id": customer,
    }
    return messages.PAYMENT_DETECTED.message(
        told | (payload or {}),  # type: ignore[arg-type]
        key=key,
        customer_id=customer,
    )


async def put(
    db: Database,
    clock: ManualClock,
    key: str,
    payload: dict[str, Any] | None = None,
    *,
    customer: int | None = CUSTOMER,
) -> bool:
    async with db.transaction() as conn:
        if customer is not None:
            await ensure_customer(conn, customer, clock.now_ms())
        written = await outbox.enqueue(
            conn, message(key, payload, customer=customer), now_ms=clock.now_ms()
        )
        return written == 1


async def row(db: Database, message_id: int) -> Any:
    async with db.read() as conn:
        return (
            await conn.execute(select(outbox_table).where(outbox_table.c.id == message_id))
        ).one()


async def stats(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return await outbox.stats(conn)


async def claim_one(db: Database, clock: ManualClock, lease_ms: int = 60_000) -> OutboxMessage:
    [message] = await claim_batch(db, now_ms=clock.now_ms(), lease_ms=lease_ms)
    return message


async def test_same_key_twice_is_one_message(db: Database, clock: ManualClock) -> None:
    assert await put(db, clock, "k1") is True
    assert await put(db, clock, "k1", {"received": "other"}) is False
    assert await stats(db) == {"pending": 1, "sent": 0, "failed": 0, "unreachable": 0}


async def test_a_rolled_back_event_leaves_no_message(db: Database, clock: ManualClock) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await outbox.enqueue(conn, message("k", customer=None), now_ms=clock.now_ms())
            raise RuntimeError("the event failed")
    assert await claim_batch(db, now_ms=clock.now_ms()) == []


async def test_amounts_travel_as_exact_strings(db: Database, clock: ManualClock) -> None:
    payload = {"amount": Decimal("29.0037"), "received": Decimal("0.0000001")}
    await put(db, clock, "k", payload)
    claimed = await claim_one(db, clock)
    assert (claimed.payload["amount"], claimed.payload["received"]) == ("29.0037", "0.0000001")
    assert (claimed.kind, claimed.audience, claimed.customer_id) == (
        "payment.detected",
        "customer",
        CUSTOMER,
    )
    rights = messages.ADMIN_CHAT_RIGHTS.message(
        {"problems": [Decimal("1E+2")]},  # type: ignore[list-item]
        key="list",
    )
    async with db.transaction() as conn:
        await outbox.enqueue(conn, rights, now_ms=clock.now_ms())
    async with db.read() as conn:
        stored = (
            await conn.execute(
                select(outbox_table.c.payload).where(outbox_table.c.dedupe_key == "list")
            )
        ).scalar_one()
    assert json.loads(stored)["problems"] == ["100"]


async def test_bad_messages_are_refused(db: Database, clock: ManualClock) -> None:
    async with db.transaction() as conn:
        with pytest.raises(TypeError, match="float"):
            await outbox.enqueue(
                conn, message("f", {"deposit_amount": {"usd": 29.0}}, customer=None), now_ms=0
            )
        no_customer = messages.PAYMENT_DETECTED.message(
            messages.PAYMENT_DETECTED.sample, key="c", customer_id=None
        )
        with pytest.raises(ValueError):
            await outbox.enqueue(conn, no_customer, now_ms=0)
        with pytest.raises(ValueError):
            await outbox.enqueue(conn, message("k" * 201, customer=None), now_ms=0)


async def test_claim_then_sent(db: Database, clock: ManualClock) -> None:
    await put(db, clock, "a")
    await put(db, clock, "b", customer=None)
    first, second = await claim_batch(db, now_ms=clock.now_ms())
    assert [first.payload["invoice_id"], second.payload["invoice_id"]] == ["a", "b"]  # oldest first
    assert second.audience == "admins" and second.customer_id is None
    assert await claim_batch(db, now_ms=clock.now_ms()) == []  # both are claimed
    assert await mark_sent(db, first, now_ms=clock.now_ms()) is True
    assert await mark_sent(db, first, now_ms=clock.now_ms()) is False
    assert (await row(db, first.id)).sent_at == clock.now_ms()
    assert await stats(db) == {"pending": 1, "sent": 1, "failed": 0, "unreachable": 0}
    clock.advance(HOUR_MS)
    [again] = await claim_batch(db, now_ms=clock.now_ms())  # only the unmarked one returns
    assert again.id == second.id


async def test_a_crashed_sender_s_claim_lapses_and_the_message_is_retried(
    db: Database, clock: ManualClock
) -> None:
    await put(db, clock, "a")
    lost = await claim_one(db, clock, lease_ms=60_000)
    clock.advance(59_999)
    assert await claim_batch(db, now_ms=clock.now_ms()) == []
    clock.advance(1)
    retaken = await claim_one(db, clock)
    assert retaken.id == lost.id and retaken.claim_token != lost.claim_token
    assert await mark_sent(db, lost, now_ms=clock.now_ms()) is False  # the old claim is void
    await mark_retry(db, lost, now_ms=clock.now_ms(), error="stale")  # changes nothing either
    assert (await row(db, lost.id)).attempts == 0
    assert await mark_sent(db, retaken, now_ms=clock.now_ms()) is True


async def test_a_jump_of_the_exchange_clock_never_frees_a_claim_being_sent(
    db: Database, clock: ManualClock
) -> None:
    """Claims are timed on the host's clock: when the exchange clock's offset is measured
    again and jumps two minutes, a second sender in the same process (the poll's or the chat
    access run's) must not take the message the first is sending."""
    await put(db, clock, "a")
    host = clock.now_ms()
    [taken] = await claim_batch(db, now_ms=clock.now_ms(), lease_now_ms=host, lease_ms=60_000)
    jumped = clock.now_ms() + 2 * 60_000
    assert await claim_batch(db, now_ms=jumped, lease_now_ms=host + 1_000) == []
    assert await reassert(db, taken, now_ms=jumped, lease_now_ms=host + 2_000, hold_ms=10_000)
    assert await claim_batch(db, now_ms=jumped, lease_now_ms=host + 11_000) == []
    [again] = await claim_batch(db, now_ms=jumped, lease_now_ms=host + 12_001)
    assert again.id == taken.id  # the claim lapses on the host's clock, as a crash's would


async def test_concurrent_claims_never_share_a_message(db: Database, clock: ManualClock) -> None:
    for i in range(40):
        await put(db, clock, f"m{i}", customer=100 + i)  # 40 recipients: 40 claimable at once
    batches = await asyncio.gather(
        *(claim_batch(db, now_ms=clock.now_ms(), limit=15) for _ in range(4))
    )
    ids = [m.id for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_postgres_claims_skip_rows_another_claimer_has_locked(
    db: Database, clock: ManualClock
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite transactions are exclusive")
    for i in range(3):
        await put(db, clock, f"m{i}", customer=100 + i)
    async with db.transaction() as other:  # another replica, mid-claim on the oldest message
        locked = (
            await other.execute(
                select(outbox_table.c.id).order_by(outbox_table.c.id).limit(1).with_for_update()
            )
        ).scalar_one()
        batch = await asyncio.wait_for(claim_batch(db, now_ms=clock.now_ms()), timeout=5)
        assert locked not in [m.id for m in batch] and len(batch) == 2


async def test_retry_backs_off_exponentially(db: Database, clock: ManualClock) -> None:
    await put(db, clock, "a")
    for attempt, delay in enumerate([5_000, 10_000, 20_000, 40_000]):
        message = await claim_one(db, clock)
        assert message.attempts == attempt
        await mark_retry(db, message, now_ms=clock.now_ms(), error="timed out")
        stored = await row(db, message.id)
        assert (stored.next_attempt_at, stored.last_error) == (clock.now_ms() + delay, "timed out")
        clock.advance(delay - 1)
        assert await claim_batch(db, now_ms=clock.now_ms()) == []
        clock.advance(1)
    assert [backoff_ms(n) for n in (0, 1, 9, 10, 50, 10_000)] == [
        5_000,
        10_000,
        2_560_000,
        HOUR_MS,
        HOUR_MS,
        HOUR_MS,
    ]


async def test_retry_after_is_honoured(db: Database, clock: ManualClock) -> None:
    await put(db, clock, "a")
    message = await claim_one(db, clock)
    await mark_retry(db, message, now_ms=clock.now_ms(), error="429", retry_after_ms=17_000)
    clock.advance(16_999)
    assert await claim_batch(db, now_ms=clock.now_ms()) == []
    clock.advance(1)
    assert (await claim_one(db, clock)).attempts == 1


async def test_gives_up_after_three_days(db: Database, clock: ManualClock) -> None:
    await put(db, clock, "a")
    clock.advance(3 * DAY_MS - 1)
    message = await claim_one(db, clock)
    await mark_retry(db, message, now_ms=clock.now_ms(), error="x" * 1000)
    assert (await row(db, message.id)).status == "pending"
    clock.advance(HOUR_MS)
    message = await claim_one(db, clock)
    await mark_retry(db, message, now_ms=clock.now_ms(), error="network down")
    assert await stats(db) == {"pending": 0, "sent": 0, "failed": 1, "unreachable": 0}
    clock.advance(DAY_MS)
    assert await claim_batch(db, now_ms=clock.now_ms()) == []
    async with db.read() as conn:
        [failed] = await outbox.list_failed(conn)
    assert (failed.id, failed.attempts, failed.last_error) == (message.id, 2, "network down")


async def test_long_errors_are_truncated_to_fit(db: Database, clock: ManualClock) -> None:
    await put(db, clock, "a")
    message = await claim_one(db, clock)
    await mark_retry(db, message, now_ms=clock.now_ms(), error="é" * 1000)
    assert (await row(db, message.id)).last_error == "é" * 300


async def test_a_blocked_bot_marks_the_customer_unreachable(
    db: Database, clock: ManualClock
) -> None:
    await put(db, clock, "a")
    message = await claim_one(db, clock)
    await outbox.mark_unreachable(db, message, now_ms=clock.now_ms())
    assert await stats(db) == {"pending": 0, "sent": 0, "failed": 0, "unreachable": 1}
    async with db.read() as conn:
        flag = (
            await conn.execute(select(customers.c.unreachable).where(customers.c.id == CUSTOMER))
        ).scalar_one()
    assert flag is True
    clock.advance(DAY_MS)
    assert await claim_batch(db, now_ms=clock.now_ms()) == []


async def test_payload_is_stored_as_json_text(db: Database, clock: ManualClock) -> None:
    await put(db, clock, "a", {"received": "1.5"})
    stored = await row(db, 1)
    assert json.loads(stored.payload) == {
        **messages.PAYMENT_DETECTED.sample,
        "invoice_id": "a",
        "customer_id": CUSTOMER,
        "received": "1.5",
    }
    assert (stored.status, stored.attempts, stored.created_at) == ("pending", 0, clock.now_ms())


async def test_an_admin_message_about_a_customer_never_flags_that_customer(
    db: Database, clock: ManualClock
) -> None:
    async with db.transaction() as conn:
        await ensure_customer(conn, CUSTOMER, clock.now_ms())
        alert = messages.ADMIN_ON_HOLD.message(
            messages.ADMIN_ON_HOLD.sample,
            key="a",
            customer_id=CUSTOMER,  # the customer the alert is about
        )
        await outbox.enqueue(conn, alert, now_ms=clock.now_ms())
    message = await claim_one(db, clock)
    await outbox.mark_unreachable(db, message, now_ms=clock.now_ms())
    assert (await stats(db))["unreachable"] == 1
    async with db.read() as conn:
        flag = (
            await conn.execute(select(customers.c.unreachable).where(customers.c.id == CUSTOMER))
        ).scalar_one()
    assert flag is False


# --- order per recipient -------------------------------------------------------------------------


async def claimed_keys(db: Database, clock: ManualClock) -> list[str]:
    """Claim what is due now; the payloads' keys, oldest first."""
    return [m.payload["invoice_id"] for m in await claim_batch(db, now_ms=clock.now_ms())]


async def test_a_message_waits_while_an_earlier_one_to_its_customer_waits_for_a_retry(
    db: Database, clock: ManualClock
) -> None:
    """Telegram said "retry after 30 s" for the first message: the second, due after the
    usual 5 s, still waits for it, and so does one written a second later; other customers'
    messages do not."""
    await put(db, clock, "detected")
    first = await claim_one(db, clock)
    await mark_retry(db, first, now_ms=clock.now_ms(), error="429", retry_after_ms=30_000)
    clock.advance(1_000)
    await put(db, clock, "received")
    await put(db, clock, "someone else's", customer=43)
    assert await claimed_keys(db, clock) == ["someone else's"]
    clock.advance(6_000)
    assert await claimed_keys(db, clock) == []
    clock.advance(30_000)
    [again] = await claim_batch(db, now_ms=clock.now_ms())
    assert again.payload["invoice_id"] == "detected"
    assert await claimed_keys(db, clock) == []  # claimed is still pending: "received" waits
    assert await mark_sent(db, again, now_ms=clock.now_ms())
    assert await claimed_keys(db, clock) == ["received"]


async def test_one_message_per_customer_per_claim_in_the_order_written(
    db: Database, clock: ManualClock
) -> None:
    for key in ("a1", "a2", "a3"):
        await put(db, clock, key)
    await put(db, clock, "b1", customer=43)
    sent: list[str] = []
    while batch := await claim_batch(db, now_ms=clock.now_ms()):
        for message in batch:
            sent.append(message.payload["invoice_id"])
            assert await mark_sent(db, message, now_ms=clock.now_ms())
    assert sent == ["a1", "b1", "a2", "a3"]


async def test_given_up_and_unreachable_messages_no_longer_hold_the_later_ones(
    db: Database, clock: ManualClock
) -> None:
    await put(db, clock, "old")
    clock.advance(3 * DAY_MS)
    await put(db, clock, "new")
    old = await claim_one(db, clock)
    await mark_retry(db, old, now_ms=clock.now_ms(), error="network down")  # three days: failed
    assert (await row(db, old.id)).status == "failed"
    new = await claim_one(db, clock)
    assert new.payload["invoice_id"] == "new"
    await outbox.mark_unreachable(db, new, now_ms=clock.now_ms())  # blocked the bot ...
    await put(db, clock, "after unblocking")  # ... then wrote again
    assert await claimed_keys(db, clock) == ["after unblocking"]


async def test_a_refused_message_is_given_up_at_once(db: Database, clock: ManualClock) -> None:
    await put(db, clock, "refused")
    await put(db, clock, "next")
    refused = await claim_one(db, clock)
    await outbox.mark_failed(db, refused, now_ms=clock.now_ms(), error="bad request: too long")
    stored = await row(db, refused.id)
    assert (stored.status, stored.attempts, stored.last_error) == (
        "failed",
        1,
        "bad request: too long",
    )
    assert await claimed_keys(db, clock) == ["next"]


async def test_admin_alerts_keep_their_order_and_never_hold_a_customer_s_messages(
    db: Database, clock: ManualClock
) -> None:
    async with db.transaction() as conn:
        await ensure_customer(conn, CUSTOMER, clock.now_ms())
        for key in ("alert 1", "alert 2"):
            alert = messages.ADMIN_ON_HOLD.message(
                {**messages.ADMIN_ON_HOLD.sample, "invoice_id": key},
                key=key,
                customer_id=CUSTOMER,  # the customer the alert is about
            )
            await outbox.enqueue(conn, alert, now_ms=clock.now_ms())
    await put(db, clock, "to the customer")
    await put(db, clock, "alert 3", customer=None)
    first, to_customer = await claim_batch(db, now_ms=clock.now_ms())
    assert [first.payload["invoice_id"], to_customer.payload["invoice_id"]] == [
        "alert 1",
        "to the customer",
    ]
    await mark_retry(db, first, now_ms=clock.now_ms(), error="429", retry_after_ms=10_000)
    clock.advance(5_000)
    assert await claimed_keys(db, clock) == []  # alerts 2 and 3 wait for alert 1
    clock.advance(5_000)
    assert await claimed_keys(db, clock) == ["alert 1"]


# --- fencing -------------------------------------------------------------------------------------

LEASE_TTL = 3_000


async def test_a_sender_that_lost_the_lease_claims_nothing_and_skips_what_it_had(
    db: Database, clock: ManualClock
) -> None:
    """The lease is held at the claim and re-asserted right before each call: a holder that
    was paused past its lease learns it there, before sending anything more."""
    old = await acquire(db, name="jobs", holder="A", now_ms=clock.now_ms(), ttl_ms=LEASE_TTL)
    assert old is not None
    await put(db, clock, "mine")
    [mine] = await claim_batch(db, now_ms=clock.now_ms(), fence=old)
    assert await reassert(db, mine, now_ms=clock.now_ms(), hold_ms=60_000, fence=old)
    clock.advance(LEASE_TTL)  # A paused: its lease lapsed, B took it over
    new = await acquire(db, name="jobs", holder="B", now_ms=clock.now_ms(), ttl_ms=LEASE_TTL)
    assert new is not None and new.token == old.token + 1
    await put(db, clock, "later", customer=43)
    assert await claim_batch(db, now_ms=clock.now_ms(), fence=old) == []
    assert not await reassert(db, mine, now_ms=clock.now_ms(), hold_ms=60_000, fence=old)
    assert await claimed_keys(db, clock) == ["later"]  # "mine" is still claimed by A ...
    # ... and what A did send before it stopped is still recorded under its claim
    assert await mark_sent(db, mine, now_ms=clock.now_ms()) is True


async def test_a_claim_taken_over_is_not_reasserted_and_a_released_one_is_free_at_once(
    db: Database, clock: ManualClock
) -> None:
    await put(db, clock, "a")
    lost = await claim_one(db, clock, lease_ms=1_000)
    clock.advance(1_000)
    taken = await claim_one(db, clock)  # the first claim lapsed: another sender took it
    assert not await reassert(db, lost, now_ms=clock.now_ms(), hold_ms=60_000)
    await release(db, [lost])  # a stale release changes nothing
    assert await claim_batch(db, now_ms=clock.now_ms()) == []
    assert await reassert(db, taken, now_ms=clock.now_ms(), hold_ms=60_000)
    clock.advance(59_999)
    assert await claim_batch(db, now_ms=clock.now_ms()) == []  # held for the call
    await release(db, [taken])
    assert (await claim_one(db, clock)).id == taken.id


async def test_the_admins_an_alert_reached_are_kept_for_whoever_sends_it_next(
    db: Database, clock: ManualClock
) -> None:
    await put(db, clock, "alert", customer=None)
    first = await claim_one(db, clock)
    assert first.sent_to == frozenset()
    assert await outbox.mark_reached(db, first, {901})
    await mark_retry(db, first, now_ms=clock.now_ms(), error="429 for admin 902")
    clock.advance(HOUR_MS)
    again = await claim_one(db, clock)
    assert again.sent_to == {901}
    assert not await outbox.mark_reached(db, first, {901, 902})  # an old claim records nothing
