"""Simulated customers: the real conversation over the fake Telegram, payments into the fake OKX.

Each customer has a scenario (:data:`SCENARIOS`) and so an intended outcome, checked at the end
by :func:`outcome_violations` from the database and the fakes. The driver only does what a
customer can: write /start, press the buttons it was shown, read the invoice photo's caption,
pay on the fake OKX, and wait. It never knows whether the bot is up: a step that gets no answer
(the bot was killed, Telegram failed the reply) is taken again from /start, as a customer
would; asking again for the same plan, coin and network hands back the open invoice.

Time. Lateness is judged by a deposit's OKX ``ts`` against the invoice's times, and the bot's
OKX clock follows the fake OKX's ``/public/time`` at every poll (payments/clock.py). The run
uses INVOICE_TTL_MINUTES=60 and PAYMENT_MONITOR_HOURS=1, buys every invoice in the first phase,
then moves the fake OKX's clock forward (``ShiftedClock``): past every invoice's expiry plus the
late grace (the poller expires the unpaid ones; "late" customers pay then, inside the window),
and later past every monitoring window ("after_window" customers pay then; never credited).
Deposits get the fake's ``ts`` of that moment, so the real code paths judge them: no invented
timestamps, no waiting an hour. No invoice is created after a jump (a bot restarted after one
uses its local clock until its first poll, a skew real OKX never has).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any

from bot import callbacks as cb
from bot.texts import CATALOGUE, DEFAULT_LANGUAGE
from fakes.okx import FakeOkx
from fakes.telegram import FakeTelegram
from fakes.telegram_state import ChatMessage, flat_buttons
from payments import states as st

MESSAGES = CATALOGUE[DEFAULT_LANGUAGE]

SCENARIOS: dict[str, str] = {
    "exact": "pays the exact amount on-chain",
    "partial": "pays 30-70 % of the amount, then the top-up amount it is given",
    "overpaid": "pays more than asked, to its invoice's own address",
    "late": "pays the exact amount after the invoice expired, inside the monitoring window",
    "after_window": "pays the exact amount after the monitoring window: never credited",
    "twice": "pays the exact amount twice",
    "internal": "pays the exact amount by an OKX internal transfer",
    "abandoned": "takes an invoice and never pays",
    "unrelated": "a deposit nobody ordered (no conversation)",
    "blocked": "blocks the bot after taking the invoice, then pays",
    "renewal": "buys, pays, buys the same plan again and pays again",
    # Telegram Stars (Pro, a subscription Telegram renews every 30 days; see run.py's month)
    "stars": "subscribes to Pro in Stars; Telegram renews it a month later",
    "stars_lost": "subscribes in Stars, its payment's update lost: the bot's ledger run finds it",
    "stars_refunded": "subscribes in Stars, then Telegram's support refunds it (no update)",
    "stars_admin_refund": "subscribes in Stars, then an admin refunds it with /refund",
}
WEIGHTS = {"exact": 4, "renewal": 2, "partial": 2, "stars": 2}  # the rest 1
STARS = frozenset(name for name in SCENARIOS if name.startswith("stars"))
PAID = frozenset(
    {"exact", "partial", "overpaid", "late", "twice", "internal", "blocked", "renewal"}
)
EXCEPTION = {"overpaid": st.PAID_OVER, "late": st.PAID_LATE, "twice": st.DUPLICATE}
EXCEPTION |= {"partial": st.PAID_PARTIAL}
ACTIVATED = MESSAGES["invoice_paid"].split("{invoice}")[0]  # "✅ Payment received for invoice "
EXPIRED = MESSAGES["invoice_expired"].split("{invoice}")[0]
STARS_RECEIVED = MESSAGES["stars_paid"].split("{stars}")[0]  # "⭐ Payment received: "
STARS_RENEWED = " renewed ("  # MESSAGES["stars_renewed"]: "⭐ <b>{plan}</b> renewed ({stars} ..."
STARS_REFUNDED = "were refunded"  # MESSAGES["stars_refunded"]
PAY_STARS = MESSAGES["button_pay_stars"].split("{stars}")[0]  # "Pay ⭐ "
TOPUP = re.compile(r"send (\d+\.\d+) ")  # "To finish, send 14.5012 USDT to the same address"
LINK = re.compile(r"https://t\.me/\+[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Choice:
    plan: str
    coin: str
    network: str | None  # None: the coin has one network, the invoice comes with the coin
    chain: str
    extra: Decimal  # what an overpaying customer adds


CHOICES = (  # (choice, weight)
    (Choice("pro", "USDT", "TRC20", "USDT-TRC20", Decimal("0.75")), 5),
    (Choice("basic", "USDT", "BEP20", "USDT-BSC", Decimal("0.25")), 2),
    (Choice("pro", "SOL", None, "SOL-Solana", Decimal("0.001")), 2),
)


@dataclass(frozen=True)
class Invoice:
    id: str
    amount: Decimal
    address: str
    coin: str


@dataclass
class Customer:
    id: int
    scenario: str
    choice: Choice
    invoices: list[Invoice] = field(default_factory=list)  # the ones it paid or meant to pay
    deposits: list[str] = field(default_factory=list)  # depIds of its payments
    problems: list[str] = field(default_factory=list)  # what the driver could not do
    attempts: int = 0  # conversations started (retries included)
    paid_for: dict[str, str] = field(default_factory=dict)  # depId -> the invoice it paid
    claims: int = 0  # payments it claimed with their tx hash (nothing happened by itself)
    charges: list[str] = field(default_factory=list)  # Telegram Stars charge ids, oldest first
    stars_tries: int = 0  # presses of Pay (a pre-checkout the bot did not answer is pressed again)


def assign(count: int, rng: random.Random, first_id: int = 10_001) -> list[Customer]:
    """``count`` customers: every scenario once (when there are enough), then by weight."""
    names = list(SCENARIOS)
    chosen = names[:count] + rng.choices(
        names, [WEIGHTS.get(n, 1) for n in names], k=max(0, count - len(names))
    )
    rng.shuffle(chosen)
    options = [c for c, _ in CHOICES]
    weights = [w for _, w in CHOICES]
    return [
        Customer(first_id + i, name, rng.choices(options, weights)[0])
        for i, name in enumerate(chosen)
    ]


class Shop:
    """Drives customers through the bot. ``step_s``: how long a customer waits for an answer
    before starting again; ``patience_s``: how long it waits for a payment to be confirmed."""

    def __init__(
        self,
        tg: FakeTelegram,
        okx: FakeOkx,
        rng: random.Random,
        *,
        step_s: float = 12.0,
        tries: int = 12,
        patience_s: float = 300.0,
        claim_after_s: float = 60.0,
        clock: Callable[[], int] | None = None,
        admin: int | None = None,
    ) -> None:
        self.admin = admin  # who writes /refund
        self.tg, self.okx, self.rng = tg, okx, rng
        self.clock = clock  # the bot's (OKX's) time in ms: Stars charges are dated by it
        self.step_s, self.tries, self.patience_s = step_s, tries, patience_s
        self.claim_after_s = claim_after_s
        self.blocked: set[int] = set()
        self.joined: dict[str, int] = {}  # join_by_link outcome -> count
        self._links: set[tuple[int, str]] = set()

    # --- phases ---------------------------------------------------------------------------

    async def first(self, c: Customer) -> None:
        """Before any clock jump: buy, and pay unless the scenario pays later (or never)."""
        if c.scenario == "unrelated":
            self._unrelated(c)
            return
        self.tg.user(c.id, first_name=f"Soak{c.id}", language_code="en")
        if c.scenario in STARS:
            await self.stars(c)
            return
        invoice = await self.buy(c)
        if invoice is None or c.scenario in ("late", "after_window", "abandoned"):
            return
        if c.scenario == "blocked":
            self.tg.block(c.id)
            self.blocked.add(c.id)
            self.pay(c, invoice)
            return
        if c.scenario == "partial":
            await self._partial(c, invoice)
            return
        if c.scenario == "overpaid":
            self.pay(c, invoice, invoice.amount + c.choice.extra)
            # an inexact amount on an address other invoices were given is not the owner's by
            # itself: the customer claims it with its tx hash if nothing happens
            if not await self.activated(c, invoice, claim=True):
                return
        else:
            self.pay(c, invoice, internal=c.scenario == "internal")
            if not await self.activated(c, invoice):
                return
        if c.scenario == "twice":
            self.pay(c, invoice)  # a second payment: for an admin, never a second credit
        elif c.scenario == "renewal":
            again = await self.buy(c)
            if again is not None:
                self.pay(c, again)
                await self.activated(c, again)

    async def late(self, c: Customer) -> None:
        """After the jump past expiry: "late" customers pay their expired invoice."""
        if c.scenario == "late" and c.invoices:
            self.pay(c, c.invoices[0])
            await self.activated(c, c.invoices[0])

    def after_window(self, c: Customer) -> None:
        if c.scenario == "after_window" and c.invoices:
            self.pay(c, c.invoices[0])

    async def _partial(self, c: Customer, invoice: Invoice) -> None:
        # a share at random (what the wallet held), not exactly half: a half-payer's top-up is
        # about half too, and another half-payer's deposit of that very amount is taken for the
        # top-up (an exact match wins over the address; see the report of this soak)
        step = Decimal(1).scaleb(invoice.amount.as_tuple().exponent)  # type: ignore[arg-type]
        share = Decimal(self.rng.randint(300, 700)) / 1000
        self.pay(c, invoice, (invoice.amount * share).quantize(step, rounding=ROUND_DOWN))
        arrived = f"for invoice {invoice.id} arrived"
        text = await self._wait_text(c, arrived, self.claim_after_s)
        if text is None:  # a part is never the address owner's by itself on a shared address
            await self.claim(c, invoice)
            text = await self._wait_text(c, arrived, self.patience_s)
        found = TOPUP.search(text or "")
        if found is None:
            c.problems.append(f"no top-up amount for {invoice.id} after a partial payment")
            return
        self.pay(c, invoice, Decimal(found[1]))
        await self.activated(c, invoice, claim=True)

    def _unrelated(self, c: Customer) -> None:
        if self.rng.random() < 0.5:  # on a chain nobody buys on, to OKX's selected address
            amount = Decimal(self.rng.randint(10_000, 900_000)).scaleb(-4)
            c.deposits.append(self.okx.add_deposit("USDC", "USDC-ERC20", amount))
        else:  # an internal transfer far above every price: it fits no invoice, not even
            # with a partial payment (a small one may complete a partial: see the report)
            amount = Decimal(self.rng.randint(5_000_000, 9_000_000)).scaleb(-4)
            c.deposits.append(self.okx.add_deposit("USDT", "USDT-TRC20", amount, type="3"))

    # --- what a customer does ---------------------------------------------------------------

    def pay(
        self,
        c: Customer,
        invoice: Invoice,
        amount: Decimal | None = None,
        *,
        internal: bool = False,
    ) -> None:
        value = invoice.amount if amount is None else amount
        if internal:
            dep = self.okx.add_deposit(invoice.coin, c.choice.chain, value, type="3")
        else:
            dep = self.okx.add_deposit(invoice.coin, c.choice.chain, value, to=invoice.address)
        c.deposits.append(dep)
        c.paid_for[dep] = invoice.id

    async def buy(self, c: Customer) -> Invoice | None:
        """/start -> plan -> coin (-> network) -> the invoice photo, again from /start whenever
        a step gets no answer in time."""
        for _ in range(self.tries):
            c.attempts += 1
            photo = await self.conversation(c)
            if photo is not None:
                invoice = invoice_of(photo, c.choice.coin)
                if invoice is not None:
                    c.invoices.append(invoice)
                    return invoice
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))
        c.problems.append(f"no invoice after {self.tries} conversations")
        return None

    async def activated(self, c: Customer, invoice: Invoice, *, claim: bool = False) -> bool:
        """The activation message arrives; with ``claim``, a customer who has not heard
        anything after ``claim_after_s`` presses "I paid: claim it" and sends the hash of its
        last payment (what an honest payer does when a payment is ambiguous)."""
        wanted = f"{ACTIVATED}{invoice.id}"
        if claim:
            if await self._wait_text(c, wanted, self.claim_after_s) is not None:
                return True
            await self.claim(c, invoice)
        text = await self._wait_text(c, wanted, self.patience_s)
        if text is None:
            c.problems.append(f"no activation message for {invoice.id} in {self.patience_s} s")
        return text is not None

    async def claim(self, c: Customer, invoice: Invoice) -> None:
        """Press the claim button under the invoice's photo, then send the last payment's tx
        hash for it."""
        dep = next((d for d in reversed(c.deposits) if c.paid_for.get(d) == invoice.id), None)
        tx = next((r["txId"] for r in self.okx.deposit_rows() if r["depId"] == dep), None)
        data = cb.encode(cb.ClaimInvoice(invoice.id))
        card = await self._wait(c, 0, partial(_has_button, data=data), self.step_s)
        if not tx or card is None:
            return
        c.claims += 1
        mark = len(self.tg.bot_messages(c.id))
        self.tg.press(c.id, card, data)
        await self._wait(c, mark, lambda m: "transaction hash" in m.plain, self.step_s)
        self.tg.send_text(c.id, tx)

    async def conversation(self, c: Customer) -> ChatMessage | None:
        choice = c.choice
        mark = len(self.tg.bot_messages(c.id))
        self.tg.send_text(c.id, "/start")
        steps: list[cb.Action] = [
            cb.ChoosePlan(choice.plan),
            cb.ChooseCoin(choice.plan, choice.coin),
        ]
        if choice.network is not None:
            steps.append(cb.ChooseNetwork(choice.plan, choice.coin, choice.network))
        photos: set[int] = set()
        for action in steps:
            data = cb.encode(action)
            message = await self._wait(c, mark, partial(_has_button, data=data), self.step_s)
            if message is None:
                return None
            photos = {m.message_id for m in self.tg.bot_messages(c.id) if m.photo is not None}
            self.tg.press(c.id, message, data)

        def new_invoice(m: ChatMessage) -> bool:
            return m.photo is not None and m.message_id not in photos and _is_invoice(m)

        return await self._wait(c, mark, new_invoice, self.step_s)

    async def _wait(
        self,
        c: Customer,
        mark: int,
        predicate: Callable[[ChatMessage], bool],
        timeout_s: float,
    ) -> ChatMessage | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for message in self.tg.bot_messages(c.id)[mark:]:
                if predicate(message):
                    return message
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.05)

    async def _wait_text(self, c: Customer, text: str, timeout_s: float) -> str | None:
        found = await self._wait(c, 0, lambda m: text in m.plain, timeout_s)
        return None if found is None else found.plain

    # --- Telegram Stars ---------------------------------------------------------------------

    async def stars(self, c: Customer) -> None:
        """/start -> Pro -> ⭐ -> the pay link, paid (pressed again while the bot does not answer
        the pre-checkout query in time); the payment message arrives (from the update, or for
        "stars_lost" from the bot's ledger run); refunded customers then get their Stars back."""
        link = await self.stars_link(c)
        if link is None:
            return
        charge = await self.pay_stars(c, link, lose_update=c.scenario == "stars_lost")
        if charge is None:
            return
        if await self._wait_text(c, STARS_RECEIVED, self.patience_s) is None:
            c.problems.append(f"no Stars payment message in {self.patience_s} s")
            return
        if c.scenario == "stars_refunded":
            self.tg.refund_elsewhere(charge, now_s=self._now_s())
        elif c.scenario == "stars_admin_refund":
            await self.admin_refund(c, charge)
            return
        else:
            return
        if await self._wait_text(c, STARS_REFUNDED, self.patience_s) is None:
            c.problems.append(f"no refund message in {self.patience_s} s")

    async def stars_link(self, c: Customer) -> str | None:
        for _ in range(self.tries):
            c.attempts += 1
            mark = len(self.tg.bot_messages(c.id))
            self.tg.send_text(c.id, "/start")
            for action in (cb.ChoosePlan("pro"), cb.PayStars("pro")):
                data = cb.encode(action)
                message = await self._wait(c, mark, partial(_has_button, data=data), self.step_s)
                if message is None:
                    break
                self.tg.press(c.id, message, data)
            else:
                offer = await self._wait(c, mark, _pay_stars_link, self.step_s)
                if offer is not None:
                    return next(u for t, u in _url_buttons(offer.reply_markup) if PAY_STARS in t)
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))
        c.problems.append(f"no Stars pay link after {self.tries} conversations")
        return None

    async def pay_stars(self, c: Customer, link: str, *, lose_update: bool) -> str | None:
        """Pay the link; the charge id (None: never charged)."""
        for _ in range(self.tries):
            c.stars_tries += 1
            payment = self.tg.pay(c.id, link, lose_update=lose_update, now_s=self._now_s())
            await asyncio.to_thread(payment.done.wait, 30)  # decided in 10 s at most
            if payment.outcome == "paid" and payment.charge_id is not None:
                c.charges.append(payment.charge_id)
                return payment.charge_id
            if payment.outcome != "timed out":
                c.problems.append(f"Stars payment {payment.outcome}")
                return None
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))  # the bot was down: press again
        c.problems.append(f"Stars payment not answered in {self.tries} presses")
        return None

    async def admin_refund(self, c: Customer, charge: str) -> None:
        """The admin writes /refund with the charge id until the customer is told (a second
        /refund of a refunded charge changes nothing)."""
        if self.admin is None:
            c.problems.append("no admin to write /refund")
            return
        for _ in range(self.tries):
            self.tg.send_text(self.admin, f"/refund {charge}")
            if await self._wait_text(c, STARS_REFUNDED, self.step_s) is not None:
                return
        c.problems.append(f"no refund message after {self.tries} /refund")

    async def renewed(self, c: Customer) -> None:
        """After a renewal: the customer reads "Pro renewed"."""
        if await self._wait_text(c, STARS_RENEWED, self.patience_s) is None:
            c.problems.append(f"no Stars renewal message in {self.patience_s} s")

    def _now_s(self) -> float | None:
        return None if self.clock is None else self.clock() / 1000

    # --- chats ------------------------------------------------------------------------------

    def join_invited(self, customers: Sequence[Customer]) -> None:
        """Every customer who got an invite link uses it (once per link)."""
        for c in customers:
            if c.id in self.blocked:
                continue
            for message in self.tg.bot_messages(c.id):
                urls = LINK.findall(message.text or "")
                urls += [url for _, url in _url_buttons(message.reply_markup)]
                for url in urls:
                    if (c.id, url) not in self._links:
                        self._links.add((c.id, url))
                        outcome = self.tg.join_by_link(c.id, url)
                        self.joined[outcome] = self.joined.get(outcome, 0) + 1

    async def keep_joining(self, customers: Sequence[Customer], every_s: float = 0.5) -> None:
        while True:
            self.join_invited(customers)
            await asyncio.sleep(every_s)


def _has_button(message: ChatMessage, data: str) -> bool:
    return any(d == data for _, d in flat_buttons(message.reply_markup))


def _pay_stars_link(message: ChatMessage) -> bool:
    return any(PAY_STARS in text for text, _ in _url_buttons(message.reply_markup))


def _url_buttons(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    rows = (markup or {}).get("inline_keyboard", [])
    return [(b.get("text", ""), b["url"]) for row in rows for b in row if b.get("url")]


def _is_invoice(message: ChatMessage) -> bool:
    return "Send exactly: " in message.plain and "Address: " in message.plain


def _line_value(message: ChatMessage, label: str) -> str | None:
    for line in message.plain.splitlines():
        if line.startswith(label):
            return line.removeprefix(label).split(" ")[0]
    return None


def invoice_of(photo: ChatMessage, coin: str) -> Invoice | None:
    amount = _line_value(photo, "Send exactly: ")
    address = _line_value(photo, "Address: ")
    invoice_id = _line_value(photo, "Invoice ")
    if amount is None or address is None or invoice_id is None:
        return None
    return Invoice(invoice_id, Decimal(amount), address, coin)


# --- intended outcomes ------------------------------------------------------------------------


def outcome_violations(
    customers: Sequence[Customer],
    invoices: Sequence[dict[str, Any]],
    deposits: Sequence[dict[str, Any]],
    texts: Callable[[int], list[str]],
) -> list[str]:
    """Each customer's intended outcome against the database rows and the messages it got."""
    by_invoice = {str(r["id"]): r for r in invoices}
    by_dep = {str(r["dep_id"]): r for r in deposits}
    found: list[str] = []
    for c in customers:
        who = f"customer {c.id} ({c.scenario})"
        found += [f"{who}: {problem}" for problem in c.problems]
        for dep_id in c.deposits:
            if dep_id not in by_dep:
                found.append(f"{who}: deposit {dep_id} was never recorded")
        if c.scenario in STARS:
            continue  # judged by the Stars invariant (tests/soak/invariants_stars.py)
        if c.scenario == "unrelated":
            found += [
                f"{who}: deposit {d} is {by_dep[d]['disposition']}, not unmatched"
                for d in c.deposits
                if d in by_dep and by_dep[d]["disposition"] != st.DEP_UNMATCHED
            ]
            continue
        for invoice in c.invoices:
            row = by_invoice.get(invoice.id)
            if row is None:
                found.append(f"{who}: invoice {invoice.id} is not in the database")
                continue
            status, exceptions = str(row["status"]), st.parse_exceptions(row["exceptions"])
            if c.scenario in PAID and status != st.PAID:
                found.append(f"{who}: invoice {invoice.id} is {status}, not paid")
            if c.scenario in EXCEPTION and EXCEPTION[c.scenario] not in exceptions:
                want = EXCEPTION[c.scenario]
                found.append(f"{who}: invoice {invoice.id} lacks {want} ({sorted(exceptions)})")
            if c.scenario in ("abandoned", "after_window") and status != st.EXPIRED:
                found.append(f"{who}: invoice {invoice.id} is {status}, not expired")
            if c.scenario == "abandoned" and not any(
                f"{EXPIRED}{invoice.id}" in t for t in texts(c.id)
            ):
                found.append(f"{who}: was never told invoice {invoice.id} expired")
        if c.scenario == "after_window":
            found += [
                f"{who}: deposit {d} after the window is {by_dep[d]['disposition']}"
                for d in c.deposits
                if d in by_dep and by_dep[d]["disposition"] != st.DEP_UNMATCHED
            ]
    return found
