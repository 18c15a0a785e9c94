"""What the outbox tells a customer, and when: expiry, activation after a restart, activation
through Telegram's faults (429, 5xx, a blocked bot), messages in the order they were written
through retries, and the reminders before a subscription ends.
The real Application against the fake Bot API and the fake OKX; time for payments is the test's
ManualClock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fakes.telegram import FakeTelegram
from payments.clock import DAY_MS, MINUTE_MS, ManualClock
from payments.storage import Database
from payments.storage.schema import customers, outbox, subscriptions
from tests import outbox_kit
from tests.botkit import BotWorld, Customer, address_of, amount_of, invoice_id_of
from tests.conftest import backends
from tests.outbox_kit import CUSTOMER_ID, write

# --- expiry --------------------------------------------------------------------------------------


async def test_an_unpaid_invoice_expires_and_its_photo_says_do_not_pay(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(801)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.clock.advance(119 * MINUTE_MS)
        await world.polled()
        assert alice.count("has expired") == 0

        world.clock.advance(10 * MINUTE_MS)  # past the 120 min lifetime and the grace
        expired = await alice.wait_text("has expired", timeout=15)
        assert invoice_id_of(photo) in expired.plain
        await world.tg.wait_for(lambda: "EXPIRED - do not pay" in alice.current(photo).plain)
        assert alice.current(photo).reply_markup is None
        assert [r["status"] for r in await world.invoices_of(alice.id)] == ["expired"]
        assert "no open invoice" in (await alice.send("/cancel")).plain
        answers = len(world.tg.answers)  # a client still showing the old buttons
        alice.press_data(photo, alice.button("Check payment", photo)[1])
        assert "is closed (expired). Do not pay it." in await alice.answer_after(answers)


# --- restart -------------------------------------------------------------------------------------


async def test_a_payment_made_while_the_bot_was_down_activates_once(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world:
        alice = world.customer(901)
        async with world.running():
            photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo))
        world.clock.advance(5 * MINUTE_MS)
        async with world.running():
            await alice.wait_text("Payment received", timeout=15)
            await world.tg.wait_for(lambda: "PAID" in alice.current(photo).plain)
            assert "30 days left" in (await alice.send("/status")).plain
            await world.polled()
        assert alice.count("Payment received") == 1
        sent = [c.params.get("text", "") for c in world.tg.calls("sendMessage", chat_id=alice.id)]
        assert sum("Payment received" in str(t) for t in sent) == 1


# --- Telegram faults on the activation message ---------------------------------------------------


async def outbox_state(world: BotWorld, customer: Customer, kind: str) -> tuple[object, ...]:
    """(status, attempts, last_error) of the one outbox message of ``kind`` to ``customer``;
    () while there is none."""
    rows = [
        (r["status"], r["attempts"], r["last_error"])
        for r in await world.rows(outbox)
        if r["customer_id"] == customer.id and r["kind"] == kind and r["audience"] == "customer"
    ]
    assert len(rows) <= 1, rows
    return rows[0] if rows else ()


async def until_outbox(
    world: BotWorld, customer: Customer, kind: str, status: str, attempts: int
) -> str:
    """Until the message is in ``status`` after ``attempts`` failed tries; its last error."""
    for _ in range(300):
        state = await outbox_state(world, customer, kind)
        if state[:2] == (status, attempts):
            return str(state[2])
        await asyncio.sleep(0.05)
    raise AssertionError(f"{kind} to {customer.id}: {state}, not {(status, attempts)}")


async def test_activation_survives_429_and_502_and_a_blocked_customer(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob, carol = world.customer(1001), world.customer(1002), world.customer(1003)
        a_photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        b_photo = await bob.buy("Pro", "BTC", None)
        sends = len(world.tg.calls("sendMessage", chat_id=alice.id))

        # 429: the rate limiter waits retry_after and tries again, twice; the third 429 goes
        # back to the outbox, which waits retry_after on the payments clock. Then 5xx: the
        # request layer retries twice after short pauses; a third 502 goes back to the outbox,
        # which backs off (10 s after a second failure). A real deployment's clock moves by
        # itself; here the test moves it.
        world.tg.fail_next("sendMessage", "429", count=3, chat_id=alice.id, retry_after=1)
        world.tg.fail_next("sendMessage", "502", count=3, chat_id=alice.id)
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(a_photo), to=address_of(a_photo))
        assert "429" in await until_outbox(world, alice, "invoice.paid", "pending", 1)
        world.clock.advance(1_000)
        assert "network" in await until_outbox(world, alice, "invoice.paid", "pending", 2)
        assert alice.count("Payment received") == 0
        # (margins: the bot measures OKX's clock offset per poll, and this test's jumps of the
        # shared manual clock in mid-request show up as offsets of up to half a jump)
        world.clock.advance(5_000)
        await world.tg.wait_idle(quiet_s=0.3)
        assert alice.count("Payment received") == 0
        world.clock.advance(10_000)
        await alice.wait_text("Payment received", timeout=15)
        await until_outbox(world, alice, "invoice.paid", "sent", 2)
        assert len(world.tg.calls("sendMessage", chat_id=alice.id)) - sends == 7
        assert alice.count("Payment received") == 1

        # Forbidden: bob blocked the bot before his payment arrived
        world.tg.block(bob.id)
        world.okx.add_deposit("BTC", "BTC-Bitcoin", amount_of(b_photo), to=address_of(b_photo))

        await until_outbox(world, bob, "invoice.paid", "unreachable", 1)
        rows = {r["id"]: r["unreachable"] for r in await world.rows(customers)}
        assert rows[bob.id] is True and rows[alice.id] is False
        assert bob.count("Payment received") == 0  # nothing could be delivered

        # ... the bot keeps serving everybody else. (A minute later: this test's mid-request
        # clock jumps can leave the period credited up to half a jump "ahead" of the offset
        # measured afterwards, and 30 days plus seconds rounds up to 31 days left.)
        world.clock.advance(60_000)
        assert "Welcome" in (await carol.send("/start")).plain
        assert "30 days left" in (await alice.send("/status")).plain
        # bob unblocks and writes again: reachable again, and his subscription is there
        world.tg.unblock(bob.id)
        await bob.send("/start", expect="Welcome")
        rows = {r["id"]: r["unreachable"] for r in await world.rows(customers)}
        assert rows[bob.id] is False
        assert "30 days left" in (await bob.send("/status")).plain


# --- order per customer, through retries ---------------------------------------------------------

SEEN, PAID = "Payment of 29 USDT", "Payment received"


async def test_a_429_on_a_message_holds_the_later_ones_to_that_customer(
    db: Database, clock: ManualClock
) -> None:
    """Telegram asks to retry the first message after 30 s: the second, whose own first retry
    would come after 5 s, does not go first (one sender in process, no rate limiter)."""
    with FakeTelegram() as tg:
        async with outbox_kit.sender(db, clock, tg) as sender:
            tg.fail_next("sendMessage", "429", chat_id=CUSTOMER_ID, retry_after=30)
            await write(db, clock, "INV00021", "detected")
            await write(db, clock, "INV00021", "paid")
            await sender.send_due()
            clock.advance(6_000)
            await sender.send_due()
            assert tg.bot_messages(CUSTOMER_ID) == []
            clock.advance(25_000)
            report = await sender.send_due()
            texts = [m.plain for m in tg.bot_messages(CUSTOMER_ID)]
            assert len(texts) == 2 and SEEN in texts[0] and PAID in texts[1], texts
            assert (report.sent, report.retried) == (2, 0)


@pytest.mark.parametrize("backend", backends())
async def test_after_a_network_error_a_later_message_still_comes_second(
    tmp_path: Path, backend: str
) -> None:
    """ "Payment detected" fails on the network and waits for its retry; "Payment received",
    written a second later, waits for it rather than arriving first."""
    async with BotWorld.open(tmp_path, backend=backend) as world, world.running():
        alice = world.customer(1201)
        await alice.send("/start")
        # three 502s: the request layer's two quick retries fail too; the outbox backs off 5 s
        world.tg.fail_next("sendMessage", "502", count=3, chat_id=alice.id)
        async with world.database() as db:
            await write(db, world.clock, "INV00022", "detected", customer=alice.id)
            assert "network" in await until_outbox(world, alice, "payment.detected", "pending", 1)
            world.clock.advance(1_000)
            await write(db, world.clock, "INV00022", "paid", customer=alice.id)
        await world.tg.wait_idle(quiet_s=0.5)
        assert alice.count("INV00022") == 0
        world.clock.advance(5_000)
        await alice.wait_text(PAID, timeout=15)
        texts = [t for t in alice.texts() if "INV00022" in t]
        assert len(texts) == 2 and SEEN in texts[0] and PAID in texts[1], texts


# --- reminders and the end of a subscription -----------------------------------------------------


async def test_reminders_3_days_and_1_day_before_the_end_then_the_end(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(1101)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo))
        await alice.wait_text("Payment received", timeout=15)
        [sub] = await world.rows(subscriptions)
        ends_at = int(sub["ends_at"])

        world.clock.set(ends_at - 3 * DAY_MS + MINUTE_MS)
        three = await alice.wait_text("days left", timeout=10)
        assert "(3 days left)" in three.plain and "Pro" in three.plain
        assert [text for text, _ in world.tg.buttons(three)] == ["Renew Pro"]
        await world.tg.wait_idle(quiet_s=0.5)
        assert alice.count("left). Renew now") == 1  # once, however often the job runs

        world.clock.set(ends_at - DAY_MS + MINUTE_MS)
        one = await alice.wait_text("(1 day left)", timeout=10)  # one day: singular
        assert [text for text, _ in world.tg.buttons(one)] == ["Renew Pro"]

        before = len(alice.messages())
        menu = await alice.press("Renew Pro", message=one, expect="Which coin")
        assert menu.message_id not in [m.message_id for m in alice.messages()[:before]]
        assert alice.current(one).plain == one.plain  # the reminder itself is left as it was
        assert "BTC" in [text for text, _ in world.tg.buttons(menu)]

        world.clock.set(ends_at + MINUTE_MS)
        ended = await alice.wait_text("subscription has ended", timeout=10)
        assert [text for text, _ in world.tg.buttons(ended)] == ["Renew Pro"]
        status = await alice.send("/status")
        assert "no active subscription" in status.plain
        assert alice.count("left). Renew now") == 2 and alice.count("has ended") == 1
