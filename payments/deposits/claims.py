"""A customer proves a payment by its tx hash, or by their OKX withdrawal ID for an OKX-to-OKX
transfer. Reads the database only.

Tx hashes are public on block explorers, so today's state is no evidence of whose a deposit is.
A claim attaches a deposit by itself only when the matcher decided that deposit ambiguous with the
claimant's invoice among the candidates it kept at that moment (``deposit_candidates``). Any
other unmatched deposit of the invoice's coin (its exact amount reserved by another invoice,
unmatched after its window, by the address-owner rule, as a possible second payment, or with
another invoice as its recorded candidate) goes to an admin with the claim as evidence, and so
does a second claim of the same deposit. The claimant is told which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.clock import HOUR_MS, Clock
from payments.config import PaymentSettings
from payments.delivery import messages as msg
from payments.delivery.messages import invoice_fields
from payments.delivery.outbox import enqueue
from payments.deposits.matching import AMBIGUOUS, MatchRules
from payments.deposits.record import Applier
from payments.errors import InvoiceNotFound
from payments.facts import DepositFacts, InvoiceFacts
from payments.storage import Database
from payments.storage.schema import (
    claims,
    customers,
    deposit_candidates,
    deposits,
    invoices,
    reservations,
)

_REFERENCE = re.compile(r"^[A-Za-z0-9:_-]{4,200}$")

# outcomes
ATTACHED = "attached"  # the deposit is now on the invoice
NOT_FOUND = "not_found"  # no such deposit seen yet (the caller may trigger one poll)
REJECTED = "rejected"  # refused; ``reason`` says why
ADMIN = "admin"  # sent to an admin to decide

# reasons of a REJECTED claim that say nothing about the deposit
BAD_REFERENCE = "bad_reference"  # cannot be a tx hash or withdrawal ID
RATE_LIMITED = "rate_limited"  # too many claims by this customer in the last hour
BLOCKED = "blocked"  # an admin blocked this customer
# the deposit was attached to another customer's invoice by a guess at its amount: an admin decides
HELD_BY_ANOTHER = "held_by_another_invoice"
GUESSED_KINDS = frozenset({st.KIND_TOLERANCE, st.KIND_OVER})


@dataclass(frozen=True)
class ClaimResult:
    outcome: str
    reason: str = ""
    dep_id: str | None = None
    invoice_status: str | None = None


def normalize_reference(text: str) -> str | None:
    """Strip blanks; None when it cannot be a tx hash or withdrawal ID."""
    cleaned = text.strip()
    if not _REFERENCE.match(cleaned):
        return None
    return cleaned


class ClaimService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: PaymentSettings,
        rules: MatchRules,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.rules = rules

    async def claim(self, invoice_id: str, customer_id: int, reference: str) -> ClaimResult:
        ref = normalize_reference(reference)
        if ref is None:
            return ClaimResult(REJECTED, BAD_REFERENCE)
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            row = (
                (await conn.execute(select(invoices).where(invoices.c.id == invoice_id)))
                .mappings()
                .first()
            )
            if row is None or int(row["customer_id"]) != customer_id:
                raise InvoiceNotFound(f"no invoice {invoice_id}")
            invoice = InvoiceFacts.from_row(row)
            if await _blocked(conn, customer_id):
                return ClaimResult(REJECTED, BLOCKED)
            if await self._recent_claims(conn, customer_id, now) >= self.settings.claims_per_hour:
                # refused before any deposit is looked at, and not recorded: it changes nothing
                return ClaimResult(REJECTED, RATE_LIMITED)
            result = await self._decide(conn, invoice, ref, now)
            await conn.execute(
                claims.insert().values(
                    invoice_id=invoice.id,
                    customer_id=customer_id,
                    reference=ref[:200],
                    dep_id=result.dep_id,
                    outcome=result.outcome,
                    reason=result.reason,
                    created_at=now,
                )
            )
            if result.outcome == ADMIN:
                review = msg.ADMIN_CLAIM_REVIEW.message(
                    {**invoice_fields(invoice), "dep_id": result.dep_id, "reason": result.reason},
                    key=f"a:claim:{invoice.id}:{result.dep_id}",
                )
                await enqueue(conn, review, now_ms=now)
        return result

    @staticmethod
    async def _recent_claims(conn: AsyncConnection, customer_id: int, now: int) -> int:
        """Claims this customer made in the last hour (tx hashes are public: a limit keeps
        anyone from trying a block explorer's worth of them against their invoice)."""
        recent = select(func.count()).where(
            claims.c.customer_id == customer_id, claims.c.created_at > now - HOUR_MS
        )
        return int((await conn.execute(recent)).scalar_one())

    # --- deciding ----------------------------------------------------------------------------

    async def _decide(
        self, conn: AsyncConnection, invoice: InvoiceFacts, ref: str, now: int
    ) -> ClaimResult:
        closed = invoice.status not in st.UNPAID_STATUSES or invoice.frozen
        found = await _by_reference(conn, ref)
        if closed:
            held = [d for d in found if _guessed_for_another(d, invoice)]
            if len(held) == 1:  # its payer may be this customer: an admin decides
                return ClaimResult(ADMIN, HELD_BY_ANOTHER, held[0].dep_id)
            return ClaimResult(REJECTED, f"invoice_{invoice.status}", None, invoice.status)
        if not found:
            return ClaimResult(NOT_FOUND)
        if len(found) > 1:
            return ClaimResult(ADMIN, "several_deposits")
        deposit = found[0]
        if deposit.invoice_id == invoice.id:
            return ClaimResult(ATTACHED, "already_yours", deposit.dep_id, invoice.status)
        earlier = await _claimed_before(conn, deposit.dep_id, invoice.id)
        if earlier:
            return ClaimResult(ADMIN, "claimed_twice", deposit.dep_id)
        if _guessed_for_another(deposit, invoice):
            return ClaimResult(ADMIN, HELD_BY_ANOTHER, deposit.dep_id)
        if deposit.disposition in (st.DEP_ATTACHED, st.DEP_REFUNDED):
            return ClaimResult(REJECTED, "already_attached", deposit.dep_id)
        if deposit.currency != invoice.currency:
            return ClaimResult(REJECTED, "other_currency", deposit.dep_id)
        if deposit.ts < invoice.created_at - self.settings.pre_invoice_slack_ms:
            return ClaimResult(REJECTED, "older_than_invoice", deposit.dep_id)
        if deposit.ts > invoice.monitor_until:
            return ClaimResult(REJECTED, "after_invoice_window", deposit.dep_id)
        if deposit.disposition == st.DEP_NEW:  # not decided yet: the next poll decides it
            return ClaimResult(NOT_FOUND, "not_decided_yet", deposit.dep_id)
        reserved_by = await _reserved_by(conn, deposit)
        if reserved_by is not None and reserved_by != invoice.id:
            return ClaimResult(ADMIN, "amount_of_another_invoice", deposit.dep_id)
        if deposit.note != AMBIGUOUS:
            return ClaimResult(ADMIN, deposit.note or "not_ambiguous", deposit.dep_id)
        if not await _was_candidate(conn, deposit.dep_id, invoice.id):
            return ClaimResult(ADMIN, "candidate_of_others", deposit.dep_id)
        attached = await conn.execute(
            update(deposits)
            .where(
                deposits.c.dep_id == deposit.dep_id,
                deposits.c.disposition == st.DEP_UNMATCHED,
            )
            .values(
                disposition=st.DEP_ATTACHED,
                invoice_id=invoice.id,
                match_kind=st.KIND_CLAIM,
                matched_amount=deposit.amount_text,
                matched_state=deposit.state,
                updated_at=now,
            )
        )
        if attached.rowcount != 1:
            return ClaimResult(REJECTED, "already_attached", deposit.dep_id)
        # no current rate here: a late claim settles only by an admin
        applier = Applier(conn, now, self.rules, {}, settings=self.settings)
        applier.touched.add(invoice.id)
        applier.new_money.add(invoice.id)
        await applier.finish()
        status = (
            await conn.execute(select(invoices.c.status).where(invoices.c.id == invoice.id))
        ).scalar_one()
        return ClaimResult(ATTACHED, "", deposit.dep_id, str(status))


def _guessed_for_another(deposit: DepositFacts, invoice: InvoiceFacts) -> bool:
    """Attached to another invoice only by a guess at its amount (short by less than the
    tolerance, or more than asked: the only candidate when it was decided), so it may well
    be this claimant's payment: a late one, or one whose invoice was closed meanwhile."""
    return (
        deposit.disposition == st.DEP_ATTACHED
        and deposit.invoice_id not in (None, invoice.id)
        and deposit.match_kind in GUESSED_KINDS
    )


async def _blocked(conn: AsyncConnection, customer_id: int) -> bool:
    row = await conn.execute(select(customers.c.blocked_at).where(customers.c.id == customer_id))
    return row.scalar_one_or_none() is not None


async def _by_reference(conn: AsyncConnection, ref: str) -> list[DepositFacts]:
    conditions = [deposits.c.tx_id == ref, deposits.c.from_wd_id == ref]
    if ref.lower().startswith("0x"):  # EVM hashes: case does not matter
        conditions.append(func.lower(deposits.c.tx_id) == ref.lower())
    rows = await conn.execute(select(deposits).where(or_(*conditions)))
    return [DepositFacts.from_row(r) for r in rows.mappings()]


async def _reserved_by(conn: AsyncConnection, deposit: DepositFacts) -> str | None:
    """The invoice whose unique amount this deposit's amount is, if any (whatever its hold)."""
    if deposit.amount_units is None:
        return None
    holder = await conn.execute(
        select(reservations.c.invoice_id).where(
            reservations.c.currency == deposit.currency,
            reservations.c.amount_units == deposit.amount_units,
        )
    )
    found = holder.scalar_one_or_none()
    return None if found is None else str(found)


async def _was_candidate(conn: AsyncConnection, dep_id: str, invoice_id: str) -> bool:
    """Whether the matcher kept ``invoice_id`` among the candidates of ambiguous ``dep_id``."""
    row = await conn.execute(
        select(deposit_candidates.c.dep_id).where(
            deposit_candidates.c.dep_id == dep_id, deposit_candidates.c.invoice_id == invoice_id
        )
    )
    return row.first() is not None


async def _claimed_before(conn: AsyncConnection, dep_id: str, invoice_id: str) -> bool:
    count = (
        await conn.execute(
            select(func.count()).where(
                claims.c.dep_id == dep_id,
                claims.c.invoice_id != invoice_id,
            )
        )
    ).scalar_one()
    return bool(count)
