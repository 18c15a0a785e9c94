"""Leases: which replica runs the singleton jobs (poller, expiry/reminders, outbox sender).

One row per lease name. The holder renews it every cycle; when it lapses (``expires_at <= now``)
any replica may take it over, which increments ``token``: a fencing token that only ever grows,
so work done under an old lease can be told from work done under the new one. A job checks
:func:`still_held` inside the transaction that writes its results.

Every step is race-free on both databases: the first row is created with INSERT ... ON CONFLICT DO
NOTHING, every later change is a compare-and-set UPDATE whose result is checked.

``holder`` must be unique per process (e.g. hostname + pid + random suffix): a holder that
matches renews the lease. Replicas compare ``expires_at`` with their own clocks, so the TTL must
be much larger than the clock skew between hosts (seconds vs. minutes).

Fencing: every singleton run hands its :class:`Lease` to the writes it makes. A list of work
(outbox messages, webhook deliveries, removals) is taken in a transaction that checks
:func:`still_held`; each claimed row is re-asserted with :func:`held_clause` right before the
outside call it stands for, and skipped when the claim or the lease was lost. A process paused
past its lease therefore does at most the one call it was inside when it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.storage.db import Database, insert_ignore
from payments.storage.schema import leases


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    token: int  # fencing token: grows on every take-over
    expires_at: int


async def acquire(
    db: Database, *, name: str, holder: str, now_ms: int, ttl_ms: int
) -> Lease | None:
    """Take the lease if it is free or lapsed, or renew it if ``holder`` holds it (own transaction).

    Renewal keeps the token; a take-over (including re-taking our own lapsed lease) increments
    it. Returns None while another holder's lease is live.
    """
    if ttl_ms <= 0:
        raise ValueError("ttl_ms must be positive")
    expires_at = now_ms + ttl_ms
    async with db.transaction() as conn:
        first = {"name": name, "holder": holder, "token": 1, "expires_at": expires_at}
        if await insert_ignore(conn, leases, first, ["name"]) == 1:
            return Lease(name, holder, 1, expires_at)
        renewed = (
            await conn.execute(
                update(leases)
                .where(
                    leases.c.name == name,
                    leases.c.holder == holder,
                    leases.c.expires_at > now_ms,
                )
                .values(expires_at=expires_at)
                .returning(leases.c.token)
            )
        ).first()
        if renewed is not None:
            return Lease(name, holder, int(renewed.token), expires_at)
        taken = (
            await conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.expires_at <= now_ms)
                .values(holder=holder, token=leases.c.token + 1, expires_at=expires_at)
                .returning(leases.c.token)
            )
        ).first()
        if taken is not None:
            return Lease(name, holder, int(taken.token), expires_at)
    return None


async def still_held(conn: AsyncConnection, lease: Lease, *, now_ms: int) -> bool:
    """Fencing check inside the caller's transaction: our holder and token, not lapsed.

    On PostgreSQL the row is locked FOR SHARE, so a take-over waits until this transaction has
    committed: work fenced by this check can never interleave with the next holder's.
    """
    stmt = select(leases.c.name).where(
        leases.c.name == lease.name,
        leases.c.holder == lease.holder,
        leases.c.token == lease.token,
        leases.c.expires_at > now_ms,
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    return (await conn.execute(stmt)).first() is not None


def held_clause(lease: Lease, *, now_ms: int) -> ColumnElement[bool]:
    """``EXISTS (the lease row with our holder and token, not lapsed)``: for a compare-and-set
    UPDATE that must also prove the lease, in one statement (a claim re-asserted right before
    an outside call: ``UPDATE ... WHERE claim_token = ... AND <this> RETURNING``)."""
    return exists().where(
        leases.c.name == lease.name,
        leases.c.holder == lease.holder,
        leases.c.token == lease.token,
        leases.c.expires_at > now_ms,
    )


async def holds(conn: AsyncConnection, lease: Lease | None, *, now_ms: int) -> bool:
    """:func:`still_held`, where ``None`` means "not fenced" (one process, tools and tests)."""
    return lease is None or await still_held(conn, lease, now_ms=now_ms)


async def release(db: Database, lease: Lease) -> None:
    """Give the lease up (e.g. at shutdown) so another replica can take it over at once.

    The row stays (with an expiry in the past) so the next holder's token is still larger.
    """
    async with db.transaction() as conn:
        await conn.execute(
            update(leases)
            .where(
                leases.c.name == lease.name,
                leases.c.holder == lease.holder,
                leases.c.token == lease.token,
            )
            .values(expires_at=0)
        )


async def current(conn: AsyncConnection, name: str) -> Lease | None:
    """The lease row as stored (holder may have lapsed): for health and status reports."""
    row = (
        await conn.execute(
            select(leases.c.name, leases.c.holder, leases.c.token, leases.c.expires_at).where(
                leases.c.name == name
            )
        )
    ).first()
    if row is None:
        return None
    return Lease(row.name, row.holder, int(row.token), int(row.expires_at))


@dataclass(frozen=True)
class LeaseStore:
    """One lease's calls bound to its database: what a replica uses (it holds no SQL)."""

    db: Database
    name: str

    async def acquire(self, *, holder: str, now_ms: int, ttl_ms: int) -> Lease | None:
        return await acquire(self.db, name=self.name, holder=holder, now_ms=now_ms, ttl_ms=ttl_ms)

    async def release(self, lease: Lease) -> None:
        await release(self.db, lease)
