"""Delivering merchant events to a real HTTP receiver on loopback (fakes/receiver.py): signed,
in order per customer, retried while the receiver is down, given up after 3 days with one admin
alert, redelivered on request. Both databases (the claim query differs on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from fakes.receiver import Received, WebhookReceiver
from payments.botstate.lease import acquire
from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS, ManualClock
from payments.delivery.webhooks import UnknownUrl, WebhookSender, verify
from payments.delivery.webhooks import events as ev
from payments.delivery.webhooks.store import claim_due, cursor_key, sync_urls, url_id
from payments.storage import Database
from payments.storage.kv import get_value, set_value
from payments.storage.schema import merchant_events, outbox, webhook_attempts, webhook_deliveries
from tests.paths import REPO

SECRET = "merchant-secret-0123456789"
ROOT = REPO


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


async def record(db: Database, clock: ManualClock, key: str, order: str, **data: Any) -> None:
    async with db.transaction() as conn:
        await ev.record(conn, ev.INVOICE_PAID, key, order, {"key": key, **data}, clock.now_ms())


async def rows(db: Database, table: Any) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [
            dict(r) for r in (await conn.execute(select(table).order_by(table.c.id))).mappings()
        ]


def keys(received: list[Received]) -> list[str]:
    return [r.json()["data"]["key"] for r in received]


async def test_an_event_arrives_signed_and_verifies(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    await record(db, clock, "history", "customer:1")  # before webhooks were switched on
    sender = WebhookSender(db, [receiver.url], SECRET, clock)
    try:
        await sender.start()
        await record(db, clock, "new", "customer:1", amount="29.0007")
        report = await sender.run()
    finally:
        await sender.close()

    assert (report.delivered, report.retried, report.failed) == (1, 0, 0)
    [got] = receiver.received  # the history was not sent
    assert verify(SECRET, got.body, got.header("X-Subsbot-Signature"), now=clock.now_ms() / 1000)
    event = got.json()
    assert event["type"] == "invoice.paid" and event["data"] == {"key": "new", "amount": "29.0007"}
    assert re.fullmatch(r"evt_[0-9a-f]{24}", event["id"])
    assert event["timestamp"] == clock.now_ms() // 1000
    assert got.header("X-Subsbot-Timestamp") == str(event["timestamp"])
    assert got.header("X-Subsbot-Event") == "invoice.paid"
    assert got.header("Content-Type") == "application/json"
    assert got.header("User-Agent") == "subsbot"
    [delivery] = await rows(db, webhook_deliveries)
    assert got.header("X-Subsbot-Delivery") == str(delivery["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "delivered",
        1,
        200,
    )
    [attempt] = await rows(db, webhook_attempts)
    assert (attempt["delivery_id"], attempt["status_code"], attempt["error"]) == (
        delivery["id"],
        200,
        None,
    )


async def test_a_receiver_that_was_down_gets_everything_in_order_per_customer(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    sender = WebhookSender(db, [receiver.url], SECRET, clock)
    try:
        await sender.start()
        receiver.stop()
        for key, order in [("a1", "customer:1"), ("b1", "customer:2"), ("a2", "customer:1")]:
            await record(db, clock, key, order)
        down = await sender.run()
        assert (down.delivered, down.retried) == (0, 2)  # the first event of each customer
        for key, order in [("b2", "customer:2"), ("a3", "customer:1"), ("c1", "deposit:9")]:
            await record(db, clock, key, order)
        for _ in range(3):
            clock.advance(HOUR_MS)
            await sender.run()

        receiver.start()  # back, on the same port
        clock.advance(HOUR_MS)
        back = await sender.run()
    finally:
        await sender.close()

    assert back.delivered == 6 and back.retried == 0
    got = keys(receiver.received)
    assert sorted(got) == ["a1", "a2", "a3", "b1", "b2", "c1"]
    assert [k for k in got if k.startswith("a")] == ["a1", "a2", "a3"]
    assert [k for k in got if k.startswith("b")] == ["b1", "b2"]
    assert all(
        verify(SECRET, r.body, r.header("X-Subsbot-Signature"), now=clock.now_ms() / 1000)
        for r in receiver.received
    )
    deliveries = await rows(db, webhook_deliveries)
    attempts = await rows(db, webhook_attempts)
    assert {d["status"] for d in deliveries} == {"delivered"}
    for delivery in deliveries:  # every attempt is recorded
        mine = [a for a in attempts if a["delivery_id"] == delivery["id"]]
        assert len(mine) == delivery["attempts"]
        assert mine[-1]["status_code"] == 200
        assert all(a["status_code"] is None and a["error"] for a in mine[:-1])
    assert max(d["attempts"] for d in deliveries) == 5  # a1 and b1: four refused, then sent


async def test_given_up_after_three_days_with_one_alert_then_redelivered(
    db: Database, clock: ManualClock, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{receiver.url}?token=query-token-42"
    sender = WebhookSender(db, [url], SECRET, clock)
    receiver.answer(500)
    caplog.set_level(logging.INFO, logger="payments")  # httpx: WARNING in the bot (bot.logs)
    try:
        await sender.start()
        for key, order in [("a1", "customer:1"), ("a2", "customer:1"), ("b1", "customer:2")]:
            await record(db, clock, key, order)
        start = clock.now_ms()
        while clock.now_ms() < start + 3 * DAY_MS + 2 * HOUR_MS:
            await sender.run()
            clock.advance(HOUR_MS)
        deliveries = await rows(db, webhook_deliveries)
        # a2 waited behind a1 (same customer): it gets three days of its own from its first try
        assert [d["status"] for d in deliveries] == ["failed", "pending", "failed"]
        assert 1 <= deliveries[1]["attempts"] <= 3
        while clock.now_ms() < start + 6 * DAY_MS + 3 * HOUR_MS:
            await sender.run()
            clock.advance(HOUR_MS)
        deliveries = await rows(db, webhook_deliveries)
        assert [d["status"] for d in deliveries] == ["failed"] * 3
        assert deliveries[1]["attempts"] > 50
        assert all(d["last_status"] == 500 for d in deliveries)
        alerts = [m for m in await rows(db, outbox) if m["kind"] == "admin.webhook_failed"]
        assert len(alerts) == 2  # at most one a day per URL: day 3 (a1, b1) and day 6 (a2)
        alert = json.loads(alerts[0]["payload"])
        assert alert["url"] == receiver.url and alert["error"] == "HTTP 500"
        overview = (await sender.overview())[0]
        assert (overview.delivered, overview.pending, overview.failed) == (0, 0, 3)
        assert {p.status for p in overview.problems} == {"failed"}

        receiver.answer(200)
        assert await sender.redeliver(None) == 3
        again = await sender.run()
        assert again.delivered == 3
        got = keys(receiver.accepted())  # two customers at once: in order per customer
        assert sorted(got) == ["a1", "a2", "b1"] and got.index("a1") < got.index("a2")

        first = deliveries[0]["id"]
        assert await sender.redeliver(first) == 1  # a delivered one can be sent again
        assert await sender.redeliver(10_000) == 0
        await sender.run()
        assert keys(receiver.accepted()) == [*got, "a1"]
    finally:
        await sender.close()

    assert all(r.query == "token=query-token-42" for r in receiver.received)
    assert "query-token-42" not in caplog.text
    assert receiver.url in caplog.text  # the log names scheme, host and path
    stored = json.dumps([await rows(db, webhook_attempts), await rows(db, outbox)], default=str)
    assert "query-token-42" not in stored and SECRET not in stored


async def test_redirects_are_not_followed_and_time_outs_are_retried(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    sender = WebhookSender(db, [receiver.url], SECRET, clock, timeout_s=0.3)
    try:
        await sender.start()
        await record(db, clock, "a1", "customer:1")
        receiver.answer(302)
        await sender.run()
        clock.advance(HOUR_MS)
        receiver.hang(5)
        await sender.run()
    finally:
        await sender.close()
    [delivery] = await rows(db, webhook_deliveries)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 2)
    first, second = await rows(db, webhook_attempts)
    assert (first["status_code"], first["error"]) == (302, "HTTP 302")
    assert second["status_code"] is None and second["error"].startswith("ReadTimeout")


async def test_a_claimed_event_holds_back_the_later_ones_of_its_customer(
    db: Database, clock: ManualClock
) -> None:
    url = "http://127.0.0.1:9/hooks"
    await sync_urls(db, [url], now_ms=clock.now_ms())  # a new URL: starts here
    for key, order in [("a1", "customer:1"), ("a2", "customer:1"), ("b1", "customer:2")]:
        await record(db, clock, key, order)
    await sync_urls(db, [url], now_ms=clock.now_ms())  # again: still one delivery per event
    assert len(await rows(db, webhook_deliveries)) == 3

    first = await claim_due(db, [url], now_ms=clock.now_ms())
    assert sorted(c.data["key"] for c in first) == ["a1", "b1"]
    assert await claim_due(db, [url], now_ms=clock.now_ms()) == []  # a2 waits for a1
    assert await claim_due(db, ["http://elsewhere.example/"], now_ms=clock.now_ms()) == []


async def test_two_senders_claiming_at_once_never_share_or_reorder(
    db: Database, clock: ManualClock
) -> None:
    url = "http://127.0.0.1:9/hooks"
    await sync_urls(db, [url], now_ms=clock.now_ms())
    for n in range(6):  # three customers, two events each
        await record(db, clock, f"c{n % 3}-{n // 3}", f"customer:{n % 3}")
    claims = await asyncio.gather(
        *(claim_due(db, [url], now_ms=clock.now_ms(), limit=2) for _ in range(4))
    )
    claimed = sorted(c.data["key"] for batch in claims for c in batch)
    assert claimed == ["c0-0", "c1-0", "c2-0"]  # each customer's first event, once


def docs_snippet() -> str:
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = page.split("## Webhooks to your backend", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the webhook section of docs/api.md has no Python snippet"
    return match[1]


async def test_the_documented_snippet_accepts_a_real_delivery_and_refuses_tampering(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    namespace: dict[str, Any] = {}
    exec(docs_snippet(), namespace)  # the documentation's own code, verbatim
    verify_webhook = namespace["verify_webhook"]

    sender = WebhookSender(db, [receiver.url], SECRET, clock)
    try:
        await sender.start()
        await record(db, clock, "a1", "customer:1", amount="29.0007")
        await sender.run()
    finally:
        await sender.close()
    [got] = receiver.received
    signature = got.header("X-Subsbot-Signature")
    now = clock.now_ms() / 1000

    event = verify_webhook(SECRET, got.body, signature, now=now)
    assert event["data"]["amount"] == "29.0007"
    with pytest.raises(ValueError, match="signature"):
        verify_webhook(SECRET, got.body.replace(b"29.0007", b"29.0008"), signature, now=now)
    with pytest.raises(ValueError, match="signature"):
        verify_webhook("not-the-secret-000000", got.body, signature, now=now)
    with pytest.raises(ValueError, match="timestamp"):
        verify_webhook(SECRET, got.body, signature, now=now + 301)


async def test_an_event_whose_transaction_commits_late_is_still_delivered(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    """A primary paused inside a decision, with its clock an hour behind: its event gets an
    older id and creation time than one that commits meanwhile, and commits only after a run
    delivered that one and ten minutes passed. (On SQLite one writer commits in id order, so
    the late event commits first there; the outcome must be the same.)"""
    behind = ManualClock(clock.now_ms() - HOUR_MS)
    sender = WebhookSender(db, [receiver.url], SECRET, clock)

    async def meanwhile() -> None:
        await record(db, clock, "on-time", "customer:2")
        clock.advance(10 * MINUTE_MS)
        await sender.run()

    try:
        await sender.start()
        async with db.transaction() as conn:
            await ev.record(
                conn, ev.INVOICE_PAID, "late", "customer:1", {"key": "late"}, behind.now_ms()
            )
            if db.dialect == "postgresql":
                await meanwhile()  # while the late event's transaction is still open
        if db.dialect != "postgresql":
            await meanwhile()
        assert "on-time" in keys(receiver.accepted())
        clock.advance(10 * MINUTE_MS)
        await sender.run()
    finally:
        await sender.close()

    assert sorted(keys(receiver.accepted())) == ["late", "on-time"]
    deliveries = await rows(db, webhook_deliveries)
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]


async def test_a_url_added_again_later_does_not_replay_what_happened_meanwhile(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    other = "http://127.0.0.1:9/other"  # nothing listens there
    both = WebhookSender(db, [receiver.url, other], SECRET, clock)
    alone = WebhookSender(db, [other], SECRET, clock)
    again = WebhookSender(db, [receiver.url, other], SECRET, clock)
    try:
        await both.start()
        await record(db, clock, "before", "customer:1")
        await both.run()
        await alone.start()  # the receiver's URL was taken out of the settings
        await record(db, clock, "while-out", "customer:1")
        await alone.run()
        clock.advance(HOUR_MS)
        await again.start()  # ... and put back
        await record(db, clock, "after", "customer:1")
        await again.run()
    finally:
        for sender in (both, alone, again):
            await sender.close()
    assert keys(receiver.accepted()) == ["before", "after"]


async def test_pending_deliveries_to_urls_that_are_gone_are_told_once_then_moved_or_dropped(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    """The token in the URL was rotated while the receiver was down; another URL was retired."""
    old = f"{receiver.url}?token=old-token-1"
    new = f"{receiver.url}?token=new-token-2"
    retired = "http://127.0.0.1:9/retired?token=retired-token-3"
    before = WebhookSender(db, [old, retired], SECRET, clock)
    after = WebhookSender(db, [new], SECRET, clock)
    try:
        await before.start()
        receiver.stop()
        for key, order in [("a1", "customer:1"), ("a2", "customer:1"), ("b1", "customer:2")]:
            await record(db, clock, key, order)
        await before.run()  # refused: all pending
        clock.advance(MINUTE_MS)

        gone = await after.start()
        assert {g.id: (g.url, g.pending) for g in gone} == {
            url_id(old): (receiver.url, 3),
            url_id(retired): ("http://127.0.0.1:9/retired", 3),
        }
        assert gone == await after.start()  # a restart with the same settings: no news
        alerts = [m for m in await rows(db, outbox) if m["kind"] == "admin.webhook_gone"]
        assert len(alerts) == 1
        assert json.loads(alerts[0]["payload"])["count"] == 6
        await record(db, clock, "c1", "customer:1")  # only to the URL in force
        assert {
            d["url"] for d in await rows(db, webhook_deliveries) if d["status"] == "pending"
        } == {
            old,
            new,
            retired,
        }

        unchanged = await rows(db, webhook_deliveries)
        for bad in [
            ("ffffffff", url_id(new)),  # no such URL
            (url_id(new), url_id(new)),  # in force, not gone
            (url_id(old), url_id(retired)),  # the target is not configured
        ]:
            with pytest.raises(UnknownUrl):
                await after.move(*bad)
        with pytest.raises(UnknownUrl):
            await after.drop(url_id(new))
        assert await rows(db, webhook_deliveries) == unchanged

        receiver.start()
        assert await after.move(url_id(old), url_id(new)) == (3, 0)
        assert await after.drop(url_id(retired)) == 3
        assert await after.gone() == []
        assert await after.start() == []  # settled: a restart tells nothing new
        assert [m["kind"] for m in await rows(db, outbox)].count("admin.webhook_gone") == 1
        for _ in range(3):  # one event of a customer per run
            await after.run()
    finally:
        await before.close()
        await after.close()

    got = keys(receiver.accepted())  # customer 1's in the order they happened
    assert sorted(got) == ["a1", "a2", "b1", "c1"]
    assert [k for k in got if k != "b1"] == ["a1", "a2", "c1"]
    assert {r.query for r in receiver.accepted()} == {"token=new-token-2"}
    statuses = {(d["url"], d["status"]) for d in await rows(db, webhook_deliveries)}
    assert statuses == {(new, "delivered"), (retired, "dropped")}
    stored = json.dumps(await rows(db, outbox))
    assert "old-token-1" not in stored and "retired-token-3" not in stored


async def test_a_run_sends_nothing_without_the_lease_or_when_it_would_outlast_it(
    db: Database, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    lease_clock = ManualClock(clock.now_ms())
    sender = WebhookSender(db, [receiver.url], SECRET, clock, lease_clock=lease_clock)
    try:
        await sender.start()
        await record(db, clock, "a1", "customer:1")
        ours = await acquire(
            db, name="jobs", holder="us", now_ms=lease_clock.now_ms(), ttl_ms=60_000
        )
        assert ours is not None

        # live() says the lease would not outlast a POST: no claim at all
        report = await sender.run(fence=ours, live=lambda needed_s: needed_s > 60)
        assert (report.delivered, report.skipped) == (0, 0)
        # ... or says so only once the delivery is claimed: not sent, the claim is given back
        answers = iter([True, False])
        report = await sender.run(fence=ours, live=lambda needed_s: next(answers, False))
        assert (report.delivered, report.skipped) == (0, 1)
        assert receiver.received == []

        # claimed (the claim given back is due at once), then paused before the POST until
        # the lease lapsed: the claim is re-asserted with the lease, so nothing is sent
        calls: list[float] = []

        def paused(needed_s: float) -> bool:
            calls.append(needed_s)
            if len(calls) == 2:
                lease_clock.advance(2 * MINUTE_MS)
            return True

        report = await sender.run(fence=ours, live=paused)
        assert (report.delivered, report.skipped) == (0, 1)
        assert calls[0] == sender.timeout_s and receiver.received == []

        # another replica holds the lease now: it claims nothing
        theirs = await acquire(
            db, name="jobs", holder="them", now_ms=lease_clock.now_ms(), ttl_ms=60_000
        )
        assert theirs is not None
        report = await sender.run(fence=ours, live=lambda needed_s: True)
        assert report.delivered == 0 and receiver.received == []

        clock.advance(2 * MINUTE_MS)  # the lapsed claim of the paused run is due again
        report = await sender.run(fence=theirs, live=lambda needed_s: True)
        assert report.delivered == 1
    finally:
        await sender.close()
    assert keys(receiver.accepted()) == ["a1"]
    [delivery] = await rows(db, webhook_deliveries)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)


async def test_an_earlier_versions_cursor_is_caught_up_once_then_forgotten(
    db: Database, clock: ManualClock
) -> None:
    """Upgrading from the cursor-based fan-out: a URL in force gets the events its cursor had not
    reached yet; the cursor of a URL taken out is forgotten, so adding it back replays nothing."""
    url, out = "http://127.0.0.1:9/hooks", "http://127.0.0.1:9/out"
    for key in ("e1", "e2", "e3"):
        await record(db, clock, key, "customer:1")
    async with db.transaction() as conn:
        first = (await conn.execute(select(merchant_events.c.id).order_by("id"))).scalars().first()
        await set_value(conn, cursor_key(url), int(first or 0), clock.now_ms())
        await set_value(conn, cursor_key(out), 0, clock.now_ms())

    await sync_urls(db, [url], now_ms=clock.now_ms())
    await sync_urls(db, [url, out], now_ms=clock.now_ms())
    claimed = await claim_due(db, [url, out], now_ms=clock.now_ms())
    assert [(c.url, c.data["key"]) for c in claimed] == [(url, "e2")]  # e3 waits behind e2
    assert len(await rows(db, webhook_deliveries)) == 2
    async with db.read() as conn:
        assert await get_value(conn, cursor_key(url)) is None
        assert await get_value(conn, cursor_key(out)) is None
