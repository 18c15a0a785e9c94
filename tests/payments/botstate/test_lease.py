"""Leases: exactly one replica runs the singleton jobs; a take-over is visible by its token."""

from __future__ import annotations

import asyncio

import pytest

from payments.botstate import lease
from payments.botstate.lease import Lease, acquire, release, still_held
from payments.clock import ManualClock
from payments.storage import Database

TTL = 150_000  # two missed 60 s cycles plus a margin


async def take(db: Database, clock: ManualClock, holder: str) -> Lease | None:
    return await acquire(db, name="jobs", holder=holder, now_ms=clock.now_ms(), ttl_ms=TTL)


async def held(db: Database, clock: ManualClock, mine: Lease) -> bool:
    async with db.transaction() as conn:
        return await still_held(conn, mine, now_ms=clock.now_ms())


async def test_only_one_holder_at_a_time(db: Database, clock: ManualClock) -> None:
    a = await take(db, clock, "A")
    assert a == Lease("jobs", "A", 1, clock.now_ms() + TTL)
    assert await take(db, clock, "B") is None
    assert await held(db, clock, a)


async def test_renewal_keeps_the_token_and_moves_the_expiry(
    db: Database, clock: ManualClock
) -> None:
    await take(db, clock, "A")
    clock.advance(60_000)
    renewed = await take(db, clock, "A")
    assert renewed == Lease("jobs", "A", 1, clock.now_ms() + TTL)
    clock.advance(TTL - 1)  # past the first expiry, inside the renewed one
    assert await take(db, clock, "B") is None


async def test_take_over_after_expiry_increments_the_token(
    db: Database, clock: ManualClock
) -> None:
    a = await take(db, clock, "A")
    assert a is not None
    clock.advance(TTL - 1)
    assert await take(db, clock, "B") is None
    clock.advance(1)
    b = await take(db, clock, "B")
    assert b is not None and b.token == 2
    assert not await held(db, clock, a)
    assert await held(db, clock, b)
    assert await take(db, clock, "A") is None  # the old holder cannot renew over it
    async with db.read() as conn:
        assert await lease.current(conn, "jobs") == b


async def test_re_taking_our_own_lapsed_lease_is_a_take_over(
    db: Database, clock: ManualClock
) -> None:
    a = await take(db, clock, "A")
    assert a is not None
    clock.advance(TTL)
    assert not await held(db, clock, a)
    again = await take(db, clock, "A")
    assert again is not None and again.token == 2


async def test_release_lets_another_replica_in_at_once(db: Database, clock: ManualClock) -> None:
    a = await take(db, clock, "A")
    assert a is not None
    await release(db, a)
    assert not await held(db, clock, a)
    b = await take(db, clock, "B")
    assert b is not None and b.token == 2
    await release(db, a)  # a stale release does not free B's lease
    assert await held(db, clock, b)


async def test_concurrent_acquires_elect_one_holder(db: Database, clock: ManualClock) -> None:
    results = await asyncio.gather(*(take(db, clock, f"R{i}") for i in range(5)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].token == 1
    clock.advance(TTL)
    results = await asyncio.gather(*(take(db, clock, f"S{i}") for i in range(5)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].token == 2


async def test_leases_are_independent_by_name(db: Database, clock: ManualClock) -> None:
    now = clock.now_ms()
    assert await acquire(db, name="poller", holder="A", now_ms=now, ttl_ms=TTL) is not None
    assert await acquire(db, name="outbox", holder="B", now_ms=now, ttl_ms=TTL) is not None
    with pytest.raises(ValueError):
        await acquire(db, name="x", holder="A", now_ms=now, ttl_ms=0)


async def test_postgres_take_over_waits_for_fenced_work_to_commit(
    db: Database, clock: ManualClock
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite runs one replica; its write transactions are exclusive")
    a = await take(db, clock, "A")
    assert a is not None
    async with db.transaction() as conn:
        assert await still_held(conn, a, now_ms=clock.now_ms())
        later = clock.now_ms() + TTL  # B's clock says A's lease has lapsed
        takeover = asyncio.create_task(
            acquire(db, name="jobs", holder="B", now_ms=later, ttl_ms=TTL)
        )
        done, _ = await asyncio.wait({takeover}, timeout=0.5)
        assert not done  # blocked behind A's fenced transaction
    b = await asyncio.wait_for(takeover, timeout=5)
    assert b is not None and b.token == 2
