"""The customer's side of the bot, end to end: the real Application against the fake Bot API and
the fake OKX over loopback HTTP. Every test asserts what the customer sees in their chat (and, where
the customer cannot see it, what the shop's database records)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.jobs import Timings
from fakes.telegram_state import ChatMessage
from payments.clock import MINUTE_MS
from payments.storage.schema import claims, invoices
from tests.botkit import (
    ADMIN,
    HISTORY,
    BotWorld,
    Customer,
    address_of,
    amount_of,
    invoice_id_of,
)
from tests.e2e.test_purchase import decode_qr

# --- the QR code says what the caption says ------------------------------------------------------


async def test_qr_codes_carry_bip21_solana_pay_or_the_bare_address(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        btc = await world.customer(201).buy("Pro", "BTC", None)
        assert decode_qr(btc.photo) == f"bitcoin:{address_of(btc)}?amount={amount_of(btc)}"
        assert len(amount_of(btc).split(".")[1]) == 8  # satoshi precision, never rounded

        sol = await world.customer(202).buy("Pro", "SOL", None)
        assert decode_qr(sol.photo) == f"solana:{address_of(sol)}?amount={amount_of(sol)}"

        usdt = await world.customer(203).buy("Pro", "USDT", "Ethereum (ERC20)")
        assert decode_qr(usdt.photo) == address_of(usdt)  # a token: never a payment URI
        assert "Network: Ethereum (ERC20)" in usdt.plain


# --- two customers at once -----------------------------------------------------------------------


async def test_two_customers_get_distinct_invoices_and_only_the_payer_is_activated(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob = world.customer(301), world.customer(302)
        await alice.send("/start")
        await bob.send("/start")
        await alice.press("Pro", expect="Which coin")
        await bob.press("Pro", expect="Which coin")
        await bob.press("USDT", expect="Which network")
        await alice.press("USDT", expect="Which network")
        a_photo = await alice.press("Tron (TRC20)", expect="Send exactly")
        b_photo = await bob.press("Tron (TRC20)", expect="Send exactly")

        a_pair = (address_of(a_photo), amount_of(a_photo))
        b_pair = (address_of(b_photo), amount_of(b_photo))
        assert a_pair != b_pair
        assert a_pair[1] != b_pair[1]  # amounts are unique per currency, whatever the address

        # bob's client sends alice's invoice id (forged data): refused, nothing changes
        for label in ("Cancel", "Check payment", "I paid"):
            answers = len(world.tg.answers)
            bob.press_data(b_photo, alice.button(label, a_photo)[1])
            assert "isn't yours" in await bob.answer_after(answers)
        assert "CANCELLED" not in alice.current(a_photo).plain

        world.okx.add_deposit("USDT", "USDT-TRC20", b_pair[1], to=b_pair[0])
        paid = await bob.wait_text("Payment received", timeout=15)
        assert invoice_id_of(b_photo) in paid.plain
        await world.tg.wait_for(lambda: "PAID" in bob.current(b_photo).plain)
        await world.tg.wait_idle()

        assert alice.count("Payment received") == 0
        assert "PAID" not in alice.current(a_photo).plain
        status = await alice.send("/status")
        assert "no active subscription" in status.plain
        assert "30 days left" in (await bob.send("/status")).plain
        assert "Your Pro is active until" in (await bob.send("/start")).plain
        rows = {r["customer_id"]: r["status"] for r in await world.rows(invoices)}
        assert rows == {alice.id: "pending", bob.id: "paid"}


# --- "Check payment" -----------------------------------------------------------------------------


async def check(customer: Customer, photo: ChatMessage) -> str:
    """Press "Check payment" under ``photo`` (as first sent: a client showing a stale message
    still has the button); the alert the customer reads."""
    before = len(customer.tg.answers)
    customer.press_data(photo, customer.button("Check payment", photo)[1])
    text = await customer.answer_after(before)
    assert customer.tg.answers[before].show_alert
    return text


async def test_check_payment_reads_the_database_seen_then_confirmed(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(401)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        invoice = invoice_id_of(photo)
        assert "Nothing has arrived" in await check(alice, photo)

        dep = world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), state="0")
        seen = await alice.wait_text("Waiting for network confirmations", timeout=15)
        assert invoice in seen.plain and amount_of(photo) in seen.plain
        assert "seen; waiting for confirmations" in await check(alice, photo)

        world.okx.set_deposit(dep, state="2")
        await alice.wait_text("Payment received", timeout=15)
        assert f"Invoice {invoice} is paid" in await check(alice, photo)
        answers = len(world.tg.answers)
        alice.press_data(photo, alice.button("I paid", photo)[1])
        assert f"Invoice {invoice} is paid" in await alice.answer_after(answers)
        await world.tg.wait_for(lambda: "PAID" in alice.current(photo).plain)
        assert alice.current(photo).reply_markup is None
        assert alice.count("Waiting for network confirmations") == 1


async def test_check_payment_taps_trigger_at_most_one_poll(tmp_path: Path) -> None:
    # polls only on taps: the periodic poll is 30 s away, its first run too
    slow = Timings(outbox=0.1, subscriptions=0.2, directory=3600, first_poll=30)
    async with (
        BotWorld.open(tmp_path, env={"PAYMENT_POLL_SECONDS": "30"}) as world,
        world.running(timings=slow),
    ):
        alice = world.customer(402)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), state="0")
        polls = world.okx.count(HISTORY)
        answers = len(world.tg.answers)
        message = alice.current(photo)
        for _ in range(5):
            alice.press_data(message, alice.button("Check payment", message)[1])
        await world.tg.wait_for(lambda: len(world.tg.answers) >= answers + 5, what="5 answers")
        seen = await alice.wait_text("Waiting for network confirmations", timeout=10)
        assert invoice_id_of(photo) in seen.plain
        await world.tg.wait_idle()
        assert world.okx.count(HISTORY) - polls == 1
        assert all(a.show_alert for a in world.tg.answers[answers:])


# --- "I paid: claim it" --------------------------------------------------------------------------


async def test_claiming_an_ambiguous_deposit_by_its_tx_hash_survives_a_restart(
    tmp_path: Path,
) -> None:
    tx_hash = "ab" * 32
    async with BotWorld.open(tmp_path) as world:
        alice, bob = world.customer(501), world.customer(502)
        admin = world.customer(ADMIN)
        async with world.running():
            a_photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
            b_photo = await bob.buy("Pro", "USDT", "Tron (TRC20)")
            assert address_of(a_photo) == address_of(b_photo)  # the chain has one address
            # short by about 0.7 %: within tolerance of both invoices, so it settles neither
            world.okx.add_deposit(
                "USDT", "USDT-TRC20", "28.8", to=address_of(a_photo), tx_id=tx_hash
            )
            await admin.wait_text("Unmatched deposit", timeout=15)
            await bob.press("Cancel", message=b_photo, expect="CANCELLED")
            assert alice.count("Payment received") == 0

            prompt = await alice.press("I paid: claim it", expect="transaction hash")
            assert invoice_id_of(a_photo) in prompt.plain
            assert "doesn't look like" in (await alice.send("my money!!")).plain
            missing = await alice.send("cd" * 32)
            assert "has reached the shop's account yet" in missing.plain
        async with world.running():  # a restart: the wait for a reference is in the database
            found = await alice.send(tx_hash, expect="Found it")
            assert invoice_id_of(a_photo) in found.plain
            paid = await alice.wait_text("Payment received", timeout=15)
            assert "Pro" in paid.plain
            await world.tg.wait_for(lambda: "PAID" in alice.current(a_photo).plain)
            # the wait is over: more text gets the help pointer, not another claim
            assert "/help" in (await alice.send(tx_hash)).plain


async def test_a_customer_sending_reference_after_reference_is_told_to_wait(
    tmp_path: Path,
) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(511)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        await alice.press("I paid: claim it", expect="transaction hash")
        limit = world.settings.payment_settings().claims_per_hour
        for n in range(limit):
            await alice.send(f"{n:02d}" * 32, expect="has reached the shop's account yet")
        refused = await alice.send("ef" * 32, expect="many payment references")
        assert "Admins see every payment that arrived without a match" in refused.plain
        assert "/help" in (await alice.send("ab" * 32)).plain  # no longer waiting for one
        assert [r["status"] for r in await world.invoices_of(alice.id)] == ["pending"]
        assert len(await world.rows(claims)) == limit  # the refused one is not even recorded
        assert alice.button("I paid: claim it", photo)  # it can claim again later


# --- cancelling ----------------------------------------------------------------------------------


async def test_cancel_button_and_command(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice, bob, carol = world.customer(601), world.customer(602), world.customer(603)

        # the button: the photo says CANCELLED and loses its buttons
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        answers = len(world.tg.answers)
        edited = await alice.press("Cancel", message=photo, expect="CANCELLED - do not pay")
        assert edited.reply_markup is None
        assert f"Invoice {invoice_id_of(photo)} is cancelled" in await alice.answer_after(answers)
        assert "Payment received" not in edited.plain

        # /cancel with one open invoice cancels it, and its photo says so
        btc = await bob.buy("Pro", "BTC", None)
        done = await bob.send("/cancel", expect="is cancelled")
        assert invoice_id_of(btc) in done.plain
        await world.tg.wait_for(lambda: "CANCELLED - do not pay" in bob.current(btc).plain)
        assert bob.current(btc).reply_markup is None
        assert "no open invoice" in (await bob.send("/cancel")).plain

        # with two, a choice; the chosen one is cancelled, the other stays payable
        sol = await carol.buy("Pro", "SOL", None)
        eth = await carol.buy("Enterprise", "ETH", None)
        pick = await carol.send("/cancel", expect="Which invoice")
        labels = [text for text, _ in world.tg.buttons(pick)]
        assert len(labels) == 2
        assert any(invoice_id_of(sol) in label for label in labels)
        await carol.press(invoice_id_of(eth), message=pick, expect="is cancelled")
        await world.tg.wait_for(lambda: "CANCELLED" in carol.current(eth).plain)
        assert "CANCELLED" not in carol.current(sol).plain
        statuses = {r["id"]: r["status"] for r in await world.invoices_of(carol.id)}
        assert statuses == {invoice_id_of(sol): "pending", invoice_id_of(eth): "cancelled"}

        # Telegram fails to edit the photo: the invoice is cancelled and the customer told so
        bnb = await alice.buy("Pro", "BNB", None)
        world.tg.fail_next("editMessageCaption", "502", chat_id=alice.id)
        answers = len(world.tg.answers)
        alice.press_data(bnb, alice.button("Cancel", bnb)[1])
        assert f"Invoice {invoice_id_of(bnb)} is cancelled" in await alice.answer_after(answers)
        assert (await world.invoice_row(invoice_id_of(bnb)))["status"] == "cancelled"


async def test_cancelling_after_a_payment_was_seen_is_refused(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(604)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), state="0")
        await alice.wait_text("Waiting for network confirmations", timeout=15)

        answers = len(world.tg.answers)
        alice.press_data(photo, alice.button("Cancel", photo)[1])
        refusal = await alice.answer_after(answers)
        assert "can't be cancelled" in refusal and "already been seen" in refusal
        assert world.tg.answers[answers].show_alert
        refused = await alice.send("/cancel", expect="can't be cancelled")
        assert "already been seen" in refused.plain
        assert "CANCELLED" not in alice.current(photo).plain
        assert [r["status"] for r in await world.invoices_of(alice.id)] == ["processing"]


# --- partial payment -----------------------------------------------------------------------------


async def test_partial_payment_asks_for_a_top_up_that_completes_it(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(701)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        amount = Decimal(amount_of(photo))
        world.okx.add_deposit("USDT", "USDT-TRC20", "14.5", to=address_of(photo))

        partial = await alice.wait_text("Part of your payment", timeout=15)
        assert invoice_id_of(photo) in partial.plain and "14.5000 USDT" in partial.plain
        shortfall = amount - Decimal("14.5")
        assert f"Still missing: about {shortfall} USDT" in partial.plain
        topup = next(
            partial.plain[e["offset"] : e["offset"] + e["length"]]
            for e in partial.entities
            if e["type"] == "code"
        )  # tap-to-copy
        assert Decimal(topup) >= shortfall and f"send {topup} USDT" in partial.plain
        assert "Tron (TRC20)" in partial.plain
        # the photo now asks for the top-up, not the full amount printed under the code
        await world.tg.wait_for(lambda: "PART RECEIVED" in alice.current(photo).plain)
        assert f"send exactly {topup} USDT" in alice.current(photo).plain
        assert "PAID" not in alice.current(photo).plain
        assert world.tg.buttons(alice.current(photo))  # still payable: the buttons stay

        world.okx.add_deposit("USDT", "USDT-TRC20", topup, to=address_of(photo))
        paid = await alice.wait_text("Payment received", timeout=15)
        assert "Pro is active until" in paid.plain
        await world.tg.wait_for(lambda: "PAID" in alice.current(photo).plain)
        assert alice.count("Payment received") == 1


# --- history, help, anything else, another language ----------------------------------------------


async def test_history_help_unknown_input_and_a_russian_speaker(tmp_path: Path) -> None:
    tx_hash = "5e" * 32
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(1201)
        assert "No invoices yet" in (await alice.send("/history")).plain
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        world.okx.add_deposit(
            "USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo), tx_id=tx_hash
        )
        await alice.wait_text("Payment received", timeout=15)
        history = await alice.send("/history", expect="recent invoices")
        line = next(ln for ln in history.plain.splitlines() if invoice_id_of(photo) in ln)
        assert line.endswith("· paid") and f"{amount_of(photo)} USDT" in line and "Pro" in line
        assert f"tx {tx_hash}" in history.plain

        help_text = (await alice.send("/help")).plain
        assert "How it works" in help_text and "/status" in help_text
        assert "/help" in (await alice.send("what is this?")).plain
        world.clock.advance(5_000)  # at most one such answer every 5 s (tests/e2e/test_flood.py)
        assert "/help" in (await alice.send("/nosuchcommand")).plain
        world.clock.advance(5_000)
        assert "/help" in (await alice.send_sticker()).plain

        ivan = world.customer(1202, language="ru")
        welcome = await ivan.send("/start")
        assert "Добро пожаловать" in welcome.plain
        assert "Pro · $29 / 30 дней" in [text for text, _ in world.tg.buttons(welcome)]
        assert "Чем будете платить?" in (await ivan.press("Pro", expect="Чем")).plain
        assert "Как это работает" in (await ivan.send("/help")).plain
        assert "Не понял" in (await ivan.send_sticker()).plain


# --- one chat's updates in order -----------------------------------------------------------------


async def test_a_double_tap_on_a_coin_makes_one_invoice(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(1301)
        await alice.send("/start")
        await alice.press("Pro", expect="Which coin")
        answers = len(world.tg.answers)
        alice.press_together("BTC", times=2)
        await world.tg.wait_for(lambda: len(world.tg.answers) >= answers + 2, what="2 answers")
        await world.tg.wait_idle()

        rows = await world.invoices_of(alice.id)
        assert len(rows) == 1
        photos = [m for m in alice.messages() if m.photo is not None]
        assert {invoice_id_of(p) for p in photos} == {rows[0]["id"]}
        assert all(decode_qr(p.photo) == decode_qr(photos[0].photo) for p in photos)


# --- when no invoice can be made -----------------------------------------------------------------


async def test_refusals_to_create_an_invoice_say_why(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world:
        world.okx.set_chain("USDT-TRC20", min_dep="50")  # above the $29 plan
        async with world.running():
            alice = world.customer(1401)
            await alice.send("/start")
            await alice.press("Pro", expect="Which coin")
            await alice.press("USDT", expect="Which network")
            below = await alice.press("Tron (TRC20)", expect="minimum deposit")
            assert "of USDT on Tron (TRC20)" in below.plain

            world.okx.remove_price("SOL")
            world.clock.advance(2 * MINUTE_MS)  # the cached tickers are too old now
            await alice.press("Pro", message=(await alice.send("/plans")), expect="Which coin")
            assert "Prices are unavailable" in (await alice.press("SOL", expect="Prices")).plain

            for coin in ("BTC", "ETH", "BNB"):
                await alice.buy("Pro", coin, None)
            await alice.press("Pro", message=(await alice.send("/plans")), expect="Which coin")
            await alice.press("USDC", expect="Which network")
            too_many = await alice.press("Solana", expect="open invoices")
            assert "You have 3 open invoices" in too_many.plain and "/cancel" in too_many.plain
            assert len(await world.invoices_of(alice.id)) == 3
