"""Keeping memberships in step with subscriptions: invites and removals due, and what the
Telegram layer did about them (with the customer's message in the same transaction)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.access.model import (
    _ERROR_MAX,
    HELD,
    IN_CHAT,
    INVITED,
    MEMBER,
    PENDING,
    REMOVED,
    AccessBase,
    Due,
    _backoff,
    _due,
)
from payments.botstate.lease import Lease, held_clause, holds
from payments.clock import DAY_MS
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.storage import kv
from payments.storage.db import insert_ignore
from payments.storage.schema import access_links, memberships
from payments.storage.schema import subscriptions as subs


class Lifecycle(AccessBase):
    # --- what is due ---------------------------------------------------------------------------

    async def sync(self, *, limit: int = 500) -> int:
        """Give every entitled customer a membership row to invite (pending); returns how many.

        A customer already holding access (pending, invited, member, left) is left alone: a
        renewal changes nothing in the chat. A removed one becomes pending again."""
        now = self.clock.now_ms()
        granted = 0
        async with self.db.transaction() as conn:
            for chat_id in self.chats:
                held = exists().where(
                    memberships.c.customer_id == subs.c.customer_id,
                    memberships.c.chat_id == chat_id,
                    memberships.c.state.in_(HELD),
                )
                rows = (
                    await conn.execute(
                        select(subs.c.customer_id, subs.c.plan_id)
                        .where(
                            subs.c.plan_id.in_(self.plans_for(chat_id)),
                            subs.c.ends_at > now - self.grace_ms,
                            ~held,
                        )
                        .order_by(subs.c.customer_id, subs.c.plan_id)
                        .limit(limit)
                    )
                ).all()
                seen: set[int] = set()
                for customer_id, plan_id in rows:
                    if customer_id in seen:  # two plans grant the same chat
                        continue
                    seen.add(customer_id)
                    granted += await self._grant(conn, customer_id, chat_id, plan_id, now)
        return granted

    async def _grant(
        self, conn: AsyncConnection, customer_id: int, chat_id: int, plan_id: str, now: int
    ) -> int:
        values = {"plan_id": plan_id, "state": PENDING, "attempts": 0, "next_attempt_at": now}
        inserted = await insert_ignore(
            conn,
            memberships,
            {"customer_id": customer_id, "chat_id": chat_id, "updated_at": now, **values},
            ["customer_id", "chat_id"],
        )
        if inserted:
            return 1
        result = await conn.execute(
            update(memberships)
            .where(
                memberships.c.customer_id == customer_id,
                memberships.c.chat_id == chat_id,
                memberships.c.state == REMOVED,
            )
            .values(**values, last_error=None, updated_at=now)
        )
        return int(result.rowcount or 0)

    async def due_invites(self, *, lease: Lease | None = None, limit: int = 50) -> list[Due]:
        """Memberships waiting for a link; under ``lease`` (None: not fenced)."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            if not await holds(conn, lease, now_ms=self.lease_clock.now_ms()):
                return []
            rows = await conn.execute(
                select(memberships)
                .where(memberships.c.state == PENDING, memberships.c.next_attempt_at <= now)
                .order_by(memberships.c.next_attempt_at, memberships.c.id)
                .limit(limit)
            )
            return [_due(row) for row in rows.mappings()]

    async def due_removals(self, *, lease: Lease | None = None, limit: int = 50) -> list[Due]:
        """Memberships whose customer is no longer entitled, and every removal under way
        (whatever the entitlement: its unban is owed). A pending one (no link sent yet) is
        closed here silently; the others need the bot to act in the chat. Taken under
        ``lease`` (None: not fenced): a replica that lost it gets nothing to do."""
        now = self.clock.now_ms()
        due: list[Due] = []
        async with self.db.transaction() as conn:
            if not await holds(conn, lease, now_ms=self.lease_clock.now_ms()):
                return []
            for chat_id in self.chats:
                not_entitled = ~self._entitled(chat_id, memberships.c.customer_id, now)
                stale = and_(
                    memberships.c.chat_id == chat_id,
                    memberships.c.next_attempt_at <= now,
                    or_(
                        memberships.c.removal_ended_at.is_not(None),
                        and_(memberships.c.state.in_(HELD), not_entitled),
                    ),
                )
                rows = await conn.execute(
                    select(memberships).where(stale).order_by(memberships.c.id).limit(limit)
                )
                for row in rows.mappings():
                    if row["state"] == PENDING and row["removal_ended_at"] is None:
                        await self._close(conn, row["id"], frozenset({PENDING}), now)
                    else:
                        due.append(_due(row))
        return due

    # --- what the Telegram layer did -----------------------------------------------------------

    async def invited(
        self, item: Due, *, link: str, expires_at: int, chat_title: str, replaced: bool = False
    ) -> bool:
        """A link was created: record it and queue the customer's message (one transaction).
        False when the membership moved on meanwhile (the link is then revoked by the caller)."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(memberships)
                .where(memberships.c.id == item.membership_id, memberships.c.state == PENDING)
                .values(
                    state=INVITED,
                    link=link,
                    invited_at=now,
                    attempts=0,
                    last_error=None,
                    updated_at=now,
                )
            )
            if int(result.rowcount or 0) != 1:
                return False
            await conn.execute(
                access_links.insert().values(
                    link=link,
                    membership_id=item.membership_id,
                    chat_id=item.chat_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            invite = msg.ACCESS_INVITE.message(
                {
                    "chat_id": item.chat_id,
                    "chat_title": chat_title,
                    "plan_id": item.plan_id,
                    "link": link,
                    "expires_at": expires_at,
                    "replaced": replaced,
                },
                key=f"c:access:{item.membership_id}:invite:{link[-40:]}",
                customer_id=item.customer_id,
            )
            await enqueue(conn, invite, now_ms=now)
            await self._recovered(conn, item.chat_id)
        return True

    async def claim_removal(self, item: Due, *, lease: Lease | None = None) -> Due | None:
        """Right before the bot acts in the chat: claim the removal (one compare-and-set that
        the customer is still not entitled, with the lease still held), remembering the access
        end it acts on. A removal already under way is re-asserted, with ``entitled`` telling
        whether the customer renewed since (then the ban is lifted, nobody is removed).
        None: nothing to do (entitled again before the claim, moved on, or the lease lost)."""
        now = self.clock.now_ms()
        fence = true() if lease is None else held_clause(lease, now_ms=self.lease_clock.now_ms())
        mine = memberships.c.id == item.membership_id
        returned = (memberships.c.state, memberships.c.removal_ended_at)
        async with self.db.transaction() as conn:
            entitled = bool(
                (
                    await conn.execute(select(self._entitled(item.chat_id, item.customer_id, now)))
                ).scalar_one()
            )
            if item.removal_ended_at is None:
                if entitled:
                    return None
                ended = await self._access_end(conn, item.customer_id, item.chat_id)
                claim: list[ColumnElement[bool]] = [
                    memberships.c.removal_ended_at.is_(None),
                    memberships.c.state.in_(IN_CHAT),
                    ~self._entitled(item.chat_id, item.customer_id, now),
                ]
                values = {"removal_ended_at": ended, "updated_at": now}
            else:
                claim = [memberships.c.removal_ended_at.is_not(None)]
                values = {"updated_at": now}
            row = (
                await conn.execute(
                    update(memberships)
                    .where(mine, *claim, fence)
                    .values(**values)
                    .returning(*returned)
                )
            ).first()
        if row is None:
            return None
        return replace(
            item,
            state=str(row.state),
            removal_ended_at=int(row.removal_ended_at),
            entitled=entitled,
        )

    async def removed(self, item: Due, *, chat_title: str) -> list[str]:
        """The claimed removal's ban and unban were made: close the membership, tell a customer
        who was in the chat when it was claimed (with the end that ended), and return the links
        still to revoke."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            if not await _end_removal(conn, item, now, state=REMOVED, removed_at=now):
                return []
            if item.state == MEMBER:  # one who left on their own is not told they were removed
                ended = item.removal_ended_at or 0
                goodbye = msg.ACCESS_REMOVED.message(
                    {
                        "chat_id": item.chat_id,
                        "chat_title": chat_title,
                        "plan_id": item.plan_id,
                        "ended_at": ended,
                    },
                    key=f"c:access:{item.membership_id}:removed:{ended}",
                    customer_id=item.customer_id,
                )
                await enqueue(conn, goodbye, now_ms=now)
            await self._recovered(conn, item.chat_id)
            live = (
                access_links.c.membership_id == item.membership_id,
                access_links.c.revoked_at.is_(None),
                access_links.c.used_by.is_(None),
                access_links.c.expires_at > now,
            )
            links = list((await conn.execute(select(access_links.c.link).where(*live))).scalars())
            await conn.execute(update(access_links).where(*live).values(revoked_at=now))
            return links

    async def restored(self, item: Due, *, in_chat: bool) -> bool:
        """A removal under way whose customer is entitled again: the ban was lifted. Back to
        member when Telegram says they are in the chat; one who was put out gets a new link;
        no goodbye either way."""
        now = self.clock.now_ms()
        state = MEMBER if in_chat else PENDING if item.state == MEMBER else item.state
        async with self.db.transaction() as conn:
            if not await _end_removal(conn, item, now, state=state, next_attempt_at=now):
                return False
            await self._recovered(conn, item.chat_id)
        return True

    async def failed(self, item: Due, *, action: str, error: str, chat_title: str) -> None:
        """Telegram refused (the bot lost its rights?): try again later; the admins are told
        once per chat until an action there succeeds again."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(memberships)
                .where(memberships.c.id == item.membership_id)
                .values(
                    attempts=memberships.c.attempts + 1,
                    next_attempt_at=now + _backoff(item.attempts),
                    last_error=error[:_ERROR_MAX],
                    updated_at=now,
                )
            )
            flag = f"access.failing.{item.chat_id}"
            if await kv.get_value(conn, flag) in (None, ""):
                await kv.set_value(conn, flag, str(now), now)
                alert = msg.ADMIN_ACCESS_FAILING.message(
                    {
                        "chat_id": item.chat_id,
                        "chat_title": chat_title,
                        "action": action,
                        "error": error[:_ERROR_MAX],
                    },
                    key=f"a:access:{item.chat_id}:failing:{now}",
                )
                await enqueue(conn, alert, now_ms=now)

    async def _recovered(self, conn: AsyncConnection, chat_id: int) -> None:
        flag = f"access.failing.{chat_id}"
        if await kv.get_value(conn, flag) not in (None, ""):
            await kv.set_value(conn, flag, "", self.clock.now_ms())

    async def report_rights(self, problems: Sequence[str]) -> bool:
        """Tell the admins what the bot cannot do in its chats, once per distinct set a day."""
        if not problems:
            return False
        now = self.clock.now_ms()
        digest = hashlib.sha256("\n".join(problems).encode()).hexdigest()[:16]
        async with self.db.transaction() as conn:
            alert = msg.ADMIN_CHAT_RIGHTS.message(
                {"problems": list(problems)}, key=f"a:access:rights:{now // DAY_MS}:{digest}"
            )
            return await enqueue(conn, alert, now_ms=now) == 1


async def _end_removal(conn: AsyncConnection, item: Due, now: int, **values: Any) -> bool:
    """Close the removal under way on ``item`` (compare-and-set: it is still under way), with
    the membership's new ``values``; False when someone else closed it first."""
    result = await conn.execute(
        update(memberships)
        .where(
            memberships.c.id == item.membership_id,
            memberships.c.removal_ended_at.is_not(None),
        )
        .values(**values, removal_ended_at=None, attempts=0, last_error=None, updated_at=now)
    )
    return int(result.rowcount or 0) == 1
