"""The Stars rail under an adversary's choice of sequence.

Hypothesis drives a rule-based state machine through the real :class:`StarsRail` on a fresh
database. Telegram's side is a plain model: what each customer was charged, for which payload,
and what was refunded. Customers open orders and pay them (only after the rail's pre-checkout
said yes, as Telegram does); a payment's update arrives, arrives twice, arrives late or never;
Telegram renews subscriptions unless the customer stopped them; a stranger pays with another
customer's payload or with junk; admins refund, Telegram's support refunds behind the bot's
back; the ledger is read at any moment; the clock jumps.

After every step: every charge the shop knows of is credited exactly once (one payment row, one
period), never one it could not know of or that names another's order; a refund the shop knows
of revoked its period exactly once; the customer heard of each charge and refund once; and after
a reconciliation the shop knows of every charge and refund Telegram's ledger holds.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as s
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select

from payments.catalog import Catalog, Coin, Network, Plan
from payments.clock import DAY_MS, MINUTE_MS, ManualClock
from payments.errors import UnknownChoice
from payments.stars import LedgerEntry, StarsCharge, StarsRail, payload_of
from payments.storage import Database
from payments.storage.schema import outbox, star_payments, subscription_periods

T = TypeVar("T")
CUSTOMERS = (1, 2, 3)
MONTH = Plan("month", "Month", Decimal("10"), 30, stars=500)
YEAR = Plan("year", "Year", Decimal("90"), 365, stars=4000)
CRYPTO = Plan("crypto", "Crypto", Decimal("5"), 7)
COIN = Coin("USDT", "Tether", Decimal("0.0001"), (Network("TRC20", "USDT-TRC20", "Tron"),))
CATALOG = Catalog(plans=(MONTH, YEAR, CRYPTO), coins=(COIN,))
TTL_MS = 120 * MINUTE_MS


@dataclass
class Charge:
    """A charge as Telegram knows it."""

    id: str
    customer: int
    payload: str
    stars: int
    date: int
    recurring: bool
    first: bool
    valid: bool  # names an order of this customer: the shop must credit it
    delivered: bool = False  # an update reached the shop at least once
    refunded: bool = False
    refund_seen: bool = False  # the shop was told of the refund (admin, or a reconciliation)


class StarsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="stars-model-"))
        self.clock = ManualClock(1_790_000_000_000)
        self.db = Database.from_url(f"sqlite:///{self.tmp / 'shop.sqlite3'}")
        self.run(self.db.migrate())
        self.rail = StarsRail(self.db, CATALOG, self.clock, order_ttl_ms=TTL_MS)
        self.orders: dict[str, tuple[int, Plan]] = {}
        self.paid_orders: set[str] = set()  # Telegram charged them (the shop may not know yet)
        self.renewal_on: dict[str, bool] = {}  # recurring order -> Telegram renews it
        self.charges: dict[str, Charge] = {}
        self.seq = 0
        self.reconciled_all = False  # the last step was a reconciliation over everything

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.db.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _charge_id(self) -> str:
        self.seq += 1
        return f"stx{self.seq:06d}"

    def _deliver(self, charge: Charge) -> None:
        self.run(
            self.rail.record_charge(
                StarsCharge(
                    customer_id=charge.customer,
                    charge_id=charge.id,
                    payload=charge.payload,
                    stars=charge.stars,
                    paid_at=charge.date,
                    recurring=charge.recurring,
                    first=charge.first,
                    subscription_ends_at=charge.date + 30 * DAY_MS if charge.recurring else None,
                )
            )
        )
        charge.delivered = True

    # --- what customers, strangers, Telegram and admins do ------------------------------------

    @initialize()
    def two_customers_shop(self) -> None:
        """Start where the interesting moves are: open orders of two customers."""
        for customer, plan in ((1, MONTH), (2, YEAR)):
            order = self.run(self.rail.open_order(customer, plan.id))
            self.orders[order.id] = (customer, plan)

    @rule(customer=s.sampled_from(CUSTOMERS), plan=s.sampled_from((MONTH, YEAR, CRYPTO)))
    def open_order(self, customer: int, plan: Plan) -> None:
        self.reconciled_all = False
        try:
            order = self.run(self.rail.open_order(customer, plan.id))
        except UnknownChoice:
            assert plan.stars is None
            return
        assert plan.stars is not None and order.stars == plan.stars
        self.orders[order.id] = (customer, plan)

    @precondition(lambda self: bool(self.orders))
    @rule(
        data=s.data(),
        someone_else=s.integers(min_value=0, max_value=3),
        delivery=s.sampled_from(("update", "twice", "lost")),
    )
    def pay(self, data: s.DataObject, someone_else: int, delivery: str) -> None:
        """Telegram asks the shop first; only a yes lets the payment happen. Mostly the order's
        customer pays; sometimes another customer tries with the same invoice."""
        self.reconciled_all = False
        order_id = data.draw(s.sampled_from(list(self.orders)))
        owner, plan = self.orders[order_id]
        payer = CUSTOMERS[(CUSTOMERS.index(owner) + someone_else) % len(CUSTOMERS)]
        payer = owner if someone_else == 3 else payer
        assert plan.stars is not None
        verdict = self.run(self.rail.check_checkout(payer, payload_of(order_id), "XTR", plan.stars))
        # the shop refuses a paid order once it has heard of the payment; a payment whose
        # update was lost leaves it open until the ledger is read (a second payment then is
        # credited too: the customer paid for it)
        known_paid = any(
            c.delivered and c.valid and c.payload == payload_of(order_id)
            for c in self.charges.values()
        )
        expected = payer == owner and not known_paid
        if not expected:
            assert not verdict.ok, f"pre-checkout said yes to {payer} for {order_id}"
        if not verdict.ok:
            return
        charge = Charge(
            self._charge_id(),
            payer,
            payload_of(order_id),
            plan.stars,
            self.clock.now_ms(),
            recurring=plan.renews_by_itself,
            first=True,
            valid=True,
        )
        self.charges[charge.id] = charge
        self.paid_orders.add(order_id)
        if plan.renews_by_itself:
            self.renewal_on[order_id] = True
        if delivery != "lost":
            self._deliver(charge)
        if delivery == "twice":
            self._deliver(charge)

    @precondition(lambda self: bool(self.orders))
    @rule(data=s.data(), stranger=s.sampled_from(CUSTOMERS), junk=s.booleans())
    def foreign_charge(self, data: s.DataObject, stranger: int, junk: bool) -> None:
        """A charge the shop must not credit: junk, or naming someone else's order."""
        self.reconciled_all = False
        order_id = data.draw(s.sampled_from(list(self.orders)))
        owner, _ = self.orders[order_id]
        if not junk and stranger == owner:
            return
        payload = "not-ours" if junk else payload_of(order_id)
        charge = Charge(
            self._charge_id(), stranger, payload, 100, self.clock.now_ms(), False, True, False
        )
        self.charges[charge.id] = charge
        self._deliver(charge)

    @precondition(lambda self: any(c.delivered for c in self.charges.values()))
    @rule(data=s.data())
    def redeliver(self, data: s.DataObject) -> None:
        self.reconciled_all = False
        charge_id = data.draw(s.sampled_from(sorted(self.charges)))
        self._deliver(self.charges[charge_id])

    @rule(days=s.integers(min_value=0, max_value=40), lost=s.booleans())
    def time_passes_and_telegram_renews(self, days: int, lost: bool) -> None:
        self.reconciled_all = False
        self.clock.advance(days * DAY_MS + MINUTE_MS)
        for order_id, on in list(self.renewal_on.items()):
            if not on:
                continue
            last = max(
                (c for c in self.charges.values() if c.payload == payload_of(order_id)),
                key=lambda c: c.date,
            )
            if last.refunded or last.date + 30 * DAY_MS > self.clock.now_ms():
                continue
            owner, plan = self.orders[order_id]
            assert plan.stars is not None
            charge = Charge(
                self._charge_id(),
                owner,
                payload_of(order_id),
                plan.stars,
                last.date + 30 * DAY_MS,
                recurring=True,
                first=False,
                valid=True,
            )
            self.charges[charge.id] = charge
            if not lost:
                self._deliver(charge)

    @precondition(lambda self: bool(self.renewal_on))
    @rule(data=s.data(), on=s.booleans())
    def customer_switches_renewal(self, data: s.DataObject, on: bool) -> None:
        self.reconciled_all = False
        order_id = data.draw(s.sampled_from(list(self.renewal_on)))
        owner, _ = self.orders[order_id]
        if self.run(self.rail.subscription(owner, order_id)) is None:
            return  # the shop has not heard of the payment yet: no switch to show
        self.renewal_on[order_id] = on
        self.run(self.rail.set_renewal(owner, order_id, on=on))

    @precondition(lambda self: any(c.valid for c in self.charges.values()))
    @rule(data=s.data(), by_admin=s.booleans())
    def refund(self, data: s.DataObject, by_admin: bool) -> None:
        """An admin's /refund (Telegram refunds, the shop records it), or Telegram's support
        (the shop learns of it from the ledger)."""
        self.reconciled_all = False
        charge_id = data.draw(
            s.sampled_from(sorted(c.id for c in self.charges.values() if c.valid))
        )
        charge = self.charges[charge_id]
        known = self.run(self.rail.find_payment(charge_id))
        if by_admin:
            if known is None:
                return  # /refund finds nothing to refund yet
            charge.refunded = True
            done = self.run(self.rail.record_refund(charge_id, by="admin"))
            assert (done is None) == charge.refund_seen, "a refund recorded twice, or not at all"
            charge.refund_seen = True
        else:
            charge.refunded = True
        self._stop_renewing(charge)

    def _stop_renewing(self, charge: Charge) -> None:
        order_id = charge.payload.removeprefix("subsbot:")
        if order_id in self.renewal_on:
            self.renewal_on[order_id] = False

    @rule()
    def reconcile(self) -> None:
        ledger = [
            LedgerEntry(
                c.id,
                c.stars,
                c.date,
                c.customer,
                True,
                c.payload,
                2_592_000 if c.recurring else None,
            )
            for c in self.charges.values()
        ]
        ledger += [
            LedgerEntry(c.id, c.stars, c.date, c.customer, False)
            for c in self.charges.values()
            if c.refunded
        ]
        self.clock.advance(2 * MINUTE_MS)
        self.run(self.rail.reconcile(sorted(ledger, key=lambda e: -e.date), covered_since=0))
        for charge in self.charges.values():
            charge.delivered = True
            if charge.refunded:
                charge.refund_seen = True
        self.reconciled_all = True

    # --- invariants -----------------------------------------------------------------------------

    async def _rows(self, table: Any) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(table))]

    @invariant()
    def credited_once_refunded_once(self) -> None:
        payments = {r["charge_id"]: r for r in self.run(self._rows(star_payments))}
        periods = self.run(self._rows(subscription_periods))
        by_key: dict[str, list[dict[str, Any]]] = {}
        for period in periods:
            by_key.setdefault(str(period["invoice_id"]), []).append(period)
        sent = [r for r in self.run(self._rows(outbox)) if r["kind"].startswith("stars.")]
        paid_told = [r for r in sent if r["kind"] == "stars.paid"]
        refunds_told = [r for r in sent if r["kind"] == "stars.refunded"]
        for charge_id, row in payments.items():
            charge = self.charges.get(charge_id)
            assert charge is not None, f"payment {charge_id} was never charged"
            assert charge.valid, f"charge {charge_id} names no order of its payer: credited"
            assert int(row["customer_id"]) == charge.customer
            found = by_key.get(str(row["id"]), [])
            assert len(found) == 1, f"charge {charge_id} has {len(found)} periods"
            period = found[0]
            assert (period["revoked_at"] is not None) == (row["refunded_at"] is not None)
        for charge in self.charges.values():
            if charge.valid and charge.delivered:
                assert charge.id in payments, f"charge {charge.id} known but not credited"
            if charge.refund_seen and charge.delivered:
                assert payments[charge.id]["refunded_at"] is not None, f"{charge.id} not revoked"
        assert len(periods) == len(payments)
        assert len(paid_told) == len(payments), "a charge told twice, or not at all"
        refunded = [r for r in payments.values() if r["refunded_at"] is not None]
        assert len(refunds_told) == len(refunded), "a refund told twice, or not at all"

    @invariant()
    def a_reconciliation_leaves_nothing_unknown(self) -> None:
        if not self.reconciled_all:
            return
        payments = {r["charge_id"]: r for r in self.run(self._rows(star_payments))}
        for charge in self.charges.values():
            if charge.valid:
                assert charge.id in payments, f"the ledger's {charge.id} was not credited"
                refunded = payments[charge.id]["refunded_at"] is not None
                assert refunded == charge.refunded, f"{charge.id}: refund not followed"


StarsModel.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
test_the_stars_rail_holds_whatever_sequence_an_adversary_picks = StarsModel.TestCase
