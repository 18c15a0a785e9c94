"""The Telegram half of chat access: invite links, removals and the bot's rights in its chats.

:class:`payments.access.AccessService` says what is due and records what happened; this module
makes the Bot API calls. A removal is a ban followed by an unban with ``only_if_banned``, so the
person can come back through a new link when they renew (an unban without that flag would also
remove a current member: Telegram's trap). The ban lasts BAN_S only, the removal is claimed in
the database before the ban (so its unban is owed until made), and an invite lifts any ban first.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, zip_longest
from typing import Protocol, TypeVar

from telegram import Bot, ChatMember, ChatMemberAdministrator, ChatMemberOwner
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.replica import LeaseTimes, Replica
from payments.access import LINK_LIFETIME_MS, AccessService, Due, Expulsion
from payments.botstate import Lease
from payments.clock import Clock

log = logging.getLogger(__name__)
T = TypeVar("T")

# the rights a paid chat needs, and how a problem is named to the merchant
RIGHTS = {
    "can_invite_users": "to invite users (can_invite_users)",
    "can_restrict_members": "to ban members (can_restrict_members)",
}


@dataclass(frozen=True)
class ChatRights:
    chat_id: int
    title: str
    problem: str | None  # None: the bot can do everything it needs there

    def line(self) -> str:
        name = f"chat {self.chat_id}" + (f" ({self.title})" if self.title else "")
        return f"{name}: {self.problem or 'ok, the bot can invite and remove members'}"


async def chat_rights(bot: Bot, chats: Iterable[int]) -> list[ChatRights]:
    """For each chat: is the bot an administrator there, with the rights to invite and to ban?
    A chat Telegram does not answer for is reported, never raised."""
    me = await bot.get_me()
    out: list[ChatRights] = []
    for chat_id in chats:
        title = ""
        try:
            chat = await bot.get_chat(chat_id)
            title = chat.title or ""
            member = await bot.get_chat_member(chat_id, me.id)
        except (BadRequest, Forbidden) as exc:
            problem = f"Telegram says {exc.message!r}: add the bot to it as an administrator"
            out.append(ChatRights(chat_id, title, problem))
            continue
        if isinstance(member, ChatMemberOwner):
            out.append(ChatRights(chat_id, title, None))
            continue
        if not isinstance(member, ChatMemberAdministrator):
            problem = f"the bot is not an administrator there (it is {member.status})"
            out.append(ChatRights(chat_id, title, problem))
            continue
        missing = [words for right, words in RIGHTS.items() if not getattr(member, right, False)]
        lacks = f"the bot lacks the right {' and '.join(missing)}" if missing else None
        out.append(ChatRights(chat_id, title, lacks))
    return out


_IN = {ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER}
LOOK_EVERY_S = 20.0
# One run's time. Telegram allows about 20 requests a minute per group or channel and the
# rate limiter waits for them: a backlog is worked off over several runs (invites and
# removals taking turns), so a graceful stop never waits long for a run to finish.
BUDGET_S = 30.0
# The longest one Bot API call of a run may take (PTB's time-outs and a short 429 wait); it is
# cut there, and the run makes it only while the replica stays primary that long.
CALL_S = 10.0
# A removal's ban ends by itself this long after it was made (Telegram takes 30 s to 366 days;
# anything else is for ever), so an unban that never comes strands nobody.
BAN_S = 60


def call_limit(lease: LeaseTimes) -> float:
    """``call_s`` for a lease: at most CALL_S, and a third of the time a replica counts itself
    primary after a renewal, so a run goes on between renewals (tests use very short leases)."""
    return min(CALL_S, (lease.ttl_s - lease.renew_s) / 3)


def is_in_chat(member: ChatMember) -> bool:
    if member.status == ChatMember.RESTRICTED:
        return bool(getattr(member, "is_member", False))
    return member.status in _IN


@dataclass(frozen=True)
class AccessReport:
    invited: int = 0
    removed: int = 0
    failed: int = 0
    expelled: int = 0


class _LeaseEnding(Exception):
    """The replica may not be primary for the next call's longest time: the run stops."""


class _NoRoom(Exception):
    """Telegram's rates leave the next call no turn within the run's time: the run stops."""


class Room(Protocol):
    """Waits up to ``within_s`` for a request in ``chat_id`` to have its turn under Telegram's
    rates; False when it would not (:meth:`bot.requests.RetryingRateLimiter.room`)."""

    async def __call__(self, chat_id: int, within_s: float, /) -> bool: ...


def _close(call: Awaitable[object]) -> None:
    if inspect.iscoroutine(call):
        call.close()


class AccessWorker:
    """Runs what is due (the ``chat-access`` job) and acts on joins (the chat handlers).

    The run is a singleton: with a ``replica`` it takes its removals and expulsions under the
    lease, and before each Bot API call checks that the replica stays primary for that call's
    longest time (``call_s``, each call is cut there), stopping the run otherwise. The handlers'
    calls (a join on whichever replica Telegram picked) are not fenced."""

    def __init__(
        self,
        bot: Bot,
        service: AccessService,
        clock: Clock,
        *,
        budget_s: float = BUDGET_S,
        replica: Replica | None = None,
        call_s: float = CALL_S,
        room: Room | None = None,
    ) -> None:
        self.bot = bot
        self.room = room
        self._deadline: float | None = None  # the running run's end (time.monotonic())
        self.service = service
        self.clock = clock
        self.budget_s = budget_s
        self.replica = replica
        self.call_s = call_s
        self._removals_first = False
        self.titles: dict[int, str] = {}
        self._looked: dict[int, float] = {}  # chat id -> when a member was last looked up

    @property
    def chats(self) -> tuple[int, ...]:
        return self.service.chats

    def title(self, chat_id: int) -> str:
        return self.titles.get(chat_id) or str(chat_id)

    async def _title(self, chat_id: int) -> str:
        """The chat's title, asked of Telegram once (the rights check also fills it in)."""
        if chat_id not in self.titles:
            try:
                self.titles[chat_id] = (await self.bot.get_chat(chat_id)).title or ""
            except (BadRequest, Forbidden):
                return str(chat_id)  # the invite or removal will report the real problem
        return self.title(chat_id)

    async def _call(self, fenced: bool, chat_id: int, call: Awaitable[T]) -> T:
        """A Bot API call in ``chat_id``; in the run (``fenced``) it first waits for its turn
        under Telegram's rates (``room``, within the run's time), then goes out only while the
        replica stays primary for ``call_s`` more seconds, and is cut after ``call_s`` (a
        time-out, as far as the run cares). The wait for its turn is not part of the cut: a
        chat's 20 requests a minute would otherwise cut every call past the first twenty."""
        if not fenced:
            return await call
        if self.room is not None:
            left = self.budget_s if self._deadline is None else self._deadline - time.monotonic()
            if not await self.room(chat_id, max(0.0, left)):
                _close(call)
                raise _NoRoom
        if self.replica is not None and not self.replica.live(self.call_s):
            _close(call)
            raise _LeaseEnding
        return await asyncio.wait_for(call, self.call_s)

    async def check_rights(self) -> list[ChatRights]:
        """Check every paid chat, remember titles, and tell the admins what is wrong."""
        if not self.chats:
            return []
        report = await chat_rights(self.bot, self.chats)
        self.titles.update({r.chat_id: r.title for r in report if r.title})
        problems = [r.line() for r in report if r.problem]
        for line in problems:
            log.warning("paid chat: %s", line)
        await self.service.report_rights(problems)
        return report

    async def run(self) -> AccessReport:
        """Expel who joined through someone else's link, grant what subscriptions now
        entitle, send the links, remove who is no longer entitled. Stops early when Telegram
        cannot be reached, the lease is ending, or the run's time budget is spent (after at
        least one item); the next run continues where this one stopped."""
        if not self.service.enabled:
            return AccessReport()
        fence = None if self.replica is None else self.replica.fence
        if self.replica is not None and fence is None:
            return AccessReport()  # a standby: the primary runs it
        await self.service.sync()
        deadline = self._deadline = time.monotonic() + self.budget_s
        invited = removed = failed = expelled = 0
        try:
            for expulsion in await self.service.due_expulsions(lease=fence):
                done = await self._expel_due(expulsion, fence)
                expelled += done is True
                failed += done is False
                if time.monotonic() >= deadline:
                    log.info("chat access: time budget spent; the next run goes on")
                    return AccessReport(invited, removed, failed, expelled)
            invites = [(True, item) for item in await self.service.due_invites(lease=fence)]
            removals = [(False, item) for item in await self.service.due_removals(lease=fence)]
            # taking turns, and each run starting with the other kind: a backlog of new
            # subscribers never holds back a removal, or the reverse
            first, second = (removals, invites) if self._removals_first else (invites, removals)
            if invites and removals:
                self._removals_first = not self._removals_first
            for turn in chain.from_iterable(zip_longest(first, second)):
                if turn is None:
                    continue
                is_invite, item = turn
                done = await (
                    self.invite(item, fenced=True) if is_invite else self.remove(item, fence)
                )
                invited += done is True and is_invite
                removed += done is True and not is_invite
                failed += done is False
                if time.monotonic() >= deadline:
                    log.info("chat access: time budget spent; the next run goes on")
                    return AccessReport(invited, removed, failed, expelled)
            for item in await self.service.unconfirmed(limit=2 * len(self.chats)):
                now = time.monotonic()
                if now >= deadline:
                    break
                if now - self._looked.get(item.chat_id, -math.inf) >= LOOK_EVERY_S:
                    self._looked[item.chat_id] = now
                    await self.confirm(item)
        except (NetworkError, RetryAfter, TimeoutError) as exc:  # time-out, 5xx, 429
            log.warning("chat access: Telegram unreachable, continuing later: %r", exc)
        except _LeaseEnding:
            log.info("chat access: the lease may end before the next call; stopping the run")
        except _NoRoom:
            log.info("chat access: no turn under Telegram's rates in this run; the next goes on")
        finally:
            self._deadline = None
        return AccessReport(invited, removed, failed, expelled)

    async def invite(self, item: Due, *, replaced: bool = False, fenced: bool = False) -> bool:
        """A link for an entitled customer. One who had access before is first made sure not to
        be banned (a ban left over from a removal or an expulsion would make the link useless);
        a first link costs one request only (a backlog of new subscribers goes at the rate
        Telegram allows per chat)."""
        try:
            if item.had_access:
                await self._call(
                    fenced,
                    item.chat_id,
                    self.bot.unban_chat_member(item.chat_id, item.customer_id, only_if_banned=True),
                )
        except (BadRequest, Forbidden) as exc:  # no right to ban: nobody was banned by the bot
            log.info("chat %s: cannot lift a ban of %s: %s", item.chat_id, item.customer_id, exc)
        expires_ms = self.clock.now_ms() + LINK_LIFETIME_MS
        try:
            link = await self._call(
                fenced,
                item.chat_id,
                self.bot.create_chat_invite_link(
                    item.chat_id,
                    expire_date=datetime.fromtimestamp(expires_ms / 1000, tz=UTC),
                    member_limit=1,
                    name=f"subsbot #{item.membership_id}"[:32],
                ),
            )
        except (BadRequest, Forbidden) as exc:
            await self._failed(item, "create invite links", exc)
            return False
        kept = await self.service.invited(
            item,
            link=link.invite_link,
            expires_at=expires_ms,
            chat_title=await self._title(item.chat_id),
            replaced=replaced,
        )
        if not kept:  # someone else (a concurrent run) sent a link first
            await self._revoke(item.chat_id, [link.invite_link], fenced=fenced)
        return kept

    async def confirm(self, item: Due) -> None:
        """Ask the chat whether an invited customer is in (their join's update may have been
        lost in a crash); record the join, or look again later. At most one look-up per chat
        every LOOK_EVERY_S: the rate limiter counts it against the chat's 20 requests a minute,
        which the invite links need (three a minute leave them 17)."""
        try:
            member = await self._call(
                True, item.chat_id, self.bot.get_chat_member(item.chat_id, item.customer_id)
            )
        except (BadRequest, Forbidden) as exc:
            log.info("chat %s: cannot look up %s: %s", item.chat_id, item.customer_id, exc)
            member = None
        if member is not None and is_in_chat(member):
            outcome = await self.service.joined(item.chat_id, item.customer_id, None)
            if outcome.kind != "stranger":
                log.info("chat %s: %s is in; recorded the join", item.chat_id, item.customer_id)
                return
        await self.service.looked_at(item)

    async def remove(self, item: Due, fence: Lease | None = None) -> bool | None:
        """Claim the removal (the customer is still not entitled), then ban and unban. A
        removal under way whose customer renewed meanwhile is undone instead: the ban is
        lifted and nobody is told anything. None: nothing was due any more."""
        claim = await self.service.claim_removal(item, lease=fence)
        if claim is None:
            return None
        try:
            if claim.entitled:
                await self._call(
                    True,
                    claim.chat_id,
                    self.bot.unban_chat_member(
                        claim.chat_id, claim.customer_id, only_if_banned=True
                    ),
                )
                member = await self._call(
                    True,
                    claim.chat_id,
                    self.bot.get_chat_member(claim.chat_id, claim.customer_id),
                )
                await self.service.restored(claim, in_chat=is_in_chat(member))
                log.info("chat %s: %s renewed during the removal", claim.chat_id, claim.customer_id)
                return None
            await self.kick(claim.chat_id, claim.customer_id, fenced=True)
        except (BadRequest, Forbidden) as exc:
            await self._failed(claim, "remove members", exc)
            return False
        links = await self.service.removed(claim, chat_title=await self._title(claim.chat_id))
        await self._revoke(claim.chat_id, links, fenced=True)
        return True

    async def kick(self, chat_id: int, user_id: int, *, fenced: bool = False) -> None:
        """Remove from the chat without a lasting ban: they may come back with a new link.
        The ban ends by itself BAN_S later should the unban never be made."""
        until = self.clock.now_ms() // 1000 + BAN_S
        ban = self.bot.ban_chat_member(chat_id, user_id, until_date=until)
        await self._call(fenced, chat_id, ban)
        unban = self.bot.unban_chat_member(chat_id, user_id, only_if_banned=True)
        await self._call(fenced, chat_id, unban)

    async def expel(self, chat_id: int, user_id: int, link: str | None) -> None:
        """Someone joined through a link made for another customer: out, and the link dies.
        The expulsion was stored with the join's decision; a failure leaves it to the run."""
        try:
            await self.kick(chat_id, user_id)
        except TelegramError as exc:
            log.warning("could not remove %s from %s (retried later): %s", user_id, chat_id, exc)
        else:
            await self.service.expelled(chat_id, user_id)
        if link is not None:
            await self._revoke(chat_id, [link])

    async def _expel_due(self, item: Expulsion, fence: Lease | None) -> bool | None:
        """A stored expulsion, in the run: dropped if they became entitled (and a ban an earlier
        attempt left lifted, so their own link works), else kicked."""
        claimed = await self.service.claim_expulsion(item, lease=fence)
        if claimed == "dropped":
            try:
                unban = self.bot.unban_chat_member(item.chat_id, item.user_id, only_if_banned=True)
                await self._call(True, item.chat_id, unban)
            except (BadRequest, Forbidden) as exc:  # no right to ban: nobody was banned
                log.info("chat %s: cannot lift a ban of %s: %s", item.chat_id, item.user_id, exc)
        if claimed != "kick":
            return None
        try:
            await self.kick(item.chat_id, item.user_id, fenced=True)
        except (BadRequest, Forbidden) as exc:
            log.warning("chat %s: cannot expel %s: %s", item.chat_id, item.user_id, exc.message)
            await self.service.expulsion_failed(item, error=exc.message)
            return False
        await self.service.expelled(item.chat_id, item.user_id)
        if item.link is not None:
            await self._revoke(item.chat_id, [item.link], fenced=True)
        return True

    async def not_in(self, customer_id: int) -> int:
        """/join: ask Telegram about each chat the customer is a member of as far as the bot
        knows, and record who is not in (or banned) as gone, so they get a new link. Returns
        how many. A chat Telegram does not answer for is taken at the bot's word."""
        gone = 0
        for chat_id in await self.service.member_chats(customer_id):
            try:
                member = await self.bot.get_chat_member(chat_id, customer_id)
            except TelegramError as exc:
                log.info("chat %s: cannot look up %s: %s", chat_id, customer_id, exc)
                continue
            if not is_in_chat(member):
                await self.service.left(chat_id, customer_id)
                gone += 1
        return gone

    async def _revoke(self, chat_id: int, links: Iterable[str], *, fenced: bool = False) -> None:
        for link in links:
            try:
                revoke = self.bot.revoke_chat_invite_link(chat_id, link)
                await self._call(fenced, chat_id, revoke)
            except TelegramError as exc:  # expired or already revoked: nothing to undo
                log.info("could not revoke an invite link of %s: %s", chat_id, exc)

    async def _failed(self, item: Due, action: str, exc: TelegramError) -> None:
        log.warning("chat %s: cannot %s: %s", item.chat_id, action, exc.message)
        await self.service.failed(
            item, action=action, error=exc.message, chat_title=await self._title(item.chat_id)
        )
