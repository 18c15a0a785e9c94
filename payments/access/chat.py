"""What happens in the chat (joins, join requests, leaving), /join and the admins' view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from sqlalchemy import delete, exists, func, select, true, update

from payments.access.model import (
    _ERROR_MAX,
    HELD,
    INVITED,
    LEFT,
    LINK_LIFETIME_MS,
    MEMBER,
    PENDING,
    AccessBase,
    ChatMembers,
    Due,
    Expulsion,
    JoinOutcome,
    _backoff,
    _due,
)
from payments.botstate.lease import Lease, held_clause, holds
from payments.clock import MINUTE_MS
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.storage.db import insert_ignore
from payments.storage.schema import access_expulsions, access_links, customers, memberships
from payments.storage.schema import subscriptions as subs


class ChatEvents(AccessBase):
    # --- what happens in the chat ----------------------------------------------------------

    async def joined(self, chat_id: int, user_id: int, link: str | None) -> JoinOutcome:
        """Someone joined ``chat_id`` (through ``link`` when Telegram says so)."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            owner = None
            if link is not None:
                owner = (
                    await conn.execute(
                        select(memberships.c.id, memberships.c.customer_id, memberships.c.plan_id)
                        .join(access_links, access_links.c.membership_id == memberships.c.id)
                        .where(access_links.c.link == link, access_links.c.chat_id == chat_id)
                    )
                ).first()
                if owner is not None:
                    await conn.execute(
                        update(access_links)
                        .where(access_links.c.link == link, access_links.c.used_by.is_(None))
                        .values(used_by=user_id)
                    )
            entitled = (
                await conn.execute(select(self._entitled(chat_id, user_id, now)))
            ).scalar_one()
            again: Due | None = None
            if owner is not None and owner.customer_id != user_id:
                # someone else's link (it admits one person, so the buyer is not in): the buyer
                # gets a new one, and the person who used it goes unless they are entitled too
                result = await conn.execute(
                    update(memberships)
                    .where(memberships.c.id == owner.id, memberships.c.state == INVITED)
                    .values(state=PENDING, next_attempt_at=now, updated_at=now)
                )
                if result.rowcount:
                    again = Due(
                        owner.id,
                        owner.customer_id,
                        chat_id,
                        owner.plan_id,
                        PENDING,
                        0,
                        had_access=True,
                    )
            if not entitled:  # through our link: out (a stranger without one is not our business)
                if owner is not None:  # stored with this decision: retried until done
                    await insert_ignore(
                        conn,
                        access_expulsions,
                        {
                            "chat_id": chat_id,
                            "user_id": user_id,
                            "link": link,
                            "created_at": now,
                            "attempts": 0,
                            "next_attempt_at": now,
                        },
                        ["chat_id", "user_id"],
                    )
                    return JoinOutcome("intruder", owner.customer_id, link, again)
                return JoinOutcome("stranger")
            values = {"state": MEMBER, "joined_at": now, "updated_at": now}
            result = await conn.execute(
                update(memberships)
                .where(memberships.c.customer_id == user_id, memberships.c.chat_id == chat_id)
                .values(**values)
            )
            if not result.rowcount:
                plan_id = await self._granting_plan(conn, user_id, chat_id)
                await insert_ignore(
                    conn,
                    memberships,
                    {
                        "customer_id": user_id,
                        "chat_id": chat_id,
                        "plan_id": plan_id,
                        "attempts": 0,
                        "next_attempt_at": 0,
                        **values,
                    },
                    ["customer_id", "chat_id"],
                )
            mine = owner is not None and owner.customer_id == user_id
            return JoinOutcome("buyer" if mine else "entitled", buyer=user_id, reinvite=again)

    async def may_join(self, chat_id: int, user_id: int) -> bool:
        """A join request: approve a customer entitled to the chat, decline anyone else."""
        now = self.clock.now_ms()
        async with self.db.read() as conn:
            return bool(
                (await conn.execute(select(self._entitled(chat_id, user_id, now)))).scalar_one()
            )

    async def left(self, chat_id: int, user_id: int) -> None:
        """A member left (or was removed by a chat admin): remember it; no new link unasked."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(memberships)
                .where(
                    memberships.c.customer_id == user_id,
                    memberships.c.chat_id == chat_id,
                    memberships.c.state == MEMBER,
                    memberships.c.removal_ended_at.is_(None),  # the removal's own ban
                )
                .values(state=LEFT, updated_at=now)
            )

    async def member_chats(self, customer_id: int) -> list[int]:
        """The chats the customer is entitled to and, as far as the bot knows, in (/join asks
        Telegram about these before saying "in every chat")."""
        now = self.clock.now_ms()
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(memberships.c.chat_id).where(
                    memberships.c.customer_id == customer_id,
                    memberships.c.state == MEMBER,
                    memberships.c.removal_ended_at.is_(None),
                    memberships.c.chat_id.in_(self.chats),
                )
            )
            chats = [int(c) for c in rows.scalars()]
            return [
                c
                for c in chats
                if (await conn.execute(select(self._entitled(c, customer_id, now)))).scalar_one()
            ]

    async def request_links(
        self, customer_id: int, titles: Mapping[int, str] | None = None
    ) -> tuple[int, int]:
        """/join: a fresh link for each entitled chat the customer is not in (an unused link
        that expired, or one they left). Returns (links on the way, chats already joined)."""
        now = self.clock.now_ms()
        renewed = joined = 0
        async with self.db.transaction() as conn:
            rows = await conn.execute(
                select(memberships).where(
                    memberships.c.customer_id == customer_id, memberships.c.state.in_(HELD)
                )
            )
            for row in rows.mappings():
                if not (
                    await conn.execute(select(self._entitled(row["chat_id"], customer_id, now)))
                ).scalar_one():
                    continue
                if row["removal_ended_at"] is not None:  # a ban may stand: the run lifts it
                    renewed += 1
                    continue
                if row["state"] == MEMBER:
                    joined += 1
                    continue
                stale_link = (
                    row["state"] == INVITED
                    and (row["invited_at"] or 0) + LINK_LIFETIME_MS <= now + 60_000
                )
                if row["state"] == PENDING or row["state"] == LEFT or stale_link:
                    await conn.execute(
                        update(memberships)
                        .where(memberships.c.id == row["id"], memberships.c.state == row["state"])
                        .values(state=PENDING, next_attempt_at=now, updated_at=now)
                    )
                    renewed += 1
                else:  # a link that still works: send it again
                    again = msg.ACCESS_INVITE.message(
                        {
                            "chat_id": row["chat_id"],
                            "chat_title": (titles or {}).get(row["chat_id"], ""),
                            "plan_id": row["plan_id"],
                            "link": row["link"],
                            "expires_at": (row["invited_at"] or now) + LINK_LIFETIME_MS,
                            "replaced": False,
                        },
                        key=f"c:access:{row['id']}:again:{now}",
                        customer_id=customer_id,
                    )
                    await enqueue(conn, again, now_ms=now)
                    renewed += 1
        return renewed, joined

    # --- expulsions ---------------------------------------------------------------------------

    async def due_expulsions(
        self, *, lease: Lease | None = None, limit: int = 50
    ) -> list[Expulsion]:
        """Expulsions not done yet (a failed kick, or a crash after the join was decided)."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            if not await holds(conn, lease, now_ms=self.lease_clock.now_ms()):
                return []
            rows = await conn.execute(
                select(access_expulsions)
                .where(
                    access_expulsions.c.next_attempt_at <= now,
                    access_expulsions.c.chat_id.in_(self.chats),
                )
                .order_by(access_expulsions.c.created_at)
                .limit(limit)
            )
            return [
                Expulsion(int(r.chat_id), int(r.user_id), r.link, int(r.attempts)) for r in rows
            ]

    async def claim_expulsion(
        self, item: Expulsion, *, lease: Lease | None = None
    ) -> Literal["kick", "dropped"] | None:
        """Right before the kick: is it still owed (and the lease held)? "kick": yes. Someone
        who has become entitled to the chat meanwhile is not expelled: the expulsion is
        "dropped" (an earlier attempt may have left them banned: the caller lifts that). None:
        the lease was lost, or someone else took it."""
        now = self.clock.now_ms()
        fence = true() if lease is None else held_clause(lease, now_ms=self.lease_clock.now_ms())
        mine = (
            access_expulsions.c.chat_id == item.chat_id,
            access_expulsions.c.user_id == item.user_id,
        )
        async with self.db.transaction() as conn:
            if (
                await conn.execute(select(self._entitled(item.chat_id, item.user_id, now)))
            ).scalar_one():
                await conn.execute(delete(access_expulsions).where(*mine))
                return "dropped"
            row = (
                await conn.execute(
                    update(access_expulsions)
                    .where(*mine, fence)
                    .values(attempts=access_expulsions.c.attempts)
                    .returning(access_expulsions.c.user_id)
                )
            ).first()
            return "kick" if row is not None else None

    async def expelled(self, chat_id: int, user_id: int) -> None:
        """The kick worked: the expulsion is done."""
        async with self.db.transaction() as conn:
            await conn.execute(
                delete(access_expulsions).where(
                    access_expulsions.c.chat_id == chat_id, access_expulsions.c.user_id == user_id
                )
            )

    async def expulsion_failed(self, item: Expulsion, *, error: str) -> None:
        """Telegram refused the kick: try again later (the admins hear of the chat's rights
        from the rights check and the removals)."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(access_expulsions)
                .where(
                    access_expulsions.c.chat_id == item.chat_id,
                    access_expulsions.c.user_id == item.user_id,
                )
                .values(
                    attempts=access_expulsions.c.attempts + 1,
                    next_attempt_at=now + _backoff(item.attempts),
                    last_error=error[:_ERROR_MAX],
                )
            )

    # --- admins ----------------------------------------------------------------------------

    async def members(self, plan_id: str, *, limit: int = 10) -> list[ChatMembers]:
        """/members: per chat of the plan, members and pending invites, soonest ends first."""
        out: list[ChatMembers] = []
        plans_of = {chat: self.plans_for(chat) for chat in self.plan_chats.get(plan_id, ())}
        async with self.db.read() as conn:
            for chat_id, plans in plans_of.items():
                counts: dict[str, int] = dict(
                    (
                        await conn.execute(
                            select(memberships.c.state, func.count())
                            .where(memberships.c.chat_id == chat_id)
                            .group_by(memberships.c.state)
                        )
                    ).all()
                )
                ends = func.max(subs.c.ends_at)
                rows = await conn.execute(
                    select(memberships.c.customer_id, ends)
                    .join(subs, subs.c.customer_id == memberships.c.customer_id)
                    .where(
                        memberships.c.chat_id == chat_id,
                        memberships.c.state == MEMBER,
                        subs.c.plan_id.in_(plans),
                    )
                    .group_by(memberships.c.customer_id)
                    .order_by(ends, memberships.c.customer_id)
                    .limit(limit)
                )
                out.append(
                    ChatMembers(
                        chat_id=chat_id,
                        members=int(counts.get(MEMBER, 0)),
                        invited=int(counts.get(INVITED, 0)) + int(counts.get(PENDING, 0)),
                        next_ends=[(int(c), int(e) + self.grace_ms) for c, e in rows],
                    )
                )
        return out

    # --- joins the bot did not hear of -------------------------------------------------------

    async def unconfirmed(self, *, after_ms: int = MINUTE_MS, limit: int = 20) -> list[Due]:
        """Invited customers not seen joining for ``after_ms`` since the link or the last look,
        least recently looked at first. A bot killed between fetching a ``chat_member`` update
        and handling it never hears of that join (updates are delivered at most once), so the
        Telegram layer asks the chat about these (``bot.access.AccessWorker.confirm``)."""
        now = self.clock.now_ms()
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(memberships)
                .where(
                    memberships.c.state == INVITED,
                    memberships.c.chat_id.in_(self.chats),
                    memberships.c.updated_at <= now - after_ms,
                    memberships.c.removal_ended_at.is_(None),
                    ~exists().where(  # blocked the bot: never got the link, cannot have joined
                        customers.c.id == memberships.c.customer_id, customers.c.unreachable
                    ),
                )
                .order_by(memberships.c.updated_at, memberships.c.id)
                .limit(limit)
            )
            return [_due(row) for row in rows.mappings()]

    async def looked_at(self, item: Due) -> None:
        """Not in the chat (yet): look again after another ``unconfirmed`` wait."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(memberships)
                .where(memberships.c.id == item.membership_id, memberships.c.state == INVITED)
                .values(updated_at=now)
            )

    async def state(self, customer_id: int, chat_id: int) -> str | None:
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(memberships.c.state).where(
                        memberships.c.customer_id == customer_id,
                        memberships.c.chat_id == chat_id,
                    )
                )
            ).scalar_one_or_none()
