"""Chat access: states, the records the service hands out, and its base."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, RowMapping, String, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.catalog import Catalog
from payments.clock import DAY_MS, Clock
from payments.storage.db import Database
from payments.storage.schema import memberships
from payments.storage.schema import subscriptions as subs
from payments.subscriptions.renewals import RENEWAL_GRACE_MS, renews_itself

PENDING = "pending"  # entitled, no link sent yet (or a new one is needed)
INVITED = "invited"  # a link was sent, not used yet
MEMBER = "member"
LEFT = "left"  # left on their own while entitled: no new link unless they ask (/join)
REMOVED = "removed"
HELD = frozenset({PENDING, INVITED, MEMBER, LEFT})  # states that count as having access
IN_CHAT = frozenset({INVITED, MEMBER, LEFT})  # states a removal must act on in the chat

LINK_LIFETIME_MS = DAY_MS
RETRY_BASE_MS = 30_000
RETRY_CAP_MS = 3_600_000

_ERROR_MAX = cast(String, memberships.c.last_error.type).length or 300


@dataclass(frozen=True)
class Due:
    """An invite to create or a removal to carry out."""

    membership_id: int
    customer_id: int
    chat_id: int
    plan_id: str
    state: str
    attempts: int
    # a removal under way (claimed; its ban perhaps made, its unban owed): the access end it
    # acts on. It is finished, or undone when ``entitled`` again, whatever the entitlement.
    removal_ended_at: int | None = None
    entitled: bool = False  # as of the claim (:meth:`Lifecycle.claim_removal`)
    # a link was sent or a removal made before: a ban may be left over, to lift before a link
    had_access: bool = False


@dataclass(frozen=True)
class Expulsion:
    """Someone who joined ``chat_id`` through a link made for another customer: out they go
    (ban, then unban), and ``link`` is revoked. Stored with the join's decision."""

    chat_id: int
    user_id: int
    link: str | None
    attempts: int


@dataclass(frozen=True)
class JoinOutcome:
    """What a join through a link means. ``intruder``: the link was made for ``buyer``, so the
    person who joined must be removed and ``link`` revoked; the buyer gets a new link."""

    kind: Literal["buyer", "intruder", "entitled", "stranger"]
    buyer: int | None = None
    link: str | None = None
    reinvite: Due | None = None  # the buyer's membership, now waiting for a new link


@dataclass(frozen=True)
class ChatMembers:
    chat_id: int
    members: int
    invited: int
    next_ends: list[tuple[int, int]]  # (customer id, access ends at) of members, soonest first


def _backoff(attempts: int) -> int:
    return min(RETRY_BASE_MS << min(attempts, 20), RETRY_CAP_MS)


class AccessBase:
    """What every part of the access service shares: the catalogue's chats and the clock."""

    def __init__(self, db: Database, clock: Clock, catalog: Catalog, *, grace_days: int = 0):
        self.db = db
        self.clock = clock
        # the lease's rows are written with the host's clock, not the exchange's
        self.lease_clock: Clock = getattr(clock, "local", clock)
        self.plan_chats = catalog.plan_chats
        self.chats = catalog.chats
        self.grace_ms = grace_days * DAY_MS

    @property
    def enabled(self) -> bool:
        return bool(self.chats)

    def plans_for(self, chat_id: int) -> list[str]:
        return [plan for plan, chats in self.plan_chats.items() if chat_id in chats]

    def _entitled(self, chat_id: int, customer: Any, now: int) -> ColumnElement[bool]:
        """SQL: ``customer`` has a subscription granting ``chat_id`` that runs (plus grace)."""
        return exists().where(
            subs.c.customer_id == customer,
            subs.c.plan_id.in_(self.plans_for(chat_id)),
            or_(
                subs.c.ends_at > now - self.grace_ms,
                and_(  # a Telegram renewal on its way
                    subs.c.ends_at > now - max(self.grace_ms, RENEWAL_GRACE_MS),
                    renews_itself(subs.c.customer_id, subs.c.plan_id),
                ),
            ),
        )

    # --- helpers ---------------------------------------------------------------------------

    async def _close(
        self, conn: AsyncConnection, membership_id: int, states: frozenset[str], now: int
    ) -> bool:
        result = await conn.execute(
            update(memberships)
            .where(memberships.c.id == membership_id, memberships.c.state.in_(states))
            .values(state=REMOVED, removed_at=now, attempts=0, last_error=None, updated_at=now)
        )
        return int(result.rowcount or 0) == 1

    async def _access_end(self, conn: AsyncConnection, customer_id: int, chat_id: int) -> int:
        ends = (
            await conn.execute(
                select(func.max(subs.c.ends_at)).where(
                    subs.c.customer_id == customer_id,
                    subs.c.plan_id.in_(self.plans_for(chat_id)),
                )
            )
        ).scalar_one_or_none()
        return int(ends or 0)

    async def _granting_plan(self, conn: AsyncConnection, customer_id: int, chat_id: int) -> str:
        plan = (
            await conn.execute(
                select(subs.c.plan_id)
                .where(
                    subs.c.customer_id == customer_id, subs.c.plan_id.in_(self.plans_for(chat_id))
                )
                .order_by(subs.c.ends_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return str(plan or self.plans_for(chat_id)[0])


def _due(row: Mapping[str, Any] | RowMapping) -> Due:
    return Due(
        membership_id=int(row["id"]),
        customer_id=int(row["customer_id"]),
        chat_id=int(row["chat_id"]),
        plan_id=str(row["plan_id"]),
        state=str(row["state"]),
        attempts=int(row["attempts"]),
        removal_ended_at=None if row["removal_ended_at"] is None else int(row["removal_ended_at"]),
        had_access=any(row[c] is not None for c in ("invited_at", "joined_at", "removed_at")),
    )
