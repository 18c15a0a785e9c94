"""The admin side of the bot, end to end: /pending, /confirm, /reject, /reassign, /refunded,
/stats, /user, /grant, the admin alerts, and refusals to everyone else."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from fakes.telegram_state import ChatMessage
from payments.storage.schema import claim_waits, deposits, invoices, outbox, subscriptions
from tests.botkit import ADMIN, BotWorld, Customer, answer_to, caption_value, invoice_id_of

TABLES = {
    "invoices": invoices,
    "deposits": deposits,
    "subscriptions": subscriptions,
    "claim_waits": claim_waits,
}
ADMIN_ONLY = "This command is for the shop's admins."
FORCE = "Yes, confirm without a deposit"


async def snapshot(world: BotWorld, *, with_outbox: bool = True) -> dict[str, Any]:
    tables = {**TABLES, **({"outbox": outbox} if with_outbox else {})}
    return {name: await world.rows(table) for name, table in tables.items()}


def amount_of(photo: ChatMessage) -> Decimal:
    return Decimal(caption_value(photo, "Send exactly: "))


def address_of(photo: ChatMessage) -> str:
    return caption_value(photo, "Address: ")


def count(customer: Customer, text: str) -> int:
    return sum(text in t for t in customer.texts())


async def paid_by_deposit(world: BotWorld, customer: Customer, photo: ChatMessage) -> str:
    """Pays ``photo``'s invoice exactly; returns the depId once the customer was told."""
    dep_id = world.okx.add_deposit(
        "USDT", "USDT-TRC20", str(amount_of(photo)), to=address_of(photo)
    )
    await customer.wait_text(f"Payment received for invoice {invoice_id_of(photo)}", timeout=15)
    return dep_id


async def unmatched_deposit(world: BotWorld, admin: Customer, amount: str = "3.1415") -> str:
    """A USDT deposit nobody ordered (to an address no invoice uses); the admin is told."""
    dep_id = world.okx.add_deposit("USDT", "USDT-ERC20", amount, to="0x" + "ab" * 20)
    await admin.wait_text(f"Unmatched deposit {dep_id}", timeout=15)
    return dep_id


# --- 1. partial payment: /pending, /confirm with a second tap, /confirm with a deposit ----------


async def test_partial_payment_is_listed_and_confirmed_by_hand(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob, admin = world.customer(101), world.customer(102), world.customer(ADMIN)
        photo = await alice.buy()
        invoice_id = invoice_id_of(photo)
        half = (amount_of(photo) / 2).quantize(Decimal("0.0001"))
        world.okx.add_deposit("USDT", "USDT-TRC20", str(half), to=address_of(photo))
        await alice.wait_text("Part of your payment", timeout=15)

        listing = await admin.send("/pending", expect=invoice_id)
        section = next(
            line for line in reversed(listing.plain.split(invoice_id)[0].splitlines()) if line
        )
        assert section.startswith(("Waiting for review", "Open invoices")), listing.plain
        assert any(invoice_id in text for text, _ in admin.tg.buttons(listing))

        ask = await admin.send(f"/confirm {invoice_id.lower()}", expect="WITHOUT a deposit")
        assert invoice_id in ask.plain and "101" in ask.plain
        row = await world.invoice_row(invoice_id)
        assert row["status"] != "paid" and "marked" not in row["exceptions"]

        await admin.press(FORCE, message=ask, expect="is paid (marked)")
        row = await world.invoice_row(invoice_id)
        assert row["status"] == "paid" and "marked" in row["exceptions"].split(",")
        activated = await alice.wait_text(f"Payment received for invoice {invoice_id}")
        assert "Pro" in activated.plain and "active until" in activated.plain

        # a second tap on the same button is refused and changes nothing
        before = await snapshot(world, with_outbox=False)
        await admin.press(FORCE, message=ask, expect="Not done")
        assert await snapshot(world, with_outbox=False) == before

        # /confirm <invoice> <deposit> takes an unattached deposit
        bob_photo = await bob.buy()
        bob_invoice = invoice_id_of(bob_photo)
        dep_id = await unmatched_deposit(world, admin)
        done = await admin.send(f"/confirm {bob_invoice} {dep_id}", expect=bob_invoice)
        assert "is paid (marked)" in done.plain, done.plain
        row = await world.invoice_row(bob_invoice)
        assert row["status"] == "paid" and "marked" in row["exceptions"]
        [deposit] = [d for d in await world.rows(deposits) if d["dep_id"] == dep_id]
        assert (deposit["invoice_id"], deposit["disposition"]) == (bob_invoice, "attached")
        await bob.wait_text(f"Payment received for invoice {bob_invoice}")
        await asyncio.sleep(0.5)
        assert count(alice, "Payment received") == 1 and count(bob, "Payment received") == 1


# --- 2. nobody else can do any of it ------------------------------------------------------------


async def settled(world: BotWorld) -> dict[str, Any]:
    """A snapshot once the bot is idle and the outbox has nothing left to send."""

    def outbox_done(rows: list[dict[str, Any]]) -> bool:
        return all(r["status"] != "pending" for r in rows)

    for _ in range(100):
        await world.settled()
        if outbox_done(await world.rows(outbox)):
            break
    return await snapshot(world)


async def test_non_admins_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob, admin = world.customer(101), world.customer(102), world.customer(ADMIN)
        alice_photo = await alice.buy()
        bob_photo = await bob.buy()
        bob_invoice = invoice_id_of(bob_photo)
        paid_photo = await alice.buy("Enterprise")
        dep_id = await paid_by_deposit(world, alice, paid_photo)
        loose = await unmatched_deposit(world, admin)
        before = await settled(world)

        commands = [
            f"/confirm {bob_invoice}",
            f"/confirm {bob_invoice} {loose}",
            f"/reject {bob_invoice}",
            "/pending",
            "/grant 101 pro 7",
            "/stats",
            "/user 102",
            f"/reassign {dep_id} {bob_invoice}",
            f"/refunded {dep_id}",
            "/confirm",
        ]
        for command in commands:
            reply = await alice.send(command)
            assert reply.plain == ADMIN_ONLY, (command, reply.plain)
        ivan = world.customer(104, language="ru")
        reply = await ivan.send("/stats")
        assert reply.plain == "Эта команда только для администраторов магазина."

        target = alice.messages()[-1]
        for data in (f"1:ac:{bob_invoice}", f"1:af:{bob_invoice}", f"1:ar:{bob_invoice}", "1:ap:0"):
            assert await answer_to(world, alice, target, data) == ADMIN_ONLY, data
        for data in (f"1:x:{bob_invoice}", f"1:l:{bob_invoice}", f"1:k:{bob_invoice}"):
            assert "isn't yours" in await answer_to(world, alice, alice_photo, data), data
        for data in ("garbage", "1:k:", f"1:k:{bob_invoice}:x", "2:m", "1:ac", "💥" * 16):
            assert "no longer valid" in await answer_to(world, alice, alice_photo, data), data

        assert await settled(world) == before
        assert world.tg.bot_messages(ADMIN)[-1].plain.startswith("❓ Unmatched deposit")
        assert "Payment received" not in " ".join(bob.texts())


# --- 3. /reject, /reassign, /refunded, and refusals ---------------------------------------------


async def test_reject_reassign_refunded(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob, carol = world.customer(101), world.customer(102), world.customer(103)
        admin = world.customer(ADMIN)

        # /reject: the invoice is invalid (marked) and the customer is told
        carol_invoice = invoice_id_of(await carol.buy())
        done = await admin.send(f"/reject {carol_invoice}", expect=carol_invoice)
        assert "is rejected" in done.plain
        row = await world.invoice_row(carol_invoice)
        assert row["status"] == "invalid" and "marked" in row["exceptions"]
        await carol.wait_text(f"Invoice {carol_invoice} was closed by an admin")

        # /reassign: alice's deposit moves to bob's invoice; alice's period is revoked
        alice_photo = await alice.buy()
        dep_id = await paid_by_deposit(world, alice, alice_photo)
        alice_invoice = invoice_id_of(alice_photo)
        assert "active until" in (await alice.send("/status", expect="active until")).plain
        bob_invoice = invoice_id_of(await bob.buy("Pro", "USDT", "Ethereum (ERC20)"))

        done = await admin.send(f"/reassign {dep_id} {bob_invoice}", expect=bob_invoice)
        assert "Deposit moved" in done.plain and "Subscription until" in done.plain
        old, new = await world.invoice_row(alice_invoice), await world.invoice_row(bob_invoice)
        assert old["status"] == "pending"  # as before it was paid: alice may still pay it
        assert new["status"] == "paid" and "marked" in new["exceptions"]
        [deposit] = [d for d in await world.rows(deposits) if d["dep_id"] == dep_id]
        assert deposit["invoice_id"] == bob_invoice
        await alice.wait_text(f"recorded for invoice {alice_invoice}, so the time it gave")
        await bob.wait_text(f"Payment received for invoice {bob_invoice}")
        assert (await alice.send("/status", expect="no active subscription")).plain.startswith(
            "You have no active subscription"
        )
        assert "active until" in (await bob.send("/status", expect="active until")).plain

        # /refunded: the deposit is blocked and bob's period revoked
        done = await admin.send(f"/refunded {dep_id}", expect=dep_id)
        assert "recorded as refunded" in done.plain
        [deposit] = [d for d in await world.rows(deposits) if d["dep_id"] == dep_id]
        assert deposit["disposition"] == "refunded" and deposit["invoice_id"] is None
        assert (await world.invoice_row(bob_invoice))["status"] == "pending"
        assert (await bob.send("/status", expect="no active subscription")).plain.startswith(
            "You have no active subscription"
        )

        # wrong arguments: the usage line; unknown or wrong ids: the reason; nothing changes
        open_invoice = invoice_id_of(await carol.buy("Enterprise"))
        before = await settled(world)
        usage = {
            "/confirm": "Usage: /confirm <invoice_id>",
            f"/confirm {open_invoice} {dep_id} extra": "Usage: /confirm",
            "/reject": "Usage: /reject <invoice_id>",
            f"/reject {open_invoice} {alice_invoice}": "Usage: /reject",
            "/reassign": "Usage: /reassign <deposit_id",
            f"/reassign {dep_id}": "Usage: /reassign",
            "/refunded": "Usage: /refunded <deposit_id",
            "/user": "Usage: /user <telegram_id>",
            "/user alice": "Usage: /user",
            "/grant": "Usage: /grant <telegram_id> <plan> [days]",
        }
        for command, expected in usage.items():
            assert (await admin.send(command, expect="Usage")).plain.startswith(expected), command
        refused = {
            "/confirm NOSUCH99": "no invoice NOSUCH99",
            "/reject NOSUCH99": "no invoice NOSUCH99",
            f"/reject {carol_invoice}": f"invoice {carol_invoice} is invalid",
            f"/confirm {open_invoice} 987654321": "no deposit 987654321",
            f"/confirm {open_invoice} {dep_id}": f"deposit {dep_id} is refunded",
            "/refunded 987654321": "no deposit 987654321",
            f"/refunded {dep_id}": "already marked refunded",
            f"/reassign 987654321 {open_invoice}": "no deposit 987654321",
            f"/reassign {dep_id} NOSUCH99": "no invoice NOSUCH99",
            f"/reassign {dep_id} {open_invoice}": "was refunded",
        }
        for command, reason in refused.items():
            reply = (await admin.send(command, expect="Not done")).plain
            assert reply.startswith("Not done: ") and reason in reply, (command, reply)
        assert (await admin.send("/user 555")).plain == "No customer 555."
        assert await settled(world) == before


# --- 4. /stats, /user, /grant ---------------------------------------------------------------


async def test_stats_user_and_grant(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob, carol = world.customer(101), world.customer(102), world.customer(103)
        admin = world.customer(ADMIN)
        alice_photo = await alice.buy()
        await paid_by_deposit(world, alice, alice_photo)
        bob_photo = await bob.buy("Enterprise", "BTC", None)
        btc = amount_of(bob_photo)
        world.okx.add_deposit("BTC", "BTC-Bitcoin", str(btc), to=address_of(bob_photo))
        await bob.wait_text("Payment received", timeout=15)

        for photo, customer in ((alice_photo, "101"), (bob_photo, "102")):
            alert = await admin.wait_text(f"Paid: invoice {invoice_id_of(photo)}")
            assert f"customer {customer}" in alert.plain and "until" in alert.plain

        report = (await admin.send("/stats", expect="Stats")).plain
        assert "Active subscribers: 2" in report, report
        for window in ("Last 24h: 2 paid, $128.00", "Last 30d: 2 paid, $128.00"):
            assert window in report, report
        assert "Pro: 1 × $29.00" in report and "Enterprise: 1 × $99.00" in report
        assert f"USDT: {format(amount_of(alice_photo).normalize(), 'f')}" in report
        assert f"BTC: {format(btc.normalize(), 'f')}" in report

        overview = (await admin.send("/user 101", expect="Customer")).plain
        assert "Customer 101" in overview and "Open invoices: 0" in overview
        assert "Pro: active until" in overview and "(30 days left)" in overview
        assert invoice_id_of(alice_photo) in overview and "paid" in overview
        assert invoice_id_of(bob_photo) not in overview

        granted = (await admin.send("/grant 103 pro 7", expect="Granted")).plain
        assert granted.startswith("Granted 7 days of Pro to 103: active until")
        told = await carol.wait_text("You've been given 7 days of Pro")
        assert "active until" in told.plain
        [sub] = [s for s in await world.rows(subscriptions) if s["customer_id"] == 103]
        assert sub["ends_at"] - world.clock.now_ms() == 7 * 86_400_000
        assert "(7 days left)" in (await admin.send("/user 103", expect="Customer")).plain
        assert "active until" in (await carol.send("/status", expect="active until")).plain

        before = await settled(world)
        refusals = {
            "/grant 103 gold 7": "Not done: there is no plan",
            "/grant 103 pro 0": "Not done: days must be",
            "/grant 103 pro 99999": "Not done: days must be",
            "/grant 103 pro seven": "Usage: /grant",
            "/grant 103 pro -7": "Usage: /grant",
            "/grant carol pro": "Usage: /grant",
            "/grant 103": "Usage: /grant",
            "/grant 0 pro": "Not done: the customer must be",
            "/grant ² pro": "Usage: /grant",
            "/grant 103 pro ³": "Usage: /grant",
            "/grant ١٠٣ pro": "Usage: /grant",
            f"/grant {10**30} pro": "Usage: /grant",
            "/user ²": "Usage: /user",
            f"/user {10**30}": "Usage: /user",
        }
        for command, expected in refusals.items():
            reply = (await admin.send(command)).plain
            assert reply.startswith(expected), (command, reply)
        assert await settled(world) == before

        # half a day later the admin and the customer count the days left alike (rounded up)
        world.clock.advance(12 * 3_600_000)
        for someone, days in ((alice, 30), (carol, 7)):
            status = (await someone.send("/status", expect="active until")).plain
            overview = (await admin.send(f"/user {someone.id}", expect="Customer")).plain
            assert f"({days} days left)" in status and f"({days} days left)" in overview


# --- 5. admin alerts ------------------------------------------------------------------------------


KEY_CHECK = "/api/v5/account/config"  # a key OKX refused is checked again before each poll


def admin_texts(world: BotWorld, text: str) -> list[str]:
    return [m.plain for m in world.tg.bot_messages(ADMIN) if text in m.plain]


async def polls(
    world: BotWorld, n: int, path: str | None = "/api/v5/asset/deposit-history"
) -> None:
    """Until the bot has asked OKX for deposits (``path=None``: anything) ``n`` more times."""
    target = world.okx.count(path) + n
    await world.tg.wait_for(lambda: world.okx.count(path) >= target, 15, f"{n} polls")


async def test_an_unmatched_deposit_is_announced_once(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        admin = world.customer(ADMIN)
        dep_id = await unmatched_deposit(world, admin, "7.7777")
        await polls(world, 5)
        await world.tg.wait_idle()
        [alert] = admin_texts(world, "Unmatched deposit")
        assert f"Unmatched deposit {dep_id}: 7.7777 USDT (USDT-ERC20)" in alert
        assert "/pending" in alert
        listing = (await admin.send("/pending", expect="Unmatched deposits")).plain
        assert dep_id in listing and "7.7777 USDT" in listing


async def test_a_refused_api_key_is_told_once_and_customers_are_still_served(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world:
        async with world.running():  # the key worked once (a first start with a refused key stops)
            await polls(world, 1)
        world.env["OKX_PASSPHRASE"] = "not-the-passphrase"
        async with world.running():
            admin, alice = world.customer(ADMIN), world.customer(101)
            alert = await admin.wait_text("OKX refused the API key", timeout=15)
            await polls(world, 5, path=KEY_CHECK)  # each poll checks the key first, refused
            assert "Pro" in (await alice.send("/start", expect="Welcome")).plain
            assert "Plans" in (await alice.send("/plans", expect="Plans")).plain
            await world.tg.wait_idle()
            assert len(admin_texts(world, "OKX refused the API key")) == 1
            for secret in ("not-the-passphrase", world.okx.secret, world.okx.api_key):
                assert secret not in alert.plain
            assert "OKX_PASSPHRASE" in alert.plain  # says what to check, not what it is

        # a restart does not repeat it
        async with world.running():
            await polls(world, 3, path=KEY_CHECK)
            await world.tg.wait_idle()
            assert len(admin_texts(world, "OKX refused the API key")) == 1

        # once the key works again, polling resumes and a payment settles
        world.env["OKX_PASSPHRASE"] = world.okx.passphrase
        async with world.running():
            await admin.wait_text("OKX answers again", timeout=15)
            photo = await alice.buy()
            await paid_by_deposit(world, alice, photo)
            await admin.wait_text(f"Paid: invoice {invoice_id_of(photo)}")


async def test_polling_that_keeps_failing_is_told_once_and_its_end_too(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        admin, alice = world.customer(ADMIN), world.customer(101)
        await polls(world, 1)
        world.okx.fail_rate(1.0, kinds=("server_error", "unavailable"))
        await polls(world, 3, path=None)
        assert admin_texts(world, "OKX has not answered") == []  # a blip is not worth a message
        world.clock.advance(6 * 60_000)
        await admin.wait_text("OKX has not answered since", timeout=15)
        await polls(world, 5, path=None)
        assert "Pro" in (await alice.send("/start", expect="Welcome")).plain
        assert len(admin_texts(world, "OKX has not answered")) == 1
        world.okx.clear_faults()
        await admin.wait_text("OKX answers again", timeout=15)
        await polls(world, 3)
        await world.tg.wait_idle()
        assert len(admin_texts(world, "OKX has not answered")) == 1
        assert len(admin_texts(world, "OKX answers again")) == 1


# --- 6. /pending pages ----------------------------------------------------------------------------


async def test_pending_pages_through_twelve_open_invoices(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running() as app:
        admin = world.customer(ADMIN)
        services = app.bot_data.services
        assert services is not None
        await services.directory_settled()  # chains and addresses load just after start-up
        created: list[str] = []
        choices = [("pro", "TRC20"), ("pro", "ERC20"), ("enterprise", "TRC20")]
        for customer in (201, 202, 203, 204):
            for plan, network in choices:
                view = await services.payments.invoices.create(customer, plan, "USDT", network)
                created.append(view.id)
                world.clock.advance(1_000)
        newest_first = created[::-1]

        first = await admin.send("/pending", expect="Open invoices (12)")
        assert "page 1 of 3" in first.plain
        assert [i for i in newest_first if i in first.plain] == newest_first[:5]
        labels = [text for text, _ in admin.tg.buttons(first)]
        assert labels[-1] == "Older »" and "« Newer" not in labels
        assert len([t for t in labels if t.startswith("✅")]) == 5

        second = await admin.press("Older »", message=first, expect="page 2 of 3")
        assert [i for i in newest_first if i in second.plain] == newest_first[5:10]
        labels = [text for text, _ in admin.tg.buttons(second)]
        assert labels[-2:] == ["« Newer", "Older »"]

        third = await admin.press("Older »", message=second, expect="page 3 of 3")
        assert [i for i in newest_first if i in third.plain] == newest_first[10:]
        assert "Older »" not in [text for text, _ in admin.tg.buttons(third)]

        back = await admin.press("« Newer", message=third, expect="page 2 of 3")
        assert [i for i in newest_first if i in back.plain] == newest_first[5:10]


async def test_editing_an_old_command_does_not_run_it_again(tmp_path: Path) -> None:
    """An admin fixing a typo in yesterday's /grant must not grant twice."""
    async with BotWorld.open(tmp_path) as world, world.running():
        admin, carol = world.customer(ADMIN), world.customer(103)
        await admin.send("/grant 103 pro 7", expect="Granted")
        await carol.wait_text("You've been given 7 days")
        [sent] = [m for m in world.tg.messages(ADMIN) if m.text == "/grant 103 pro 7"]
        before = await settled(world)
        replies = len(admin.messages())
        world.tg.edit_text(ADMIN, sent.message_id, "/grant 103 pro 8")
        world.tg.edit_text(ADMIN, sent.message_id, "/start")
        await world.tg.wait_idle(quiet_s=0.5)
        assert await settled(world) == before
        assert len(admin.messages()) == replies
        assert count(carol, "You've been given") == 1


async def test_a_page_past_the_end_shows_the_last_one(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        admin, alice = world.customer(ADMIN), world.customer(101)
        invoice_id = invoice_id_of(await alice.buy())
        helped = await admin.send("/help")
        assert await answer_to(world, admin, helped, "1:ap:7") == "(no text)"
        page = await admin.wait_text("page 1 of 1")
        assert invoice_id in page.plain
