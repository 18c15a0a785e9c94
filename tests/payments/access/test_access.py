"""Chat access in the payments core: who is entitled, what is due, and that every step is
idempotent (SQLite, and PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

from payments.access import INVITED, MEMBER, PENDING, REMOVED, AccessService
from payments.catalog import Catalog, parse_catalog
from payments.clock import DAY_MS, ManualClock
from payments.invoicing.customers import ensure_customer
from payments.storage import Database
from payments.storage.schema import memberships, outbox
from payments.subscriptions.periods import credit_period

SHARED = -1002


def _catalog() -> Catalog:
    plan = {"price_usd": "29", "days": 30}
    return parse_catalog(
        {
            "plans": [
                {"id": "pro", "name": "Pro", "chats": [-1001, SHARED], **plan},
                {"id": "vip", "name": "VIP", "chats": [SHARED], **plan},
                {"id": "lite", "name": "Lite", **plan},
            ],
            "coins": [
                {
                    "symbol": "USDT",
                    "step": "0.0001",
                    "networks": [{"code": "TRC20", "chain": "USDT-TRC20"}],
                }
            ],
        }
    )


def _service(db: Database, clock: ManualClock, grace_days: int = 0) -> AccessService:
    return AccessService(db, clock, _catalog(), grace_days=grace_days)


async def _subscribe(db: Database, clock: ManualClock, customer: int, plan: str, key: str) -> None:
    async with db.transaction() as conn:
        await ensure_customer(conn, customer, clock.now_ms())
        await credit_period(
            conn,
            customer_id=customer,
            plan_id=plan,
            days=30,
            now_ms=clock.now_ms(),
            invoice_id=key,
        )


async def _states(db: Database) -> dict[tuple[int, int], str]:
    async with db.read() as conn:
        rows = await conn.execute(
            memberships.select().with_only_columns(
                memberships.c.customer_id, memberships.c.chat_id, memberships.c.state
            )
        )
        return {(r.customer_id, r.chat_id): r.state for r in rows}


async def test_two_plans_granting_one_chat_make_one_membership_and_sync_is_idempotent(
    db: Database, clock: ManualClock
) -> None:
    access = _service(db, clock)
    await _subscribe(db, clock, 7, "pro", "INV1")
    await _subscribe(db, clock, 7, "vip", "INV2")
    await _subscribe(db, clock, 8, "lite", "INV3")  # no chat
    assert await access.sync() == 2
    assert await access.sync() == 0
    assert await _states(db) == {(7, -1001): PENDING, (7, SHARED): PENDING}
    assert sorted(d.chat_id for d in await access.due_invites()) == [-1002, -1001]


async def test_invite_is_recorded_once_with_its_message_and_removal_waits_for_every_plan(
    db: Database, clock: ManualClock
) -> None:
    access = _service(db, clock, grace_days=1)
    await _subscribe(db, clock, 7, "pro", "INV1")
    clock.advance(10 * DAY_MS)
    await _subscribe(db, clock, 7, "vip", "INV2")  # ends 10 days after pro
    await access.sync()
    for item in await access.due_invites():
        link = f"https://t.me/+{item.chat_id}"
        expires = clock.now_ms() + DAY_MS
        assert await access.invited(item, link=link, expires_at=expires, chat_title="C")
        assert not await access.invited(item, link=link + "x", expires_at=expires, chat_title="C")
    assert set((await _states(db)).values()) == {INVITED}
    assert (await access.joined(SHARED, 7, f"https://t.me/+{SHARED}")).kind == "buyer"

    clock.advance(20 * DAY_MS + DAY_MS // 2)  # pro ended half a day ago: within the grace day
    assert await access.due_removals() == []
    clock.advance(DAY_MS)
    [due] = await access.due_removals()  # the pro-only chat; vip still grants the shared one
    assert (due.chat_id, due.state) == (-1001, INVITED)
    claim = await access.claim_removal(due)  # before the ban: still not entitled
    assert claim is not None and claim.removal_ended_at is not None and not claim.entitled
    assert await access.claim_removal(due) is None  # claimed once
    assert await access.removed(claim, chat_title="C") == []  # its link expired: none to revoke
    assert await access.removed(claim, chat_title="C") == []  # a retry changes nothing
    assert await _states(db) == {(7, -1001): REMOVED, (7, SHARED): MEMBER}
    async with db.read() as conn:
        kinds = [r.kind for r in await conn.execute(outbox.select())]
    assert kinds.count("access.invite") == 2
    assert "access.removed" not in kinds  # never joined the pro-only chat: nothing to tell


async def test_a_stranger_through_a_buyers_link_is_an_intruder_and_the_buyer_is_reinvited(
    db: Database, clock: ManualClock
) -> None:
    access = _service(db, clock)
    await _subscribe(db, clock, 7, "vip", "INV1")
    await access.sync()
    [item] = await access.due_invites()
    await access.invited(item, link="L1", expires_at=clock.now_ms() + DAY_MS, chat_title="C")
    outcome = await access.joined(SHARED, 99, "L1")
    assert (outcome.kind, outcome.buyer) == ("intruder", 7)
    assert outcome.reinvite is not None and outcome.reinvite.customer_id == 7
    assert await _states(db) == {(7, SHARED): PENDING}
    assert (await access.joined(SHARED, 98, None)).kind == "stranger"
    assert not await access.may_join(SHARED, 98)
    assert await access.may_join(SHARED, 7)


async def test_the_lease_fence_uses_the_hosts_clock_not_the_exchanges(
    db: Database, clock: ManualClock
) -> None:
    """The lease row is written with the host's clock; an exchange clock minutes ahead of it
    (a host clock that is behind) must not make a held lease look lapsed and stall chat access."""
    from payments.botstate.lease import acquire
    from payments.clock import MINUTE_MS, ExchangeClock

    okx_clock = ExchangeClock(clock)
    okx_clock.offset_ms = 5 * MINUTE_MS
    access = AccessService(db, okx_clock, _catalog())
    await _subscribe(db, clock, 7, "pro", "INV1")
    await access.sync()
    lease = await acquire(db, name="jobs", holder="a", now_ms=clock.now_ms(), ttl_ms=MINUTE_MS)
    assert lease is not None
    assert sorted(d.chat_id for d in await access.due_invites(lease=lease)) == [-1002, -1001]
