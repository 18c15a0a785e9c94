"""History retention: the daily prune deletes what is old and settled, keeps what money and
audits need and everything still pending or failed, runs in bounded chunks, and can be run
again without effect. On SQLite and PostgreSQL (the ``db`` fixture), and as the bot's job: on
the replica holding the lease only."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.config import load_settings
from bot.jobs import PRUNE, Timings
from payments.botstate.lease import LeaseStore
from payments.clock import DAY_MS
from payments.errors import ConfigError
from payments.ops.retention import PruneReport, prune
from payments.storage import Database, schema
from tests.botkit import FAST, BotWorld
from tests.conftest import PG_URL
from tests.helpers_db import add_invoice

T0 = 1_790_000_000_000  # when the old history happened
NOW = T0 + 100 * DAY_MS  # when the prune runs: RETENTION_DAYS=90 puts the cutoff at T0 + 10 d
RECENT = NOW - DAY_MS


async def _count(db: Database, table: Any, *where: Any) -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(table)
        return int((await conn.execute(query.where(*where) if where else query)).scalar_one())


async def _ids(db: Database, column: Any) -> list[Any]:
    async with db.read() as conn:
        return sorted((await conn.execute(select(column))).scalars())


def _message(key: str, status: str, created: int, sent: int | None = None) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "audience": "customer",
        "customer_id": 1,
        "kind": "paid",
        "payload": "{}",
        "status": status,
        "attempts": 1,
        "next_attempt_at": created,
        "claimed_until": 0,
        "created_at": created,
        "sent_at": sent,
    }


def _deposit(dep_id: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "dep_id": dep_id,
        "currency": "USDT",
        "chain": "USDT-TRC20",
        "amount": "10",
        "amount_units": 1_000_000_000,
        "to_address": "placeholder",
        "tx_id": f"tx-{dep_id}",
        "from_wd_id": "",
        "type": "0",
        "state": "2",
        "ts": T0,
        "raw": json.dumps({"depId": dep_id, "amt": "10"}),
        "first_seen_at": T0,
        "updated_at": T0,
        "needs_decision": False,
        "disposition": "unmatched",
        "invoice_id": None,
        "match_kind": None,
        "note": "",
    }
    return row | values


async def _history(db: Database) -> None:
    """A shop's history: a year-old part (older than the cutoff) and a recent part."""
    async with db.transaction() as conn:
        for invoice_id, status, at in (
            ("OLDPAID", "paid", T0),
            ("OLDEXPIRED", "expired", T0),
            ("OLDPENDING", "pending", T0),  # still open (a stuck row): its photo stays
            ("NEWPAID", "paid", RECENT),
        ):
            await add_invoice(conn, invoice_id, now_ms=at)
            await conn.execute(
                update(schema.invoices)
                .where(schema.invoices.c.id == invoice_id)
                .values(status=status, paid_at=at if status == "paid" else None, updated_at=at)
            )
        await conn.execute(
            schema.deposits.insert(),
            [
                _deposit(
                    "d-paid", disposition="attached", invoice_id="OLDPAID", match_kind="exact"
                ),
                _deposit("d-stranger"),  # nobody's, decided a year ago: only its raw record goes
                _deposit("d-stranger-new", ts=RECENT, first_seen_at=RECENT, updated_at=RECENT),
                _deposit("d-undecided", disposition="new", needs_decision=True),
                _deposit("d-refunded", disposition="refunded"),
            ],
        )
        await conn.execute(
            schema.subscriptions.insert().values(
                id=1,
                customer_id=1,
                plan_id="pro",
                started_at=T0,
                ends_at=T0 + 30 * DAY_MS,
                status="expired",
                updated_at=T0,
            )
        )
        await conn.execute(
            schema.subscription_periods.insert().values(
                subscription_id=1,
                customer_id=1,
                plan_id="pro",
                invoice_id="OLDPAID",
                source="payment",
                days=30,
                credited_at=T0,
                starts_at=T0,
                ends_at=T0 + 30 * DAY_MS,
            )
        )
        await conn.execute(
            schema.claims.insert().values(
                invoice_id="OLDPAID",
                customer_id=1,
                reference="tx-d-paid",
                dep_id="d-paid",
                outcome="attached",
                created_at=T0,
            )
        )
        await conn.execute(
            schema.outbox.insert(),
            [
                _message("old-sent", "sent", T0, T0),
                _message("old-unreachable", "unreachable", T0),
                _message("old-pending", "pending", T0),
                _message("old-failed", "failed", T0),
                _message("new-sent", "sent", RECENT, RECENT),
            ],
        )
        events: list[tuple[str | None, int]] = [
            ("delivered", T0),  # 1: delivered a year ago -> event, delivery, attempts go
            ("failed", T0),  # 2: given up on -> kept with its event; old attempts go
            ("pending", T0),  # 3: still trying -> everything kept
            (None, T0),  # 4: no URL was configured -> the event goes
            ("delivered", RECENT),  # 5: recent -> kept
        ]
        for n, (outcome, at) in enumerate(events, 1):
            await conn.execute(
                schema.merchant_events.insert().values(
                    id=n,
                    event_key=f"k{n}",
                    public_id=f"evt_{n}",
                    type="invoice.paid",
                    order_key="c:1",
                    payload="{}",
                    created_at=at,
                )
            )
            if outcome is None:
                continue
            await conn.execute(
                schema.webhook_deliveries.insert().values(
                    id=n,
                    event_id=n,
                    url="https://merchant.example/hook",
                    order_key="c:1",
                    status=outcome,
                    attempts=2,
                    next_attempt_at=at,
                    give_up_at=at + 3 * DAY_MS,
                    claimed_until=0,
                    created_at=at,
                    delivered_at=at if outcome == "delivered" else None,
                )
            )
            await conn.execute(
                schema.webhook_attempts.insert(),
                [
                    {"delivery_id": n, "attempted_at": at, "status_code": 500, "duration_ms": 5},
                    {
                        "delivery_id": n,
                        "attempted_at": at + 1,
                        "status_code": 200,
                        "duration_ms": 5,
                    },
                ],
            )
        # the newest event and message of their tables (ids are never handed out twice)
        await conn.execute(
            schema.merchant_events.insert().values(
                id=6,
                event_key="k6",
                public_id="evt_6",
                type="invoice.paid",
                order_key="c:1",
                payload="{}",
                created_at=RECENT,
            )
        )
        await conn.execute(
            schema.invoice_messages.insert(),
            [
                {"chat_id": 1, "message_id": 1, "invoice_id": "OLDPAID", "created_at": T0},
                {"chat_id": 1, "message_id": 2, "invoice_id": "OLDEXPIRED", "created_at": T0},
                {"chat_id": 1, "message_id": 3, "invoice_id": "OLDPENDING", "created_at": T0},
                {"chat_id": 1, "message_id": 4, "invoice_id": "NEWPAID", "created_at": RECENT},
            ],
        )
        await conn.execute(
            schema.memberships.insert().values(
                id=1,
                customer_id=1,
                chat_id=-100,
                plan_id="pro",
                state="removed",
                updated_at=T0,
            )
        )
        await conn.execute(
            schema.access_links.insert(),
            [
                {
                    "link": "https://t.me/+old",
                    "membership_id": 1,
                    "chat_id": -100,
                    "created_at": T0,
                    "expires_at": T0 + DAY_MS,
                    "used_by": 1,
                },
                {
                    "link": "https://t.me/+new",
                    "membership_id": 1,
                    "chat_id": -100,
                    "created_at": RECENT,
                    "expires_at": RECENT + DAY_MS,
                    "used_by": None,
                },
            ],
        )
        await conn.execute(
            schema.claim_waits.insert(),
            [
                {"customer_id": 1, "invoice_id": "OLDPAID", "until": T0},
                {"customer_id": 2, "invoice_id": "NEWPAID", "until": NOW + 60_000},
            ],
        )


async def test_prune_deletes_old_settled_history_and_keeps_money_audit_and_open_work(
    db: Database,
) -> None:
    await _history(db)
    money_before = {
        table.name: await _count(db, table)
        for table in (
            schema.invoices,
            schema.deposits,
            schema.subscriptions,
            schema.subscription_periods,
            schema.claims,
            schema.memberships,
            schema.customers,
        )
    }

    report = await prune(db, now_ms=NOW, days=90)

    assert report == PruneReport(
        outbox=2,
        webhook_attempts=4,  # delivery 1's two and failed delivery 2's two
        webhook_deliveries=1,
        merchant_events=2,  # 1 (delivered) and 4 (no delivery)
        invoice_messages=2,
        access_links=1,
        claim_waits=1,
        deposit_payloads=1,
        chunks=8,
    )
    o = schema.outbox.c
    assert await _ids(db, o.dedupe_key) == ["new-sent", "old-failed", "old-pending"]
    assert await _ids(db, schema.merchant_events.c.id) == [2, 3, 5, 6]
    assert await _ids(db, schema.webhook_deliveries.c.id) == [2, 3, 5]
    a = schema.webhook_attempts.c
    assert sorted(set(await _ids(db, a.delivery_id))) == [3, 5]
    assert await _ids(db, schema.invoice_messages.c.invoice_id) == ["NEWPAID", "OLDPENDING"]
    assert await _ids(db, schema.access_links.c.link) == ["https://t.me/+new"]
    assert await _ids(db, schema.claim_waits.c.customer_id) == [2]
    # nothing money or audits need went, and no deposit row: only one raw record was emptied
    for name, before in money_before.items():
        assert await _count(db, schema.metadata.tables[name]) == before, name
    async with db.read() as conn:
        raw = dict(
            (await conn.execute(select(schema.deposits.c.dep_id, schema.deposits.c.raw))).all()
        )
    assert raw["d-stranger"] == ""
    for kept in ("d-paid", "d-stranger-new", "d-undecided", "d-refunded"):
        assert json.loads(raw[kept])["depId"] == kept

    again = await prune(db, now_ms=NOW, days=90)  # idempotent: a second run finds nothing
    assert again == PruneReport()


async def test_prune_keeps_everything_when_retention_is_off_or_history_is_young(
    db: Database,
) -> None:
    await _history(db)
    assert await prune(db, now_ms=NOW, days=0) == PruneReport()
    assert await prune(db, now_ms=T0 + DAY_MS, days=90) == PruneReport()
    assert await _count(db, schema.outbox) == 5
    assert await _count(db, schema.webhook_attempts) == 8


async def test_prune_works_through_a_backlog_in_chunks(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            schema.outbox.insert(),
            [_message(f"m{n}", "sent", T0 + n, T0 + n) for n in range(25)]
            + [_message("newest", "sent", RECENT, RECENT)],
        )
    report = await prune(db, now_ms=NOW, days=90, chunk=10)
    assert report.outbox == 25
    assert report.chunks == 3  # 10 + 10 + 5 rows, a transaction each
    assert await _ids(db, schema.outbox.c.dedupe_key) == ["newest"]


async def test_the_newest_row_is_kept_so_no_id_is_handed_out_twice(db: Database) -> None:
    """SQLite gives the next row max(id) + 1: deleting the newest would reuse its id (and a
    webhook URL's cursor, an event id, would then skip the next events)."""
    async with db.transaction() as conn:
        await conn.execute(
            schema.outbox.insert(), [_message(f"m{n}", "sent", T0 + n, T0 + n) for n in range(3)]
        )
    assert (await prune(db, now_ms=NOW, days=90)).outbox == 2
    async with db.transaction() as conn:
        await conn.execute(schema.outbox.insert().values(**_message("later", "pending", NOW)))
    ids = await _ids(db, schema.outbox.c.id)
    assert len(ids) == 2 and ids[-1] > 3


def test_retention_days_is_read_and_checked() -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "ADMIN_IDS": "1",
        "OKX_API_KEY": "k",
        "OKX_SECRET_KEY": "s",
        "OKX_PASSPHRASE": "p",
    }
    assert load_settings(env).payment_settings().retention_days == 90
    assert load_settings(env | {"RETENTION_DAYS": "0"}).payment_settings().retention_days == 0
    assert load_settings(env | {"RETENTION_DAYS": "30"}).payment_settings().retention_days == 30
    for bad in ("3", "-1", "4000"):
        with pytest.raises(ConfigError, match="RETENTION_DAYS"):
            load_settings(env | {"RETENTION_DAYS": bad})


# --- the job --------------------------------------------------------------------------------------


async def _wait(predicate: Any, seconds: float = 10) -> bool:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set"),
            ],
        ),
    ],
)
async def test_the_daily_job_prunes_on_the_primary_and_does_nothing_on_a_standby(
    tmp_path: Path, backend: str
) -> None:
    timings = dataclasses.replace(FAST, prune=0.1, first_prune=0.05)
    async with BotWorld.open(tmp_path, backend=backend) as world, world.database() as db:
        await db.migrate()
        old = world.clock.now_ms() - 200 * DAY_MS  # RETENTION_DAYS is 90 by default
        async with db.transaction() as conn:
            await conn.execute(
                schema.outbox.insert(),
                [_message(f"old{n}", "sent", old + n, old + n) for n in range(3)],
            )
        # another replica holds the lease: this bot is a standby
        other = LeaseStore(db, "jobs")
        lease = await other.acquire(holder="other-host", now_ms=world.clock.now_ms(), ttl_ms=DAY_MS)
        assert lease is not None

        async def pruned() -> bool:
            return await _count(db, schema.outbox) == 1  # the newest row always stays

        async with world.running(timings=timings) as application:
            assert application.job_queue is not None
            assert application.job_queue.get_jobs_by_name(PRUNE)
            assert not await _wait(pruned, seconds=1.5)  # many runs, on a standby: nothing
            await other.release(lease)  # the other replica stops: this one takes over
            assert await _wait(pruned)


async def test_the_job_is_scheduled_by_name_with_the_default_timings(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running() as application:
        assert application.job_queue is not None
        (job,) = application.job_queue.get_jobs_by_name(PRUNE)
        assert job.job.trigger.interval.total_seconds() == Timings().prune == 24 * 3600
