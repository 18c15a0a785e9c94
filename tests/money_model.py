"""A model-based test of the whole money path: an adversary picks the sequence.

Hypothesis drives a rule-based state machine through the real payments core (``Payments``)
against the fake OKX over loopback HTTP, on SQLite or PostgreSQL. Customers buy and cancel;
deposits arrive exact, partial, short by an exchange's fee, over, rounded, twice, by internal
transfer, on another chain, in coins the shop does not sell, from strangers; OKX moves states
forward and back, changes amounts and drops records; the clock jumps past expiries, windows and
quarantines; polls run, some hit an OKX fault, and the process crashes (the database is opened
afresh, every in-memory cache lost). An attacker who knows every public tx hash claims them for
his own invoices and keeps invoices open to collect what he can. Admins, honest but fallible,
settle the queue from the truth the model knows, and make mistakes that they then undo.

After every step the invariants below are checked against a plain model of who sent what for
which invoice. Each one names a way real payment systems lost or misdirected money.

Run in CI by ``tests/soak/test_money_model.py``; for a long run::

    python -m tests.money_model --database sqlite --examples 400 --steps 50 --seed 1
    python -m tests.money_model --database postgresql://postgres@127.0.0.1:5432/test ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as s
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from fakes.okx import FakeOkx
from payments import errors
from payments import states as st
from payments.catalog import load_catalog
from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS, ManualClock
from payments.config import PaymentSettings
from payments.deposits.cycle import PaymentCycle
from payments.exchange.okx import OkxExchange
from payments.facts import InvoiceFacts
from payments.invoicing.invoices import InvoiceView
from payments.storage import Database
from payments.storage import schema as t
from payments.subscriptions.periods import replay_schedule
from payments.wiring import Payments

T = TypeVar("T")

HONEST = (1, 2, 3)
ATTACKER = 66
EXTRA_TRC20 = "TXmodelSecondAddress000000000000002"
# what a customer may buy: (plan, coin, network)
CHOICES = (
    ("pro", "USDT", "TRC20"),
    ("pro", "USDT", "TRC20"),  # twice as likely: more invoices share amounts and addresses
    ("enterprise", "USDT", "TRC20"),
    ("pro", "USDT", "ERC20"),
    ("pro", "BTC", "BTC"),
)
# attached to an invoice for an admin, never counted: to be given back
_TO_RETURN = (st.KIND_DUPLICATE, st.KIND_AFTER_CLOSE)
# how a customer pays an invoice
HOW = (
    "exact",
    "exact",
    "topup",
    "fee_short",
    "partial",
    "over",
    "rounded",
    "internal",
    "internal_rounded",  # an OKX transfer of a rounded amount: no address to go by
    "other_address",  # short, to another of the shop's addresses (an old invoice's, say)
    "chain",
)
CLOCK_STEPS = (MINUTE_MS, 20 * MINUTE_MS, 2 * HOUR_MS + MINUTE_MS, 25 * HOUR_MS, 3 * DAY_MS)
# USDT counted in millionths (OKX's own precision for it): every path that turns amounts into
# units must use the catalogue's scale, not the default 10^-8
PLANS = """
[[plans]]
id = "pro"
name = "Pro"
price_usd = "29"
days = 30

[[plans]]
id = "enterprise"
name = "Enterprise"
price_usd = "99"
days = 30

[[coins]]
symbol = "USDT"
name = "Tether USD"
step = "0.0001"
scale = 6
networks = [
    { code = "TRC20", chain = "USDT-TRC20", label = "Tron (TRC20)", allowance = "1" },
    { code = "ERC20", chain = "USDT-ERC20", label = "Ethereum (ERC20)" },
]

[[coins]]
symbol = "BTC"
name = "Bitcoin"
step = "0.00000001"
networks = [{ code = "BTC", chain = "BTC-Bitcoin", label = "Bitcoin" }]
"""


class Violation(AssertionError):
    """An invariant of the money path does not hold."""


@dataclass
class Sent:
    """A deposit the model put on the fake OKX, and the truth about it."""

    dep_id: str
    sender: int | None  # customer id; None: a stranger (dust, an airdrop, someone unknown)
    invoice_id: str | None  # the invoice the sender meant to pay, if any
    how: str
    tx_id: str
    wd_id: str
    created_at: int
    amount: str
    on_time_exact: bool = False  # the invoice's exact amount, settled, while it could be paid
    disturbed: bool = False  # OKX changed it afterwards (state back, amount, vanished)


@dataclass
class Counters:
    steps: int = 0
    polls: int = 0
    crashes: int = 0
    claims: int = 0
    admin: int = 0
    first_violation_at: int | None = None
    violations: list[str] = field(default_factory=list)


COUNTERS = Counters()  # across every example of a run (reported by the runner)


def _fmt(amount: Decimal, like: str) -> str:
    places = len(like.split(".")[1]) if "." in like else 0
    return format(amount.quantize(Decimal(1).scaleb(-places)), "f")


class MoneyPath(RuleBasedStateMachine):
    """One shop, from an empty database. Subclasses set ``database`` ("sqlite" or a
    PostgreSQL URL)."""

    database: ClassVar[str] = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="money-model-"))
        self.clock = ManualClock(1_790_000_000_000)
        self.okx = FakeOkx(clock=self.clock).start()
        self.okx.add_address("USDT", "USDT-TRC20", EXTRA_TRC20)
        self.schema: str | None = None
        self.settings = PaymentSettings()
        (self.tmp / "plans.toml").write_text(PLANS)
        self.catalog = load_catalog(self.tmp / "plans.toml")
        self.invoices: dict[str, InvoiceView] = {}
        self.sent: dict[str, Sent] = {}
        self.cancelled_before_poll: set[str] = set()
        self.forced: set[str] = set()  # confirmed by an admin without a deposit
        self.touched_by_admin: set[str] = set()  # invoices an admin moved money on or off
        self.refunded: set[str] = set()
        self.tx_seq = 0
        self.polled_ok = False  # the last poll succeeded (invariants that need one)
        self.visible_at_poll: set[str] = set()  # OKX deposits that poll had to record
        self.log: list[str] = []  # what happened, for a violation's report
        self.attacker_tried: dict[str, set[str]] = {}  # his invoice -> deposits claimed for it
        self.exchange: OkxExchange | None = None
        self.payments = self.run(self._open(fresh=True))

    # --- plumbing --------------------------------------------------------------------------

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def _url(self) -> str:
        if self.database == "sqlite":
            return f"sqlite:///{self.tmp / 'shop.sqlite3'}"
        return self.database

    async def _open(self, *, fresh: bool) -> Payments:
        if fresh and self.database != "sqlite":
            import asyncpg

            self.schema = f"m_{uuid.uuid4().hex[:16]}"
            raw = await asyncpg.connect(self.database.replace("+asyncpg", ""))
            try:
                await raw.execute(f"CREATE SCHEMA {self.schema}")
            finally:
                await raw.close()
        db = Database.from_url(self._url(), schema=self.schema)
        await db.migrate()
        self.exchange = OkxExchange(
            self.okx.api_key,
            self.okx.secret,
            self.okx.passphrase,
            base_url=self.okx.base_url,
            timeout_ms=3000,
            clock=self.clock,
            throttle=False,
        )
        payments = Payments.wire(db, self.exchange, self.catalog, self.settings, self.clock)
        await payments.start_checks(allow_unsafe_key=False)
        return payments

    def teardown(self) -> None:
        try:
            self.run(self.payments.close())
            if self.schema is not None:
                self.run(self._drop_schema())
        finally:
            self.okx.stop()
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def _drop_schema(self) -> None:
        import asyncpg

        raw = await asyncpg.connect(self.database.replace("+asyncpg", ""))
        try:
            await raw.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        finally:
            await raw.close()

    def step(self, *what: object) -> None:
        COUNTERS.steps += 1
        self.log.append(f"[{self.clock.now_ms() % 10**9}] " + " ".join(str(w) for w in what))

    def note(self, *what: object) -> None:
        self.log[-1] += " -> " + " ".join(str(w) for w in what)

    def next_tx(self, prefix: str) -> str:
        self.tx_seq += 1
        return f"{prefix}{self.tx_seq:06d}".ljust(64, "0")

    async def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        async with self.payments.db.read() as conn:
            result = await conn.execute(select(table).where(*where))
            return [dict(r) for r in result.mappings()]

    def invoice_ids(self, customer: int | None = None) -> list[str]:
        """In the order they were made (ids are random: never sort by them, or a replayed
        sequence would pick other invoices)."""
        return [i for i, v in self.invoices.items() if customer in (None, v.customer_id)]

    # --- customers ---------------------------------------------------------------------------

    @rule(customer=s.sampled_from((*HONEST, ATTACKER)), choice=s.sampled_from(CHOICES))
    def buy(self, customer: int, choice: tuple[str, str, str]) -> None:
        self.step("buy", customer, *choice)
        plan, coin, network = choice
        try:
            view = self.run(self.payments.invoices.create(customer, plan, coin, network))
        except (errors.InvoiceError, errors.QuoteUnavailable, errors.DepositsDisabled) as exc:
            self.note("refused", type(exc).__name__)
            return  # refused (caps, no free amount): changes nothing
        self.invoices[view.id] = view
        self.note(view.id, view.amount_text, view.address[:10], "reused" if view.reused else "")

    @precondition(lambda self: bool(self.invoices))
    @rule(data=s.data())
    def cancel(self, data: s.DataObject) -> None:
        invoice_id = data.draw(s.sampled_from(self.invoice_ids()))
        self.step("cancel", invoice_id)
        view = self.invoices[invoice_id]
        try:
            self.run(self.payments.invoices.cancel(invoice_id, customer_id=view.customer_id))
        except errors.InvalidTransition:
            self.note("refused")
            return
        self.cancelled_before_poll.add(invoice_id)

    @precondition(lambda self: bool(self.invoices))
    @rule(data=s.data(), how=s.sampled_from(HOW), state=s.sampled_from(("2", "2", "0")))
    def pay(self, data: s.DataObject, how: str, state: str) -> None:
        """The invoice's customer pays it (the attacker pays his own invoices too)."""
        invoice_id = data.draw(s.sampled_from(self.invoice_ids()))
        self.step("pay", invoice_id, how, "state", state)
        view = self.run(self.payments.invoices.get(invoice_id))
        self.invoices[invoice_id] = view
        amount = Decimal(view.amount_text)
        chain, to, kind = view.chain, view.address, "4"
        if how == "topup":
            if view.topup_amount_text is None:
                return
            amount = Decimal(view.topup_amount_text)
        elif how == "fee_short":
            amount -= Decimal("0.5") if view.currency != "BTC" else amount / 100
        elif how == "partial":
            amount = amount * Decimal("0.6")
        elif how == "over":
            amount = amount * Decimal("1.01")
        elif how == "rounded":
            amount = amount.quantize(Decimal("0.01"))
        elif how == "internal":
            kind, to = "3", ""
        elif how == "internal_rounded":
            kind, to = "3", ""
            amount = amount.quantize(Decimal("0.01"))
        elif how == "other_address":
            if view.chain != "USDT-TRC20":
                return
            amount -= Decimal("0.3")
            to = (
                EXTRA_TRC20
                if view.address != EXTRA_TRC20
                else self.run(self._address_of("USDT", "USDT-TRC20", selected=True))
            )
        elif how == "chain":
            if view.chain != "USDT-TRC20":
                return
            chain = "USDT-ERC20"
            to = self.run(self._address_of("USDT", "USDT-ERC20"))
        text = _fmt(amount, view.amount_text)
        tx = "" if kind == "3" else self.next_tx("c")
        wd = self.next_tx("w")[:16] if kind == "3" else ""
        dep = self.okx.add_deposit(
            view.currency, chain, text, to=to, type=kind, tx_id=tx, from_wd_id=wd, state=state
        )
        now = self.clock.now_ms()
        exact = how in ("exact", "internal", "chain")
        # the first payment of the exact amount counts; a later one is a duplicate for an admin
        first = not any(x.invoice_id == invoice_id and x.amount == text for x in self.sent.values())
        on_time = (
            exact
            and first
            and state == "2"
            and view.status in (st.PENDING, st.PROCESSING)
            and now <= view.expires_at
            and invoice_id not in self.cancelled_before_poll
        )
        self.sent[dep] = Sent(
            dep, view.customer_id, invoice_id, how, tx, wd, now, text, on_time_exact=on_time
        )
        self.note("deposit", dep, text, chain, to[:10], "on time" if on_time else "")

    async def _address_of(self, currency: str, chain: str, *, selected: bool = False) -> str:
        rows = await self.rows(
            t.pool_addresses,
            t.pool_addresses.c.currency == currency,
            t.pool_addresses.c.chain == chain,
        )
        if selected:
            rows = [r for r in rows if r["selected"]]
        return str(rows[0]["address"])

    @rule(
        what=s.sampled_from(("dust", "polygon", "unrelated", "someone_elses_amount")),
        data=s.data(),
    )
    def stranger_sends(self, what: str, data: s.DataObject) -> None:
        """Anyone can send anything to a public deposit address."""
        self.step("stranger sends", what)
        to = self.run(self._address_of("USDT", "USDT-TRC20"))
        sender: int | None = None
        target: str | None = None
        if what == "dust":
            dep = self.okx.add_deposit("TRX", "TRX-TRC20", "1", to=to, tx_id=self.next_tx("d"))
        elif what == "polygon":
            dep = self.okx.add_deposit(
                "USDT", "USDT-Polygon", "0.01", to="0xpolygon", tx_id=self.next_tx("d")
            )
        elif what == "unrelated":
            dep = self.okx.add_deposit(
                "USDT", "USDT-TRC20", "13.37", to=to, tx_id=self.next_tx("u")
            )
        else:  # the attacker pays someone else's exact amount: his money, their invoice
            if not self.invoices:
                return
            target = data.draw(s.sampled_from(self.invoice_ids()))
            view = self.invoices[target]
            dep = self.okx.add_deposit(
                view.currency,
                view.chain,
                view.amount_text,
                to=view.address,
                tx_id=self.next_tx("a"),
            )
            sender = ATTACKER
        tx = str(next(r for r in self.okx.deposit_rows() if r["depId"] == dep)["txId"])
        amount = str(next(r for r in self.okx.deposit_rows() if r["depId"] == dep)["amt"])
        self.sent[dep] = Sent(dep, sender, target, what, tx, "", self.clock.now_ms(), amount)
        self.note("deposit", dep, target or "")

    # --- OKX -----------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.sent))
    @rule(
        data=s.data(),
        change=s.sampled_from(("confirm", "confirm", "back", "hold", "amount", "vanish")),
    )
    def okx_changes(self, data: s.DataObject, change: str) -> None:
        live = sorted(d["depId"] for d in self.okx.deposit_rows())
        if not live:
            return
        dep = data.draw(s.sampled_from(live))
        self.step("okx changes", dep, change)
        row = next(r for r in self.okx.deposit_rows() if r["depId"] == dep)
        sent = self.sent[dep]
        if change == "confirm":
            self.okx.set_deposit(dep, state="2")
            return
        sent.disturbed = True
        if change == "back":
            self.okx.set_deposit(dep, state="0")
        elif change == "hold":
            self.okx.set_deposit(dep, state="12")
        elif change == "amount":
            self.okx.set_deposit(dep, amt=_fmt(Decimal(row["amt"]) - Decimal("0.01"), row["amt"]))
        else:
            self.okx.remove_deposit(dep)

    @rule(delta=s.sampled_from(CLOCK_STEPS))
    def time_passes(self, delta: int) -> None:
        self.step("time passes", f"{delta / 60_000:g} min")
        self.clock.advance(delta)
        self.polled_ok = False

    @rule(
        fault=s.sampled_from(
            (None, None, None, None, "server_error", "rate_limit", "crash", "crash_mid_poll")
        )
    )
    def poll(self, fault: str | None) -> None:
        """The minute job: one poll, then expiry. An OKX fault skips the poll (it writes
        nothing); a crash kills the process between two transactions (``crash_mid_poll``: after
        the poll stored what it read, before it decided anything) and a new one opens the same
        database."""
        self.step("poll", fault or "")
        if fault in ("crash", "crash_mid_poll"):
            self.crash(mid_poll=fault == "crash_mid_poll")
            return
        COUNTERS.polls += 1
        window = self.settings.ttl_ms + self.settings.monitor_ms
        reach = self.clock.now_ms() - window
        visible = {r["depId"] for r in self.okx.deposit_rows() if int(r["ts"]) >= reach}
        if fault is not None:
            self.okx.fail_next(1, fault, "/api/v5/asset/deposit-history")
        report = self.run(PaymentCycle(self.payments).run())
        self.okx.clear_faults()
        self.polled_ok = report.poll is not None
        if report.poll is not None:
            done = report.poll.processed
            self.note(f"decided {done.decided}, attached {done.attached}, paid {done.paid}")
        if self.polled_ok:
            self.cancelled_before_poll.clear()
            self.visible_at_poll = visible

    def crash(self, *, mid_poll: bool) -> None:
        COUNTERS.crashes += 1
        if mid_poll:
            self.run(self._die_mid_poll())
        self.run(self.payments.close())
        self.payments = self.run(self._open(fresh=False))
        self.polled_ok = False

    async def _die_mid_poll(self) -> None:
        """Prices are asked after the read is stored and before any decision: the process is
        killed while that request hangs."""
        self.payments.quotes.invalidate()
        path = "/api/v5/market/tickers"
        asked = self.okx.count(path)
        self.okx.fail_next(1, "timeout", path, hang_s=1.0)
        task = asyncio.ensure_future(self.payments.poller.poll())
        for _ in range(3000):  # event-driven: ends as soon as the price request hangs
            await asyncio.sleep(0.01)
            if task.done() or self.okx.count(path) > asked:
                break
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        self.okx.clear_faults()

    # --- claims --------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.sent))
    @rule(data=s.data())
    def customer_claims(self, data: s.DataObject) -> None:
        """A customer proves their own payment by its tx hash (or withdrawal ID)."""
        mine = sorted(d for d, x in self.sent.items() if x.sender in HONEST and x.invoice_id)
        if not mine:
            return
        sent = self.sent[data.draw(s.sampled_from(mine))]
        self.step("customer claims", sent.dep_id, "for", sent.invoice_id)
        assert sent.invoice_id is not None and sent.sender is not None
        reference = sent.tx_id or sent.wd_id
        COUNTERS.claims += 1
        found = self.run(self.rows(t.deposits, t.deposits.c.dep_id == sent.dep_id))
        holder = found[0]["invoice_id"] if found else None
        try:
            result = self.run(self.payments.claims.claim(sent.invoice_id, sent.sender, reference))
        except errors.InvoiceNotFound:
            return
        self.note(result.outcome, result.reason)
        if (
            holder is not None
            and self.invoices[holder].customer_id == ATTACKER
            and result.outcome != "admin"
        ):
            self.fail(
                f"customer {sent.sender} claimed deposit {sent.dep_id}, which the attacker holds "
                f"on {holder}: {result.outcome} ({result.reason}), not an admin's decision"
            )

    @precondition(lambda self: bool(self.sent))
    @rule(data=s.data())
    def attacker_claims(self, data: s.DataObject) -> None:
        """The attacker watches the shop's public addresses: he claims, for one of his
        invoices, every tx hash he has not tried for it yet, newest first, as many as the
        claim limit lets him."""
        his = [i for i in self.invoice_ids(ATTACKER)]
        if not his:
            return
        invoice_id = data.draw(s.sampled_from(his))
        tried = self.attacker_tried.setdefault(invoice_id, set())
        fresh = [x for x in reversed(self.sent.values()) if x.tx_id and x.dep_id not in tried]
        if not fresh:
            return
        self.step("attacker claims", len(fresh), "public tx hashes for", invoice_id)
        outcomes = []
        for sent in fresh:
            COUNTERS.claims += 1
            result = self.run(self.payments.claims.claim(invoice_id, ATTACKER, sent.tx_id))
            if result.reason == "rate_limited":
                break
            tried.add(sent.dep_id)
            outcomes.append(f"{sent.dep_id}:{result.outcome}")
        self.note(*outcomes)

    # --- admins -------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.sent))
    @rule(data=s.data())
    def admin_settles_from_the_truth(self, data: s.DataObject) -> None:
        """An admin looks at a deposit in the queue, learns whose it is, and acts: puts a
        customer's payment on the invoice it was for, refunds a stranger's, and refunds a second
        payment."""
        queue = self.run(self.payments.admin.pending(limit=200))
        candidates = sorted(d.dep_id for d in queue.unmatched)
        candidates += self.run(self._attached_to_someone_else())
        candidates += self.run(self._to_return())
        if not candidates:
            return
        dep = data.draw(s.sampled_from(sorted(set(candidates))))
        sent = self.sent.get(dep)
        if sent is None:
            return
        self.step("admin settles", dep, "sent by", sent.sender, "for", sent.invoice_id)
        COUNTERS.admin += 1
        [row] = self.run(self.rows(t.deposits, t.deposits.c.dep_id == dep))
        if row["match_kind"] in st.COUNTED_KINDS and row["disposition"] == st.DEP_ATTACHED:
            self.forced.discard(str(row["invoice_id"]))  # what that invoice relied on changes
        try:
            if sent.sender in HONEST and sent.invoice_id is not None:
                target = self.run(self.payments.invoices.get(sent.invoice_id))
                if target.status == st.PAID or row["match_kind"] in _TO_RETURN:
                    self.note("refunded (paid already)")
                    self.run(self.payments.admin.refunded(dep))  # paid already: give it back
                    self.refunded.add(dep)
                else:
                    self.note("reassigned")
                    self.run(self.payments.admin.reassign(dep, sent.invoice_id))
                    self.touched_by_admin.add(sent.invoice_id)
            else:
                self.note("refunded")
                self.run(self.payments.admin.refunded(dep))
                self.refunded.add(dep)
        except (errors.InvalidTransition, errors.DepositNotFound) as exc:
            self.note("refused:", exc)
            return

    @precondition(lambda self: bool(self.invoices))
    @rule(data=s.data())
    def admin_rejects(self, data: s.DataObject) -> None:
        """A customer asks an admin to close an invoice (whatever it has received)."""
        invoice_id = data.draw(s.sampled_from(self.invoice_ids()))
        self.step("admin rejects", invoice_id)
        COUNTERS.admin += 1
        try:
            self.run(self.payments.admin.reject(invoice_id))
        except errors.InvalidTransition as exc:
            self.note("refused:", exc)
            return
        self.touched_by_admin.add(invoice_id)

    async def _to_return(self) -> list[str]:
        rows = await self.rows(
            t.deposits,
            t.deposits.c.disposition == st.DEP_ATTACHED,
            t.deposits.c.match_kind.in_(_TO_RETURN),
        )
        return [str(r["dep_id"]) for r in rows]

    @precondition(lambda self: bool(self.invoices))
    @rule(data=s.data())
    def admin_accepts_what_arrived(self, data: s.DataObject) -> None:
        """An admin settles an invoice in the queue by hand, on what it received so far, after
        checking that every payment counted for it came from its own customer."""
        queue = self.run(self.payments.admin.pending(limit=200))
        counted = self.run(
            self.rows(
                t.deposits,
                t.deposits.c.disposition == st.DEP_ATTACHED,
                t.deposits.c.match_kind.in_(st.COUNTED_KINDS),
            )
        )
        senders: dict[str, set[int | None]] = {}
        for row in counted:
            sent = self.sent.get(row["dep_id"])
            senders.setdefault(str(row["invoice_id"]), set()).add(sent.sender if sent else None)
        waiting = [
            i.id
            for i in queue.review_invoices
            if i.status != st.PAID and not i.frozen and senders.get(i.id, set()) <= {i.customer_id}
        ]
        if not waiting:
            return
        invoice_id = data.draw(s.sampled_from(waiting))
        self.step("admin accepts", invoice_id, "as it is")
        COUNTERS.admin += 1
        try:
            self.run(self.payments.admin.confirm(invoice_id, force=True))
        except errors.InvalidTransition as exc:
            self.note("refused:", exc)
            return
        self.forced.add(invoice_id)
        self.touched_by_admin.add(invoice_id)

    async def _attached_to_someone_else(self) -> list[str]:
        rows = await self.rows(t.deposits, t.deposits.c.disposition == st.DEP_ATTACHED)
        out = []
        for row in rows:
            sent = self.sent.get(row["dep_id"])
            if sent and sent.sender in HONEST and sent.invoice_id not in (None, row["invoice_id"]):
                out.append(str(row["dep_id"]))
        return out

    @precondition(lambda self: bool(self.invoices))
    @rule(data=s.data(), undo=s.sampled_from(("reassign", "refund")))
    def admin_mistake_then_undo(self, data: s.DataObject, undo: str) -> None:
        """An admin moves (or refunds) the wrong deposit, sees it, and undoes it: everything a
        customer could see is as it was before."""
        rows = self.run(
            self.rows(
                t.deposits,
                t.deposits.c.disposition == st.DEP_ATTACHED,
                t.deposits.c.match_kind.in_(st.COUNTED_KINDS),
            )
        )
        paid = {i["id"] for i in self.run(self.rows(t.invoices, t.invoices.c.status == st.PAID))}
        sole: dict[str, list[str]] = {}
        for row in rows:
            sole.setdefault(row["invoice_id"], []).append(row["dep_id"])
        eligible = sorted(
            deps[0] for invoice_id, deps in sole.items() if invoice_id in paid and len(deps) == 1
        )
        if not eligible:
            return
        dep = data.draw(s.sampled_from(eligible))
        home = next(r["invoice_id"] for r in rows if r["dep_id"] == dep)
        before = self.run(self._observable())
        COUNTERS.admin += 1
        self.clock.advance(1)
        if undo == "reassign":
            soon = self.clock.now_ms() + MINUTE_MS
            open_now = {
                i["id"]
                for i in self.run(self.rows(t.invoices, t.invoices.c.status == st.PENDING))
                if i["id"] != home and i["expires_at"] + self.settings.late_grace_ms > soon
            }
            pending = [i for i in self.invoice_ids() if i in open_now]
            if not pending:
                return
            wrong = data.draw(s.sampled_from(pending))
            self.step("admin moves", dep, "from", home, "to", wrong, "and back")
            try:
                self.run(self.payments.admin.reassign(dep, wrong))
            except errors.InvalidTransition as exc:  # another coin: refused, nothing changed
                self.note("refused:", exc)
                if self.run(self._observable()) != before:
                    self.fail(f"a refused /reassign changed something: {exc}")
                return
            self.clock.advance(1)
            self.run(self.payments.admin.reassign(dep, home))
        else:
            self.step("admin refunds", dep, "of", home, "and confirms it again")
            self.run(self.payments.admin.refunded(dep))
            self.clock.advance(1)
            self.run(self.payments.admin.confirm(home, force=True))
            self.forced.add(home)
            self.refunded.add(dep)
        after = self.run(self._observable())
        if after != before:
            self.fail(f"admin undo of {undo} did not restore: before {before}, after {after}")

    async def _observable(self) -> tuple[Any, ...]:
        """What customers can see: running subscriptions and their ends, which invoices count,
        every invoice's status."""
        subs = await self.rows(t.subscriptions, t.subscriptions.c.ends_at > self.clock.now_ms())
        periods = await self.rows(
            t.subscription_periods, t.subscription_periods.c.revoked_at.is_(None)
        )
        invoices = await self.rows(t.invoices)
        return (
            sorted((r["customer_id"], r["plan_id"], r["ends_at"]) for r in subs),
            sorted(str(r["invoice_id"]) for r in periods),
            sorted((r["id"], r["status"]) for r in invoices),
        )

    # --- invariants ---------------------------------------------------------------------------

    def fail(self, message: str) -> None:
        if COUNTERS.first_violation_at is None:
            COUNTERS.first_violation_at = COUNTERS.steps
        COUNTERS.violations.append(message)
        steps = "\n  ".join(self.log[-40:])
        raise Violation(f"{message}\nafter these steps (the last 40):\n  {steps}")

    @invariant()
    def money_is_where_it_belongs(self) -> None:
        problems = self.run(self._check())
        if problems:
            self.fail("; ".join(problems))

    def _forgotten(self, sent: Sent, invoices: dict[str, dict[str, Any]]) -> bool:
        """Sent for an invoice whose monitoring window had ended: nothing ties an inexact amount
        to it any more (and its exact amount may be someone else's by now)."""
        meant = invoices.get(sent.invoice_id or "")
        return meant is not None and sent.created_at > meant["monitor_until"]

    async def _check(self) -> list[str]:
        rules = self.payments.processor.rules
        invoices = {r["id"]: r for r in await self.rows(t.invoices)}
        deposits = {r["dep_id"]: r for r in await self.rows(t.deposits)}
        periods = await self.rows(t.subscription_periods)
        subs = await self.rows(t.subscriptions)
        out: list[str] = []
        counted: dict[str, list[dict[str, Any]]] = {}
        for row in deposits.values():
            if row["disposition"] == st.DEP_ATTACHED and row["match_kind"] in st.COUNTED_KINDS:
                counted.setdefault(str(row["invoice_id"]), []).append(row)

        # 1. a paid invoice is backed: by settled money that covers it, by the deposit an
        #    admin confirmed it with, or by an admin's word alone; so no deposit pays twice
        for invoice_id, row in invoices.items():
            if row["status"] != st.PAID or invoice_id in self.forced or row["frozen"]:
                continue  # frozen: OKX changed its money afterwards, an admin decides
            mine = counted.get(invoice_id, [])
            if st.MARKED in st.parse_exceptions(row["exceptions"]):
                if not mine:
                    out.append(f"paid invoice {invoice_id} (by an admin) has no deposit left")
                continue
            settled = sum(
                (
                    Decimal(d["amount"])
                    for d in mine
                    if rules.states.classify(d["state"]) == "settled"
                ),
                Decimal(0),
            )
            lower = rules.lower_bound(InvoiceFacts.from_row(row))
            if settled < lower:
                out.append(f"paid invoice {invoice_id} is backed by {settled} < {lower}")

        # an admin's word stands until the admin changes what that invoice relied on
        for invoice_id in sorted(self.forced):
            if invoices[invoice_id]["status"] != st.PAID:
                out.append(
                    f"invoice {invoice_id}, confirmed by an admin, is now "
                    f"{invoices[invoice_id]['status']}"
                )

        # 2. every subscription ends where its live periods end; a live period is a paid invoice
        live = [p for p in periods if p["revoked_at"] is None]
        for p in live:
            if p["invoice_id"] is not None and invoices[p["invoice_id"]]["status"] != st.PAID:
                out.append(
                    f"period of invoice {p['invoice_id']} counts, but it is "
                    f"{invoices[p['invoice_id']]['status']}"
                )
        paid_with_period = {p["invoice_id"] for p in live}
        for invoice_id, row in invoices.items():
            if row["status"] == st.PAID and invoice_id not in paid_with_period:
                out.append(f"paid invoice {invoice_id} has no live period")
        for sub in subs:
            mine_p = [
                (int(p["credited_at"]), int(p["days"]))
                for p in live
                if p["subscription_id"] == sub["id"]
            ]
            schedule = replay_schedule(mine_p)
            if schedule and schedule[-1][1] != sub["ends_at"]:
                out.append(
                    f"customer {sub['customer_id']} {sub['plan_id']} ends {sub['ends_at']}, "
                    f"its periods replay to {schedule[-1][1]}"
                )

        # 3. the attacker never gains a period from money he did not send, except by claiming
        #    a deposit the matcher found ambiguous with his invoice among its candidates (the
        #    one risk a public tx hash carries; the payer's own claim then goes to an admin),
        #    or like anyone else from money that came after its own invoice's window (see 4)
        for invoice_id, row in invoices.items():
            if row["customer_id"] != ATTACKER or row["status"] != st.PAID:
                continue
            for d in counted.get(invoice_id, []):
                sent = self.sent.get(d["dep_id"])
                if sent is not None and (
                    sent.sender == ATTACKER or self._forgotten(sent, invoices)
                ):
                    continue
                if d["match_kind"] == st.KIND_CLAIM and d["note"] == "ambiguous":
                    continue
                out.append(
                    f"attacker's invoice {invoice_id} paid with deposit {d['dep_id']} "
                    f"({d['match_kind']}) that {sent.sender if sent else 'nobody'} sent"
                )

        # 4. nobody's money pays a stranger's invoice by itself (exact, tolerance, partial...),
        #    unless it came after its own invoice's monitoring window
        for dep, row in deposits.items():
            sent = self.sent.get(dep)
            if sent is None or sent.sender not in HONEST or row["disposition"] != st.DEP_ATTACHED:
                continue
            if self._forgotten(sent, invoices):
                continue
            owner = invoices[row["invoice_id"]]["customer_id"]
            if owner != sent.sender and row["match_kind"] in (
                st.KIND_EXACT,
                st.KIND_TOPUP,
                st.KIND_TOLERANCE,
                st.KIND_OVER,
                st.KIND_PARTIAL,
            ):
                out.append(
                    f"customer {sent.sender}'s deposit {dep} ({sent.how}) paid customer "
                    f"{owner}'s invoice {row['invoice_id']} ({row['match_kind']})"
                )

        if not self.polled_ok:
            return out
        # after a poll that succeeded:
        okx = {r["depId"]: r for r in self.okx.deposit_rows()}
        # 5. nothing waits longer than one poll, and nothing is handed to an admin for a
        #    failure that was not its own
        for dep, row in deposits.items():
            if row["needs_decision"]:
                out.append(f"deposit {dep} still waits for a decision after a poll")
            if row["note"] == "decision_error":
                out.append(f"deposit {dep} was sent to the admin queue by a decision error")
        for dep in self.visible_at_poll & okx.keys():
            if dep not in deposits:
                out.append(f"OKX deposit {dep} was never recorded")
        # 6. an exact payment inside its window is credited to its owner
        for sent in self.sent.values():
            if not sent.on_time_exact or sent.disturbed or sent.invoice_id is None:
                continue
            if sent.dep_id not in self.visible_at_poll:
                continue  # sent after the last poll
            if sent.invoice_id in self.touched_by_admin or sent.dep_id in self.refunded:
                continue
            if any(x.disturbed for x in self.sent.values() if x.invoice_id == sent.invoice_id):
                continue
            inv = invoices[sent.invoice_id]
            if inv["status"] in (st.CANCELLED, st.INVALID):
                continue
            if inv["status"] != st.PAID:
                out.append(
                    f"customer {sent.sender} paid invoice {sent.invoice_id} exactly and on time "
                    f"({sent.how}, deposit {sent.dep_id}), but it is {inv['status']}"
                )
        # 7. no invoice stays open past its window without an admin queue item
        polled_until = await self.payments.polled_until() or 0
        queue = await self.payments.admin.pending(limit=1000)
        review = {i.id for i in queue.review_invoices}
        grace = self.settings.late_grace_ms
        for invoice_id, row in invoices.items():
            if row["status"] == st.PENDING and row["expires_at"] + grace <= polled_until:
                out.append(f"invoice {invoice_id} is still pending past its time")
            if (
                row["status"] == st.PROCESSING
                and row["monitor_until"] <= polled_until
                and invoice_id not in review
            ):
                out.append(f"invoice {invoice_id} is still processing past its window")
            if row["frozen"] and invoice_id not in review:
                out.append(f"frozen invoice {invoice_id} is not in the admin queue")
            if (
                row["status"] in (st.EXPIRED, st.INVALID, st.CANCELLED)
                and counted.get(invoice_id)
                and invoice_id not in review
            ):
                out.append(
                    f"{row['status']} invoice {invoice_id} holds money but is not in /pending"
                )
        return out


def machine_for(database: str) -> type[MoneyPath]:
    return type(
        f"MoneyPath_{'sqlite' if database == 'sqlite' else 'postgresql'}",
        (MoneyPath,),
        {"database": database},
    )


def run_settings(
    examples: int, steps: int, *, seed: int | None = None, shrink: bool = True
) -> settings:
    phases = (Phase.explicit, Phase.reuse, Phase.generate) + ((Phase.shrink,) if shrink else ())
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=phases,
        derandomize=seed is None,
        database=None,
        verbosity=Verbosity.normal,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL")
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-shrink", action="store_true", help="report the first failure as is")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # OKX faults are part of the game
    from hypothesis import seed as with_seed
    from hypothesis.stateful import run_state_machine_as_test

    machine = machine_for(args.database)
    started = time.monotonic()

    @with_seed(args.seed)
    def once() -> None:
        run_state_machine_as_test(
            machine,
            settings=run_settings(
                args.examples, args.steps, seed=args.seed, shrink=not args.no_shrink
            ),
        )

    failure: BaseException | None = None
    try:
        once()
    except BaseException as exc:  # report, then exit non-zero
        failure = exc
    took = time.monotonic() - started
    print(
        f"money model: database={'sqlite' if args.database == 'sqlite' else 'postgresql'} "
        f"seed={args.seed} examples={args.examples} steps={COUNTERS.steps} "
        f"polls={COUNTERS.polls} crashes={COUNTERS.crashes} claims={COUNTERS.claims} "
        f"admin_actions={COUNTERS.admin} violations={len(COUNTERS.violations)} "
        f"first_violation_at_step={COUNTERS.first_violation_at} seconds={took:.0f}"
    )
    for message in dict.fromkeys(COUNTERS.violations):  # each distinct one, first seen first
        print(f"violation: {message}")
    if failure is not None:
        print(f"FAILED: {failure}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
