"""What admins do by hand: confirm, reject, reassign, refunded, grant, and the queue and a
customer's overview.

Each action is one transaction of compare-and-set writes; a refused action changes nothing and
says why in its exception message. Every correction re-evaluates each invoice it takes money
from: one whose remaining money no longer covers it loses its period (and leaves the customer's
open-invoice slots), and one paid again gets its period back as it was, so a mistake and its
undo leave everything as it was and one deposit never pays for two subscriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, not_, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.catalog import Catalog
from payments.clock import Clock
from payments.config import PaymentSettings
from payments.delivery import messages as msg
from payments.delivery.messages import invoice_fields
from payments.delivery.outbox import enqueue
from payments.delivery.webhooks import emit
from payments.deposits.matching import MatchRules, received
from payments.deposits.record import attached_deposits, load_invoice_versioned, on_paid
from payments.deposits.settlement import settled_total
from payments.errors import (
    DepositNotFound,
    InvalidGrant,
    InvalidTransition,
    InvoiceNotFound,
    UnknownChoice,
)
from payments.facts import DepositFacts, InvoiceFacts
from payments.invoicing.creation_guard import CreationGuard
from payments.invoicing.customers import CustomerView, ensure_customer, get_customer
from payments.money import format_amount
from payments.pricing.allocation import release_address
from payments.states import format_exceptions
from payments.storage import Database
from payments.storage.schema import customers, deposits, invoices, reservations
from payments.subscriptions.periods import (
    SubscriptionView,
    credit_period,
    get_subscriptions,
    revoke_period,
)

CONFIRMABLE = st.UNPAID_STATUSES | {st.CANCELLED, st.INVALID}
MAX_GRANT_DAYS = 3650


@dataclass(frozen=True)
class AdminResult:
    invoice_id: str | None
    status: str | None
    ends_at: int | None = None  # the customer's subscription end after the action
    message: str = ""


@dataclass(frozen=True)
class BlockResult:
    customer_id: int
    cancelled: int  # pending invoices cancelled
    freed: int  # unique amounts given back to everyone at once


@dataclass(frozen=True)
class PendingOverview:
    open_invoices: list[InvoiceFacts]
    review_invoices: list[InvoiceFacts]  # partial, late, on hold, frozen, duplicate
    unmatched: list[DepositFacts]
    # how many there are in all (the lists above are one page of them): "page 2 of 3"
    open_total: int = 0
    review_total: int = 0
    unmatched_total: int = 0


@dataclass(frozen=True)
class UserOverview:
    customer: CustomerView
    subscriptions: list[SubscriptionView]  # every plan, active and expired, by plan id
    invoices: list[InvoiceFacts]  # the 10 newest
    open_invoices: int  # pending or processing


class AdminService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        catalog: Catalog,
        settings: PaymentSettings,
        rules: MatchRules,
        guard: CreationGuard | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.settings = settings
        self.rules = rules
        self.guard = guard  # told when /block frees amounts

    async def block(self, customer_id: int) -> BlockResult:
        """Stop a customer: no new invoices or claims; their pending invoices are cancelled and
        the unique amounts of every invoice of theirs that received nothing are freed for other
        customers at once (not after the usual hold and quarantine). The risk, which the admin
        is told: if they still pay one of those amounts, it may settle someone else's invoice.
        Invoices that received money are left as they are."""
        if isinstance(customer_id, bool) or not isinstance(customer_id, int) or customer_id <= 0:
            raise InvalidGrant("the customer must be given by their numeric Telegram id")
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            await ensure_customer(conn, customer_id, now)
            await conn.execute(
                update(customers)
                .where(customers.c.id == customer_id, customers.c.blocked_at.is_(None))
                .values(blocked_at=now)
            )
            money = select(deposits.c.invoice_id).where(deposits.c.invoice_id.is_not(None))
            empty = select(invoices.c.id).where(
                invoices.c.customer_id == customer_id, invoices.c.id.not_in(money)
            )
            pending = (
                (
                    await conn.execute(
                        select(invoices.c.id).where(
                            invoices.c.customer_id == customer_id, invoices.c.status == st.PENDING
                        )
                    )
                )
                .scalars()
                .all()
            )
            if pending:
                await conn.execute(
                    update(invoices)
                    .where(invoices.c.id.in_(pending), invoices.c.status == st.PENDING)
                    .values(
                        status=st.CANCELLED,
                        closed_at=now,
                        updated_at=now,
                        version=invoices.c.version + 1,
                    )
                )
                for invoice_id in pending:
                    await release_address(
                        conn,
                        invoice_id=invoice_id,
                        now_ms=now,
                        quarantine_ms=self.settings.address_quarantine_ms,
                    )
            freed = await conn.execute(
                update(reservations)
                .where(
                    reservations.c.invoice_id.in_(empty),
                    reservations.c.held_until > now - self.settings.amount_quarantine_ms,
                )
                .values(held_until=now - self.settings.amount_quarantine_ms)
            )
        if self.guard is not None:
            self.guard.forget_full()
        return BlockResult(customer_id, len(pending), int(freed.rowcount or 0))

    async def unblock(self, customer_id: int) -> bool:
        """Let a blocked customer buy again; False when they were not blocked."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(customers)
                .where(customers.c.id == customer_id, customers.c.blocked_at.is_not(None))
                .values(blocked_at=None)
            )
        return bool(result.rowcount)

    async def grant(self, customer_id: int, plan_id: str, days: int | None = None) -> AdminResult:
        """Give a customer ``days`` of a plan (default: the plan's days) without a payment,
        from the end of their running subscription (or now), and tell them."""
        plan = self.catalog.plan(plan_id)
        if plan is None:
            raise UnknownChoice(f"there is no plan {plan_id!r}")
        days = plan.days if days is None else days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_GRANT_DAYS:
            raise InvalidGrant(f"days must be a whole number from 1 to {MAX_GRANT_DAYS}")
        if isinstance(customer_id, bool) or not isinstance(customer_id, int) or customer_id <= 0:
            raise InvalidGrant("the customer must be given by their numeric Telegram id")
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            await ensure_customer(conn, customer_id, now)
            credit = await credit_period(
                conn,
                customer_id=customer_id,
                plan_id=plan.id,
                days=days,
                now_ms=now,
                invoice_id=None,
                source="grant",
            )
            assert credit is not None  # only an invoice can have been credited already
            await emit.subscription_credited(conn, credit, customer_id, now, None)
            granted = msg.SUBSCRIPTION_GRANTED.message(
                {"plan_id": plan.id, "days": days, "ends_at": credit.ends_at},
                key=f"c:grant:{credit.period_id}",
                customer_id=customer_id,
            )
            await enqueue(conn, granted, now_ms=now)
        return AdminResult(None, None, credit.ends_at, "granted")

    async def user(self, customer_id: int) -> UserOverview | None:
        """What an admin needs to answer a customer; None when the customer is unknown."""
        async with self.db.read() as conn:
            customer = await get_customer(conn, customer_id)
            if customer is None:
                return None
            subscriptions = await get_subscriptions(conn, customer_id)
            rows = await conn.execute(
                select(invoices)
                .where(invoices.c.customer_id == customer_id)
                .order_by(invoices.c.created_at.desc(), invoices.c.id)
                .limit(10)
            )
            newest = [InvoiceFacts.from_row(r) for r in rows.mappings()]
            open_count = (
                await conn.execute(
                    select(func.count()).where(
                        invoices.c.customer_id == customer_id,
                        invoices.c.status.in_(st.OPEN_STATUSES),
                    )
                )
            ).scalar_one()
        return UserOverview(customer, subscriptions, newest, int(open_count))

    async def confirm(
        self, invoice_id: str, deposit_ref: str | None = None, *, force: bool = False
    ) -> AdminResult:
        """Settle by hand (exception ``marked``). With a deposit (depId or tx hash) it must be
        unattached; without one ``force`` is required (the bot asks for a second tap)."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            invoice, version = await _invoice(conn, invoice_id)
            if invoice.status not in CONFIRMABLE:
                raise InvalidTransition(f"invoice {invoice_id} is {invoice.status} already")
            deposit = None
            if deposit_ref is not None:
                deposit = await _find_deposit(conn, deposit_ref)
                if deposit.disposition not in (st.DEP_NEW, st.DEP_UNMATCHED):
                    raise InvalidTransition(
                        f"deposit {deposit.dep_id} is {deposit.disposition}: "
                        "use /reassign to move an attached deposit"
                    )
                if deposit.currency != invoice.currency:
                    raise InvalidTransition(
                        f"deposit {deposit.dep_id} is {deposit.currency}, "
                        f"invoice {invoice_id} is {invoice.currency}"
                    )
                await _attach(conn, deposit, invoice.id, (st.DEP_NEW, st.DEP_UNMATCHED), now)
            elif not force:
                raise InvalidTransition("confirming without a deposit needs a second confirmation")
            ends_at = await self._mark_paid(conn, invoice, version, now)
        return AdminResult(invoice_id, st.PAID, ends_at, "confirmed")

    async def reject(self, invoice_id: str) -> AdminResult:
        """Mark an unpaid invoice invalid (exception ``marked``). Money it had received stays
        attached to it and in /pending as money to return, until it is refunded or moved."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            invoice, version = await _invoice(conn, invoice_id)
            if invoice.status not in st.UNPAID_STATUSES:
                raise InvalidTransition(f"invoice {invoice_id} is {invoice.status}")
            await _set_invoice(conn, invoice, version, now, st.INVALID, {st.MARKED})
            await release_address(
                conn,
                invoice_id=invoice.id,
                now_ms=now,
                quarantine_ms=self.settings.address_quarantine_ms,
            )
            rejected = msg.INVOICE_REJECTED.message(
                invoice_fields(invoice),
                key=f"c:inv:{invoice.id}:rej:{now}",
                customer_id=invoice.customer_id,
            )
            await enqueue(conn, rejected, now_ms=now)
        return AdminResult(invoice_id, st.INVALID, None, "rejected")

    async def reassign(self, deposit_ref: str, invoice_id: str) -> AdminResult:
        """Move a deposit to another invoice (settled, ``marked``). The invoice it leaves is
        evaluated again in the same transaction: when what is left no longer covers it, its
        period is revoked."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            deposit = await _find_deposit(conn, deposit_ref)
            if deposit.invoice_id == invoice_id:
                raise InvalidTransition(f"deposit {deposit.dep_id} is already on {invoice_id}")
            target, version = await _invoice(conn, invoice_id)
            if target.status not in CONFIRMABLE:
                raise InvalidTransition(f"invoice {invoice_id} is {target.status} already")
            if deposit.currency != target.currency:
                raise InvalidTransition(
                    f"deposit {deposit.dep_id} is {deposit.currency}, "
                    f"invoice {invoice_id} is {target.currency}"
                )
            if deposit.disposition == st.DEP_REFUNDED:
                raise InvalidTransition(f"deposit {deposit.dep_id} was refunded")
            await _attach(
                conn, deposit, invoice_id, (st.DEP_NEW, st.DEP_UNMATCHED, st.DEP_ATTACHED), now
            )
            if _counted(deposit) and deposit.invoice_id is not None:
                await self._money_left(conn, deposit.invoice_id, now, "deposit moved")
            target, version = await _invoice(conn, invoice_id)
            ends_at = await self._mark_paid(conn, target, version, now)
        return AdminResult(invoice_id, st.PAID, ends_at, "reassigned")

    async def refunded(self, deposit_ref: str) -> AdminResult:
        """Record a refund made by hand: block the deposit; the invoice it was on is evaluated
        again (and loses its period when the rest no longer covers it)."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            deposit = await _find_deposit(conn, deposit_ref)
            if deposit.disposition == st.DEP_REFUNDED:
                raise InvalidTransition(f"deposit {deposit.dep_id} is already marked refunded")
            invoice_id = deposit.invoice_id
            result = await conn.execute(
                update(deposits)
                .where(
                    deposits.c.dep_id == deposit.dep_id,
                    deposits.c.disposition == deposit.disposition,
                )
                .values(
                    disposition=st.DEP_REFUNDED,
                    invoice_id=None,
                    needs_decision=False,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                raise InvalidTransition(f"deposit {deposit.dep_id} changed; try again")
            if _counted(deposit) and invoice_id is not None:
                await self._money_left(conn, invoice_id, now, "deposit refunded")
        return AdminResult(invoice_id, None, None, "refunded")

    async def _mark_paid(
        self, conn: AsyncConnection, invoice: InvoiceFacts, version: int, now: int
    ) -> int | None:
        await _set_invoice(
            conn, invoice, version, now, st.PAID, {st.MARKED}, paid_at=invoice.paid_at or now
        )
        exceptions = sorted(invoice.exceptions | {st.MARKED})
        return await on_paid(
            conn,
            invoice,
            now,
            received=None,
            exceptions=exceptions,
            address_quarantine_ms=self.settings.address_quarantine_ms,
            source="admin",
            tell_admins=False,
        )

    def _unpaid_status(self, invoice: InvoiceFacts, now: int) -> str:
        """Pending while the invoice's time runs (its customer may still pay it), else expired."""
        ended = now > invoice.expires_at + self.settings.late_grace_ms
        return st.EXPIRED if ended else st.PENDING

    async def _money_left(self, conn: AsyncConnection, invoice_id: str, now: int, why: str) -> None:
        """Money has just left ``invoice_id`` (moved or refunded). A paid invoice that what is
        left no longer covers loses its period: with some money left it waits in /pending
        (expired) for an admin to confirm or refund it; with nothing left it is what it was
        before it was paid (pending while its time runs, else expired), so undoing a mistaken
        /reassign leaves the invoice it briefly paid as it was. An unpaid one with nothing left
        goes back to waiting for its payment (or expires)."""
        invoice, version = await load_invoice_versioned(conn, invoice_id)
        counted = [
            d for d in await attached_deposits(conn, invoice_id) if d.match_kind in st.COUNTED_KINDS
        ]
        left = received(counted)
        lower = self.rules.lower_bound(invoice)
        if invoice.status == st.PAID:
            if settled_total(counted, self.rules) >= lower:
                return  # still covered
            ends_at = await revoke_period(conn, invoice_id=invoice.id, now_ms=now, reason=why)
            if counted:
                status = st.EXPIRED
                added = {st.MARKED} | ({st.PAID_PARTIAL} if left < lower else set())
                await _set_invoice(conn, invoice, version, now, status, added)
            else:
                status = self._unpaid_status(invoice, now)
                await _reopen(conn, invoice, version, now, status)
            await emit.subscription_revoked(conn, invoice, now, ends_at=ends_at, reason=why)
            key = f"inv:{invoice.id}:revoked:{now}"
            payload: msg.Revoked = {
                **invoice_fields(invoice),
                "received": format_amount(left, invoice.step),
                "reason": why,
                "status": status,
            }
            await enqueue(
                conn,
                msg.INVOICE_REVOKED.message(
                    invoice_fields(invoice), key=f"c:{key}", customer_id=invoice.customer_id
                ),
                msg.ADMIN_REVOKED.message(payload, key=f"a:{key}"),
                now_ms=now,
            )
        elif invoice.status in (st.PROCESSING, st.EXPIRED) and not counted:
            status = (
                st.EXPIRED if invoice.status == st.EXPIRED else self._unpaid_status(invoice, now)
            )
            await _reopen(conn, invoice, version, now, status)
        elif invoice.status == st.PROCESSING and left < lower:
            extra = invoice.exceptions | {st.PAID_PARTIAL}
            await _set_exceptions(conn, invoice, version, now, extra)

    async def pending(self, *, limit: int = 20, offset: int = 0) -> PendingOverview:
        """The admin queue, newest first."""
        # waiting for a decision: frozen; unpaid with a partial, late or held payment; or
        # carrying a second payment (duplicate, after close) that is not refunded yet.
        # Once an admin confirms, rejects or records the refund, it leaves the queue.
        # The review queue is a set of invoice ids, a UNION of branches that each read an index
        # (frozen; unpaid by status; an attached duplicate or after-close deposit by its kind;
        # expired, rejected or cancelled by status, then their own deposits): one OR over all
        # of them, with EXISTS on deposits, made PostgreSQL read every invoice ever made.
        ids = invoices.alias("queued")

        def counted_for(invoice: Any) -> Any:
            return (
                select(deposits.c.dep_id)
                .where(
                    deposits.c.invoice_id == invoice.c.id,
                    deposits.c.disposition == st.DEP_ATTACHED,
                    deposits.c.match_kind.in_(st.COUNTED_KINDS),
                )
                .exists()
            )

        partly_paid = or_(
            *(
                invoices.c.exceptions.contains(e)
                for e in (st.PAID_PARTIAL, st.PAID_LATE, st.ON_HOLD)
            )
        )
        review = or_(
            invoices.c.frozen.is_(True),
            and_(invoices.c.status.in_(st.UNPAID_STATUSES), partly_paid),
            # its window ended with its money seen but never confirmed
            and_(invoices.c.status == st.EXPIRED, counted_for(invoices)),
        )
        queued = union(
            select(ids.c.id).where(ids.c.frozen.is_(True), ids.c.status != st.INVALID),
            select(ids.c.id).where(
                ids.c.status.in_(st.UNPAID_STATUSES),
                or_(
                    *(
                        ids.c.exceptions.contains(e)
                        for e in (st.PAID_PARTIAL, st.PAID_LATE, st.ON_HOLD)
                    )
                ),
            ),
            select(ids.c.id).where(ids.c.status == st.EXPIRED, counted_for(ids)),
            # carrying a second payment (duplicate, after close) that is not refunded yet
            select(deposits.c.invoice_id).where(
                deposits.c.match_kind.in_((st.KIND_DUPLICATE, st.KIND_AFTER_CLOSE)),
                deposits.c.disposition == st.DEP_ATTACHED,
            ),
            # rejected or cancelled while money was counted for it (a reject after a partial)
            select(ids.c.id).where(ids.c.status.in_((st.INVALID, st.CANCELLED)), counted_for(ids)),
        )
        is_open = and_(invoices.c.status.in_(st.OPEN_STATUSES), not_(review))
        in_review = (invoices.c.id.in_(queued),)
        is_unmatched = deposits.c.disposition == st.DEP_UNMATCHED
        async with self.db.read() as conn:
            open_total, review_total, unmatched_total = [
                int((await conn.execute(select(func.count()).where(*where))).scalar_one())
                for where in ((is_open,), in_review, (is_unmatched,))
            ]
            open_rows = await conn.execute(
                select(invoices)
                .where(is_open)
                .order_by(invoices.c.created_at.desc(), invoices.c.id)
                .limit(limit)
                .offset(offset)
            )
            open_invoices = [InvoiceFacts.from_row(r) for r in open_rows.mappings()]
            review_rows = await conn.execute(
                select(invoices)
                .where(*in_review)
                .order_by(invoices.c.updated_at.desc(), invoices.c.id)
                .limit(limit)
                .offset(offset)
            )
            reviews = [InvoiceFacts.from_row(r) for r in review_rows.mappings()]
            dep_rows = await conn.execute(
                select(deposits)
                .where(is_unmatched)
                .order_by(deposits.c.ts.desc(), deposits.c.dep_id)
                .limit(limit)
                .offset(offset)
            )
            unmatched = [DepositFacts.from_row(r) for r in dep_rows.mappings()]
        return PendingOverview(
            open_invoices, reviews, unmatched, open_total, review_total, unmatched_total
        )


async def _invoice(conn: AsyncConnection, invoice_id: str) -> tuple[InvoiceFacts, int]:
    row = (
        (await conn.execute(select(invoices).where(invoices.c.id == invoice_id))).mappings().first()
    )
    if row is None:
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    return InvoiceFacts.from_row(row), int(row["version"])


async def _find_deposit(conn: AsyncConnection, ref: str) -> DepositFacts:
    """A deposit by OKX depId, or by tx hash when that names exactly one deposit."""
    rows = (
        (
            await conn.execute(
                select(deposits).where(or_(deposits.c.dep_id == ref, deposits.c.tx_id == ref))
            )
        )
        .mappings()
        .all()
    )
    by_id = [r for r in rows if r["dep_id"] == ref]
    if by_id:
        return DepositFacts.from_row(by_id[0])
    if len(rows) == 1:
        return DepositFacts.from_row(rows[0])
    if len(rows) > 1:
        raise InvalidTransition(f"{ref} names {len(rows)} deposits: give the deposit id")
    raise DepositNotFound(f"no deposit {ref} (yet)")


async def _attach(
    conn: AsyncConnection,
    deposit: DepositFacts,
    invoice_id: str,
    expected: tuple[str, ...],
    now: int,
) -> None:
    result = await conn.execute(
        update(deposits)
        .where(deposits.c.dep_id == deposit.dep_id, deposits.c.disposition.in_(expected))
        .values(
            disposition=st.DEP_ATTACHED,
            invoice_id=invoice_id,
            match_kind=st.KIND_ADMIN,
            matched_amount=deposit.amount_text,
            matched_state=deposit.state,
            needs_decision=False,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        raise InvalidTransition(f"deposit {deposit.dep_id} changed; try again")


async def _set_invoice(
    conn: AsyncConnection,
    invoice: InvoiceFacts,
    version: int,
    now: int,
    status: str,
    add: set[str],
    **values: Any,
) -> None:
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice.id, invoices.c.version == version)
        .values(
            status=status,
            exceptions=format_exceptions(invoice.exceptions | add),
            frozen=False,
            closed_at=now,
            updated_at=now,
            version=version + 1,
            **values,
        )
    )
    if result.rowcount != 1:
        raise InvalidTransition(f"invoice {invoice.id} changed meanwhile; try again")


async def _set_exceptions(
    conn: AsyncConnection, invoice: InvoiceFacts, version: int, now: int, values: frozenset[str]
) -> None:
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice.id, invoices.c.version == version)
        .values(exceptions=format_exceptions(values), updated_at=now, version=version + 1)
    )
    if result.rowcount != 1:
        raise InvalidTransition(f"invoice {invoice.id} changed meanwhile; try again")


def _counted(deposit: DepositFacts) -> bool:
    """Whether the deposit counted towards its invoice (not a duplicate or after-close one,
    whose leaving changes nothing the invoice relied on)."""
    return deposit.disposition == st.DEP_ATTACHED and deposit.match_kind in st.COUNTED_KINDS


async def _reopen(
    conn: AsyncConnection, invoice: InvoiceFacts, version: int, now: int, status: str
) -> None:
    """No money is left on the invoice: back to ``status`` (pending or expired), without the
    exceptions that described its money."""
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice.id, invoices.c.version == version)
        .values(
            status=status,
            exceptions=format_exceptions(invoice.exceptions - _MONEY_EXCEPTIONS),
            closed_at=now if status == st.EXPIRED else None,
            updated_at=now,
            version=version + 1,
        )
    )
    if result.rowcount != 1:
        raise InvalidTransition(f"invoice {invoice.id} changed meanwhile; try again")


# exceptions that describe the money an invoice holds (cleared when none is left)
_MONEY_EXCEPTIONS = frozenset(
    {st.PAID_PARTIAL, st.PAID_OVER, st.PAID_LATE, st.ON_HOLD, st.MISMATCH}
)
