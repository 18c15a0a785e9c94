"""Paid channel and group access, end to end: the real Application against the fake Bot API
(which models chats, members, invite links and join requests) and the fake OKX. Time for
payments is the test's ManualClock (it starts at the wall clock, which the fake's links use)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot
from telegram.ext import ExtBot

from bot.access import AccessReport, AccessWorker
from bot.replica import LeaseTimes, Replica
from bot.requests import RetryingRateLimiter
from fakes.telegram import FakeTelegram
from fakes.telegram_state import SentRequest
from payments.access import AccessService
from payments.botstate.lease import LeaseStore
from payments.catalog import default_plans_path, load_catalog
from payments.clock import DAY_MS, MINUTE_MS, ManualClock
from payments.invoicing.customers import ensure_customer
from payments.storage import Database
from payments.storage.schema import access_expulsions, subscriptions
from payments.subscriptions.periods import credit_period
from tests.botkit import ADMIN, FAST, BotWorld, Customer, address_of, amount_of
from tests.conftest import backends

CLUB = -1001234567890
LINK = re.compile(r"https://t\.me/\+\S+")


def plans_with_chat(tmp_path: Path, chats: str = f"[{CLUB}]") -> Path:
    """The bundled plans file with the Pro plan granting ``chats``."""
    text = default_plans_path().read_text(encoding="utf-8")
    text = text.replace('id = "pro"\n', f'id = "pro"\nchats = {chats}\n', 1)
    path = tmp_path / "plans.toml"
    path.write_text(text, encoding="utf-8")
    return path


@asynccontextmanager
async def club_world(
    tmp_path: Path, *, env: dict[str, str] | None = None, **chat: object
) -> AsyncIterator[BotWorld]:
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans), **(env or {})}) as world:
        world.tg.add_chat(CLUB, title="Pro Club", **chat)  # type: ignore[arg-type]
        yield world


async def pay(world: BotWorld, customer: Customer) -> None:
    photo = await customer.buy("Pro", "USDT", "Tron (TRC20)")
    world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo))
    world.clock.advance(MINUTE_MS)


async def invite_link(customer: Customer, expect: str = "Join with this link") -> str:
    message = await customer.wait_text(expect, timeout=15)
    found = LINK.search(message.plain)
    assert found, message.plain
    return found.group(0)


async def test_a_paid_plan_sends_a_single_use_link_the_buyer_joins_and_a_second_user_cannot(
    tmp_path: Path,
) -> None:
    async with club_world(tmp_path) as world, world.running():
        alice, mallory = world.customer(1101), world.customer(1102)
        await pay(world, alice)
        await alice.wait_text("Payment received", timeout=15)
        link = await invite_link(alice)
        message = alice.messages()[-1]
        assert "Pro Club" in message.plain
        assert world.tg.buttons(message) == [("Join Pro Club", None)]  # a URL button
        [created] = world.tg.invite_links(CLUB)
        assert created["member_limit"] == 1 and created["creates_join_request"] is False
        lifetime = created["expire_date"] * 1000 - world.clock.now_ms()
        assert lifetime > DAY_MS - 5 * MINUTE_MS

        assert world.tg.join_by_link(alice.id, link) == "joined"
        assert world.tg.join_by_link(mallory.id, link) == "used_up"
        await world.settled()
        assert world.tg.members(CLUB) >= {alice.id}
        assert mallory.id not in world.tg.members(CLUB)
        report = await world.customer(ADMIN).send("/members pro", expect="Pro Club")
        assert "1 members" in report.plain and str(alice.id) in report.plain


async def test_someone_else_using_the_link_is_removed_and_the_buyer_gets_a_new_one(
    tmp_path: Path,
) -> None:
    async with club_world(tmp_path) as world, world.running():
        alice, mallory = world.customer(1201), world.customer(1202)
        await pay(world, alice)
        first = await invite_link(alice)

        assert world.tg.join_by_link(mallory.id, first) == "joined"  # alice shared it
        second = await invite_link(alice, "Someone else used your invite link")
        await world.tg.wait_for(lambda: world.tg.member_status(CLUB, mallory.id) == "left")
        assert second != first
        assert next(x for x in world.tg.invite_links(CLUB) if x["invite_link"] == first)[
            "is_revoked"
        ]
        bans = [c.params for c in world.tg.calls("banChatMember")]
        assert [int(b["user_id"]) for b in bans] == [mallory.id]
        assert world.tg.join_by_link(alice.id, second) == "joined"
        await world.settled()
        assert alice.id in world.tg.members(CLUB)


async def test_expiry_removes_the_member_with_ban_then_unban_and_tells_them(
    tmp_path: Path,
) -> None:
    async with club_world(tmp_path) as world, world.running():
        alice = world.customer(1301)
        await pay(world, alice)
        assert world.tg.join_by_link(alice.id, await invite_link(alice)) == "joined"
        await world.settled()
        assert world.tg.calls("unbanChatMember") == []  # a first link: no ban to lift
        before = len(world.tg.requests)

        world.clock.advance(30 * DAY_MS)
        removed = await alice.wait_text("so you were removed from", timeout=15)
        assert "Pro Club" in removed.plain
        assert [label for label, _ in world.tg.buttons(removed)] == ["Renew Pro"]
        assert world.tg.member_status(CLUB, alice.id) == "left"  # not banned: may come back
        calls = [
            (c.method, int(c.params["user_id"]), c.params.get("only_if_banned"))
            for c in world.tg.requests[before:]
            if c.method in ("banChatMember", "unbanChatMember")
        ]
        assert calls == [("banChatMember", alice.id, None), ("unbanChatMember", alice.id, True)]
        [ban] = world.tg.calls("banChatMember")  # a ban that ends by itself a minute later
        assert 50 <= int(ban.params["until_date"]) - world.clock.now_ms() // 1000 <= 70

        await world.settled()  # nothing more happens on the next runs
        await world.polled()
        assert alice.count("so you were removed from") == 1
        assert len(world.tg.calls("banChatMember")) == 1


async def test_a_renewal_before_the_end_changes_nothing_in_the_chat(tmp_path: Path) -> None:
    async with club_world(tmp_path) as world, world.running():
        alice = world.customer(1401)
        await pay(world, alice)
        assert world.tg.join_by_link(alice.id, await invite_link(alice)) == "joined"
        await world.settled()
        world.clock.advance(25 * DAY_MS)
        await pay(world, alice)  # renews: 35 more days from the old end
        await world.tg.wait_for(lambda: alice.count("Payment received") == 2, timeout=15)

        world.clock.advance(6 * DAY_MS)  # past the first end
        await world.polled()
        await world.settled()
        assert alice.id in world.tg.members(CLUB)
        assert world.tg.calls("banChatMember") == []
        assert len(world.tg.invite_links(CLUB)) == 1  # no second link either
        assert alice.count("so you were removed from") == 0


async def test_grace_days_delay_the_removal(tmp_path: Path) -> None:
    async with club_world(tmp_path, env={"GRACE_DAYS": "2"}) as world, world.running():
        alice = world.customer(1501)
        await pay(world, alice)
        assert world.tg.join_by_link(alice.id, await invite_link(alice)) == "joined"
        await world.settled()
        world.clock.advance(31 * DAY_MS)
        await alice.wait_text("has ended", timeout=15)  # the subscription itself ended
        await world.settled()
        assert alice.id in world.tg.members(CLUB)
        world.clock.advance(2 * DAY_MS)
        await alice.wait_text("so you were removed from", timeout=15)
        assert world.tg.member_status(CLUB, alice.id) == "left"


async def test_join_requests_are_approved_for_subscribers_and_declined_for_anyone_else(
    tmp_path: Path,
) -> None:
    async with club_world(tmp_path) as world, world.running():
        alice, stranger = world.customer(1601), world.customer(1602)
        await pay(world, alice)
        await invite_link(alice)
        world.tg.request_join(alice.id, CLUB)
        world.tg.request_join(stranger.id, CLUB)
        await world.tg.wait_for(lambda: not world.tg.join_requests(CLUB), timeout=15)
        assert alice.id in world.tg.members(CLUB)
        assert stranger.id not in world.tg.members(CLUB)
        assert [int(c.params["user_id"]) for c in world.tg.calls("declineChatJoinRequest")] == [
            stranger.id
        ]


async def test_join_sends_a_new_link_when_the_first_one_expired_unused(tmp_path: Path) -> None:
    async with club_world(tmp_path) as world, world.running():
        alice = world.customer(1701)
        assert "None of your running subscriptions" in (await alice.send("/join")).plain
        await pay(world, alice)
        first = await invite_link(alice)
        world.clock.advance(DAY_MS + MINUTE_MS)
        before = len(alice.messages())
        assert "on the way" in (await alice.send("/join")).plain
        fresh = await alice.wait_new(before, "Join with this link", timeout=15)
        second = LINK.findall(fresh.plain)[0]
        assert second != first
        assert world.tg.join_by_link(alice.id, second) == "joined"
        await world.settled()
        assert "already in every chat" in (await alice.send("/join")).plain


async def test_members_is_for_admins_only(tmp_path: Path) -> None:
    async with club_world(tmp_path) as world, world.running():
        assert "for the shop's admins" in (await world.customer(1801).send("/members pro")).plain
        usage = await world.customer(ADMIN).send("/members", expect="Usage")
        assert "pro" in usage.plain


async def test_missing_ban_rights_are_reported_to_admins_and_removal_retries_after_the_fix(
    tmp_path: Path,
) -> None:
    async with club_world(tmp_path, bot_rights={"can_restrict_members": False}) as world:
        admin = world.customer(ADMIN)
        async with world.running():
            alert = await admin.wait_text("cannot manage its paid chats", timeout=15)
            assert "lacks the right to ban members (can_restrict_members)" in alert.plain
            alice = world.customer(1901)
            await pay(world, alice)
            assert world.tg.join_by_link(alice.id, await invite_link(alice)) == "joined"
            await world.settled()
            world.clock.advance(30 * DAY_MS)
            failing = await admin.wait_text("Cannot remove members in", timeout=15)
            assert "Pro Club" in failing.plain
            world.clock.advance(10 * MINUTE_MS)  # several retries: still one alert
            await world.polled()
            await world.settled()
            assert admin.count("Cannot remove members in") == 1
            assert alice.id in world.tg.members(CLUB)

            world.tg.set_bot_rights(CLUB, can_restrict_members=True)
            world.clock.advance(2 * 60 * MINUTE_MS)  # past the retry backoff
            await alice.wait_text("so you were removed from", timeout=15)
            assert alice.id not in world.tg.members(CLUB)


async def test_in_webhook_mode_a_removal_due_while_the_bot_was_down_happens_after_restart(
    tmp_path: Path,
) -> None:
    async with club_world(tmp_path) as world:
        alice = world.customer(2001)
        async with world.serving(webhook=True):
            await pay(world, alice)
            assert world.tg.join_by_link(alice.id, await invite_link(alice)) == "joined"
            await world.settled()
            assert "1 members" in (await world.customer(ADMIN).send("/members pro")).plain
        world.clock.advance(31 * DAY_MS)  # the end passes while the bot is down
        async with world.serving(webhook=True):
            await alice.wait_text("so you were removed from", timeout=15)
            assert world.tg.member_status(CLUB, alice.id) == "left"


async def test_a_join_whose_update_never_arrived_is_found_by_asking_telegram(
    tmp_path: Path,
) -> None:
    # soak finding: a bot killed between fetching a chat_member update and handling it never
    # hears of the join, and the membership stayed "invited" while the customer was in
    async with club_world(tmp_path) as world:
        alice = world.customer(1101)
        async with world.running():
            await pay(world, alice)
            link = await invite_link(alice)
        assert world.tg.join_by_link(alice.id, link) == "joined"  # while the bot is down
        lost = world.tg.take_updates(None, 100, ["chat_member"])  # ... and the update is lost
        world.tg.take_updates(lost[-1]["update_id"] + 1, 0, [])
        async with world.running(), world.database() as db:
            access = AccessService(db, world.clock, load_catalog(world.settings.plans_file))
            assert await access.state(alice.id, CLUB) == "invited"
            world.clock.advance(2 * MINUTE_MS)  # the bot asks the chat after a minute
            for _ in range(100):
                if await access.state(alice.id, CLUB) == "member":
                    break
                await asyncio.sleep(0.1)
            assert await access.state(alice.id, CLUB) == "member"


async def test_a_backlog_is_worked_off_run_by_run_and_a_removal_does_not_wait_behind_it(
    tmp_path: Path,
) -> None:
    # each run's time budget is spent after its first item; the test starts the runs
    by_hand = replace(FAST, access=3600, access_budget=0)
    async with club_world(tmp_path) as world, world.running(timings=by_hand) as application:
        services = application.bot_data.services
        assert services is not None
        access = services.access
        alice, bob, carol = world.customer(1401), world.customer(1402), world.customer(1403)
        await pay(world, alice)
        await alice.wait_text("Payment received", timeout=15)
        await services.replica.renew()  # the lease, by the moved clock (the run is fenced)
        assert await access.run() == AccessReport(invited=1)
        assert world.tg.join_by_link(alice.id, await invite_link(alice)) == "joined"

        world.clock.advance(30 * DAY_MS - 10 * MINUTE_MS)
        for customer in (bob, carol):
            await pay(world, customer)
            await customer.wait_text("Payment received", timeout=15)
        world.clock.advance(20 * MINUTE_MS)  # alice's 30 days are over, bob's and carol's not
        await services.replica.renew()  # the lease, by the moved clock (removals are fenced)

        assert await access.run() == AccessReport(invited=1)  # bob's link
        await invite_link(bob)
        assert carol.count("Join with this link") == 0  # carol waits for the next run ...
        assert await access.run() == AccessReport(removed=1)  # ... and alice is out first
        await alice.wait_text("so you were removed from", timeout=15)
        assert world.tg.member_status(CLUB, alice.id) == "left"
        assert await access.run() == AccessReport(invited=1)
        await invite_link(carol)
        assert await access.run() == AccessReport()  # the backlog is done


# --- faults between the calls of a removal or an expulsion --------------------------------------

BY_HAND = replace(FAST, access=3600)  # the test starts the chat-access runs


async def credit(world: BotWorld, db: Database, customer_id: int, key: str) -> None:
    """A renewal of Pro credited (as a paid invoice would), without waiting for a poll."""
    async with db.transaction() as conn:
        await ensure_customer(conn, customer_id, world.clock.now_ms())
        await credit_period(
            conn,
            customer_id=customer_id,
            plan_id="pro",
            days=30,
            now_ms=world.clock.now_ms(),
            invoice_id=key,
        )


def on_answer(
    world: BotWorld, method: str, user_id: int, act: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Run ``act`` in the test's loop once the fake Bot API has carried out ``method`` for
    ``user_id``, before the bot hears the answer (the fake waits for it)."""
    loop = asyncio.get_running_loop()
    done: list[bool] = []

    def observe(request: SentRequest, _result: object) -> None:
        if request.method == method and int(request.params["user_id"]) == user_id and not done:
            done.append(True)
            asyncio.run_coroutine_threadsafe(act(), loop).result(timeout=10)

    world.tg.observers.append(observe)


async def run_now(access: AccessWorker) -> AccessReport:
    """One chat-access run now, as the job makes it. The lease is renewed first: the test moves
    the clock the lease's expiry is measured by, and the run is fenced by it."""
    assert access.replica is not None
    await access.replica.renew()
    return await access.run()


async def member_with_access(world: BotWorld, access: AccessWorker, customer: Customer) -> None:
    await pay(world, customer)
    await customer.wait_text("Payment received", timeout=15)
    await run_now(access)
    assert world.tg.join_by_link(customer.id, await invite_link(customer)) == "joined"
    await world.settled()


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("fault", ["timeout", "429", "500"])
async def test_a_failed_unban_is_owed_until_made_even_after_a_renewal(
    tmp_path: Path, backend: str, fault: str
) -> None:
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running(timings=BY_HAND) as application:
            services = application.bot_data.services
            assert services is not None
            alice = world.customer(2101)
            await member_with_access(world, services.access, alice)

            world.clock.advance(30 * DAY_MS + MINUTE_MS)
            await services.replica.renew()
            # the ban works; the unban does not (every retry of the rate limiter fails too)
            world.tg.fail_next("unbanChatMember", fault, count=3, hang_s=0.2)
            assert (await services.access.run()).removed == 0
            assert world.tg.member_status(CLUB, alice.id) == "kicked"
            world.tg.clear_faults()  # Telegram answers again

            await pay(world, alice)  # she renews before the next run
            await world.tg.wait_for(lambda: alice.count("Payment received") == 2, timeout=15)
            assert "already in every chat" not in (await alice.send("/join")).plain
            before = len(alice.messages())
            for _ in range(50):  # the next runs (a 429 pauses the chat's calls for a second)
                await run_now(services.access)  # the owed unban, whatever the entitlement
                if alice.count("Join with this link") > 1:
                    break
                await asyncio.sleep(0.1)
            assert world.tg.member_status(CLUB, alice.id) == "left"
            fresh = await alice.wait_new(before, "Join with this link", timeout=15)
            link = LINK.findall(fresh.plain)[0]
            lifted = world.tg.calls("unbanChatMember")[-1]  # made sure, before the link
            assert (int(lifted.params["user_id"]), lifted.params["only_if_banned"]) == (
                alice.id,
                True,
            )
            assert world.tg.join_by_link(alice.id, link) == "joined"
            await world.settled()
            assert "already in every chat" in (await alice.send("/join")).plain
            assert alice.count("so you were removed from") == 0


@pytest.mark.parametrize("backend", backends())
async def test_a_renewal_paid_during_a_removal_run_is_not_kicked_and_the_goodbye_has_the_old_end(
    tmp_path: Path, backend: str
) -> None:
    plans = plans_with_chat(tmp_path)
    # the ban's answer waits for two renewals to commit: a lease long enough that the run's cut
    # on one call (a third of the time it counts itself primary) does not fall first
    env = {"PLANS_FILE": str(plans), "PAYMENT_POLL_SECONDS": "5"}
    async with BotWorld.open(tmp_path, env=env, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running(timings=BY_HAND) as application, world.database() as db:
            services = application.bot_data.services
            assert services is not None
            alice, bob = world.customer(2201), world.customer(2202)
            await member_with_access(world, services.access, alice)
            await member_with_access(world, services.access, bob)
            [old_end] = [
                s["ends_at"]
                for s in await world.rows(subscriptions)
                if s["customer_id"] == alice.id
            ]

            world.clock.advance(31 * DAY_MS)
            await services.replica.renew()
            await credit(world, db, 2299, "WARM-UP")  # the test's connection is open already

            async def both_renew() -> None:  # while alice's ban is in flight
                await credit(world, db, alice.id, "RENEW-A")
                await credit(world, db, bob.id, "RENEW-B")

            on_answer(world, "banChatMember", alice.id, both_renew)
            await services.access.run()
            goodbye = await alice.wait_text("so you were removed from", timeout=15)
            ended = datetime.fromtimestamp(old_end / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
            assert f"ended on {ended}" in goodbye.plain  # the end that ended, not the new one
            await world.settled()
            assert [int(c.params["user_id"]) for c in world.tg.calls("banChatMember")] == [alice.id]
            assert bob.id in world.tg.members(CLUB)
            assert bob.count("so you were removed from") == 0


@pytest.mark.parametrize("backend", backends())
async def test_an_intruder_whose_kick_failed_is_expelled_by_the_next_run(
    tmp_path: Path, backend: str
) -> None:
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running(timings=BY_HAND) as application:
            services = application.bot_data.services
            assert services is not None
            alice, mallory = world.customer(2301), world.customer(2302)
            await pay(world, alice)
            await alice.wait_text("Payment received", timeout=15)
            await run_now(services.access)
            link = await invite_link(alice)

            world.tg.fail_next("banChatMember", "500", count=3)  # the handler's kick fails
            assert world.tg.join_by_link(mallory.id, link) == "joined"
            await invite_link(alice, "Someone else used your invite link")
            await world.settled()
            assert mallory.id in world.tg.members(CLUB)
            assert len(await world.rows(access_expulsions)) == 1  # still owed

            assert (await run_now(services.access)).expelled == 1
            assert world.tg.member_status(CLUB, mallory.id) == "left"
            assert await world.rows(access_expulsions) == []
            assert (await run_now(services.access)).expelled == 0


@pytest.mark.parametrize("backend", backends())
async def test_an_owed_expulsion_of_someone_who_became_entitled_is_dropped(
    tmp_path: Path, backend: str
) -> None:
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running(timings=BY_HAND) as application, world.database() as db:
            services = application.bot_data.services
            assert services is not None
            alice, mallory = world.customer(2401), world.customer(2402)
            await pay(world, alice)
            await alice.wait_text("Payment received", timeout=15)
            await run_now(services.access)
            link = await invite_link(alice)
            world.tg.fail_next("banChatMember", "timeout", count=3, hang_s=0.2)
            assert world.tg.join_by_link(mallory.id, link) == "joined"
            await invite_link(alice, "Someone else used your invite link")
            await world.settled()
            bans = len(world.tg.calls("banChatMember"))

            await credit(world, db, mallory.id, "MALLORY")  # she pays for Pro herself
            assert (await run_now(services.access)).expelled == 0
            assert len(world.tg.calls("banChatMember")) == bans
            assert mallory.id in world.tg.members(CLUB)
            assert await world.rows(access_expulsions) == []


@pytest.mark.parametrize("backend", backends())
async def test_an_intruder_left_banned_who_then_pays_is_unbanned_and_can_join(
    tmp_path: Path, backend: str
) -> None:
    """The intruder's kick banned her but the unban failed; she pays before the run retries:
    the expulsion is dropped and the ban lifted, so the first link she is sent works."""
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running(timings=BY_HAND) as application, world.database() as db:
            services = application.bot_data.services
            assert services is not None
            alice, mallory = world.customer(2411), world.customer(2412)
            await pay(world, alice)
            await alice.wait_text("Payment received", timeout=15)
            await run_now(services.access)
            link = await invite_link(alice)
            world.tg.fail_next("unbanChatMember", "500", count=3)
            assert world.tg.join_by_link(mallory.id, link) == "joined"
            await invite_link(alice, "Someone else used your invite link")
            await world.settled()
            assert mallory.id in world.tg.banned(CLUB)

            await credit(world, db, mallory.id, "MALLORY")  # she pays for Pro herself
            await run_now(services.access)
            assert mallory.id not in world.tg.banned(CLUB)
            await world.settled()
            own = await invite_link(mallory)
            assert world.tg.join_by_link(mallory.id, own) == "joined"


@pytest.mark.parametrize("backend", backends())
async def test_a_replica_that_lost_the_lease_removes_nobody(tmp_path: Path, backend: str) -> None:
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running(timings=BY_HAND) as application, world.database() as db:
            services = application.bot_data.services
            assert services is not None
            alice = world.customer(2501)
            await member_with_access(world, services.access, alice)
            world.clock.advance(31 * DAY_MS)  # the lease lapses by the clock: another takes it
            other = LeaseStore(db, services.replica.name)
            for _ in range(100):  # (unless this replica renewed it first: let it lapse again)
                taken = await other.acquire(
                    holder="other", now_ms=world.clock.now_ms(), ttl_ms=DAY_MS
                )
                if taken is not None:
                    break
                world.clock.advance(MINUTE_MS)
            assert taken is not None
            assert await services.access.run() == AccessReport()
            assert world.tg.calls("banChatMember") == []
            assert alice.id in world.tg.members(CLUB)


@pytest.mark.parametrize("backend", backends())
async def test_join_asks_telegram_before_saying_in_every_chat(tmp_path: Path, backend: str) -> None:
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        async with world.running():
            alice = world.customer(2601)
            await pay(world, alice)
            assert world.tg.join_by_link(alice.id, await invite_link(alice)) == "joined"
            await world.settled()
            world.tg.add_member(CLUB, alice.id, "kicked")  # banned behind the bot's back
            before = len(alice.messages())
            assert "on the way" in (await alice.send("/join")).plain
            fresh = await alice.wait_new(before, "Join with this link", timeout=15)
            assert world.tg.join_by_link(alice.id, LINK.findall(fresh.plain)[0]) == "joined"


@pytest.mark.parametrize("backend", backends())
async def test_a_crash_between_the_ban_and_the_unban_is_undone_after_a_renewal_and_restart(
    tmp_path: Path, backend: str
) -> None:
    plans = plans_with_chat(tmp_path)
    async with BotWorld.open(tmp_path, env={"PLANS_FILE": str(plans)}, backend=backend) as world:
        world.tg.add_chat(CLUB, title="Pro Club")
        alice = world.customer(2701)
        async with world.running(timings=BY_HAND) as application, world.database() as db:
            services = application.bot_data.services
            assert services is not None
            await member_with_access(world, services.access, alice)
            world.clock.advance(31 * DAY_MS)
            await credit(world, db, 2799, "WARM-UP")
            runs: list[asyncio.Task[AccessReport]] = []

            async def crash() -> None:  # the run dies as Telegram carries out the ban
                runs[-1].cancel()

            on_answer(world, "banChatMember", alice.id, crash)
            for _ in range(20):  # a loaded machine may end a run early (its lease margin)
                runs.append(asyncio.create_task(run_now(services.access)))
                with contextlib.suppress(asyncio.CancelledError):
                    await runs[-1]
                if runs[-1].cancelled():
                    break
            assert runs[-1].cancelled(), "no run reached the ban"
            assert world.tg.member_status(CLUB, alice.id) == "kicked"
            await credit(world, db, alice.id, "RENEW")  # she renews while the bot is down
        async with world.running(timings=BY_HAND) as application:
            services = application.bot_data.services
            assert services is not None
            before = len(alice.messages())
            await run_now(services.access)  # the unban that was owed
            assert world.tg.member_status(CLUB, alice.id) == "left"
            await run_now(services.access)
            fresh = await alice.wait_new(before, "Join with this link", timeout=15)
            assert world.tg.join_by_link(alice.id, LINK.findall(fresh.plain)[0]) == "joined"
            assert alice.count("so you were removed from") == 0


async def test_a_run_stops_before_a_call_the_lease_may_not_outlast_and_the_next_one_finishes(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    catalog = load_catalog(plans_with_chat(tmp_path))
    service = AccessService(db, clock, catalog)
    alice, bob = 3101, 3102
    now_s = [0.0]  # the replica's monotonic clock
    replica = Replica(
        LeaseStore(db, "jobs"), clock, LeaseTimes(renew_s=1, ttl_s=6), monotonic=lambda: now_s[0]
    )
    with FakeTelegram() as tg:
        tg.clock = lambda: clock.now_ms() / 1000
        tg.add_chat(CLUB, title="Pro Club")
        async with Bot(tg.token, base_url=tg.base_url) as bot:
            worker = AccessWorker(bot, service, clock, replica=replica, call_s=2)
            for customer in (alice, bob):
                await credit_at(db, clock, customer)
            await replica.renew()  # primary until 5 s: 6 s lease, 1 s margin
            assert (await worker.run()).invited == 2
            for link in tg.invite_links(CLUB):
                customer = alice if link["name"].endswith(" #1") else bob
                assert tg.join_by_link(customer, link["invite_link"]) == "joined"
                await service.joined(CLUB, customer, link["invite_link"])

            clock.advance(31 * DAY_MS)
            await replica.renew()

            def pause(request: SentRequest, _result: object) -> None:
                if request.method == "banChatMember":
                    now_s[0] = 3.5  # the process stalls: 1.5 s left, a call may take 2

            tg.observers.append(pause)
            assert await worker.run() == AccessReport()
            assert [c.method for c in tg.requests if "ban" in c.method.lower()] == ["banChatMember"]
            assert tg.member_status(CLUB, alice) == "kicked"  # for a minute at most
            assert tg.member_status(CLUB, bob) == "member"

            tg.observers.clear()
            await replica.renew()  # renewed in time: primary for 5 s more
            assert (await worker.run()).removed == 2
            assert tg.member_status(CLUB, alice) == tg.member_status(CLUB, bob) == "left"
            assert await service.state(alice, CLUB) == await service.state(bob, CLUB) == "removed"


async def test_a_run_waits_for_its_turn_under_the_chats_rate_outside_the_cut_of_each_call(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """A chat takes a few requests at once and then one at a time (20 a minute); each call of a
    run is cut after ``call_s`` (a fraction of a second with short leases). Waiting for the
    chat's next turn is not part of the cut: a backlog bigger than the chat's burst is worked
    off in one run, not cut at the first call that has to wait (and then one call a run)."""
    catalog = load_catalog(plans_with_chat(tmp_path))
    service = AccessService(db, clock, catalog)
    customers = (3201, 3202, 3203)
    limiter = RetryingRateLimiter(group_rate=(2, 1.0))  # two at once, then one every 0.5 s
    with FakeTelegram() as tg:
        tg.clock = lambda: clock.now_ms() / 1000
        tg.add_chat(CLUB, title="Pro Club")
        async with ExtBot(tg.token, base_url=tg.base_url, rate_limiter=limiter) as bot:
            worker = AccessWorker(bot, service, clock, call_s=0.2, room=limiter.room)
            for customer in customers:
                await credit_at(db, clock, customer)
            assert (await worker.run()).invited == 3  # the third link waited for its turn
            for link in tg.invite_links(CLUB):
                customer = customers[int(link["name"].rsplit("#", 1)[1]) - 1]
                assert tg.join_by_link(customer, link["invite_link"]) == "joined"
                await service.joined(CLUB, customer, link["invite_link"])

            clock.advance(31 * DAY_MS)
            assert (await worker.run()).removed == 3  # six calls: a ban and an unban each
            assert {tg.member_status(CLUB, c) for c in customers} == {"left"}


async def credit_at(db: Database, clock: ManualClock, customer_id: int) -> None:
    async with db.transaction() as conn:
        await ensure_customer(conn, customer_id, clock.now_ms())
        await credit_period(
            conn,
            customer_id=customer_id,
            plan_id="pro",
            days=30,
            now_ms=clock.now_ms(),
            invoice_id=f"INV{customer_id}",
        )
