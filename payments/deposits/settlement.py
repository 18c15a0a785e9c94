"""Pure decisions: what an invoice's attached deposits add up to (docs/architecture.md, 4).

``evaluate`` looks at one invoice and the deposits attached to it and says which status and
exceptions it should have. ``record`` compares that with the stored row and applies the
difference as a compare-and-set transition. Frozen invoices never move on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from payments import states as st
from payments.deposits.matching import MatchRules, is_mismatch, received
from payments.facts import DepositFacts, InvoiceFacts


@dataclass(frozen=True)
class Verdict:
    status: str
    exceptions: frozenset[str]
    received: Decimal  # counted deposits, any state
    settled: Decimal  # counted deposits in a settled state
    shortfall: Decimal  # what is still missing of the asked amount (>= 0)
    partial: bool  # short by more than the tolerance: the customer needs a top-up amount
    late_review: bool  # paid after expiry but worth less than the price now: for an admin
    on_hold: bool  # a deposit is blacklisted / frozen / intercepted / KYC-limited by OKX


def evaluate(
    invoice: InvoiceFacts,
    deposits: Sequence[DepositFacts],
    rules: MatchRules,
    *,
    rate_now: Decimal | None,
) -> Verdict:
    """The status and exceptions that ``deposits`` (attached to ``invoice``) call for."""
    classify = rules.states.classify
    counted = [d for d in deposits if d.match_kind in st.COUNTED_KINDS]
    total = received(counted)
    settled = settled_total(counted, rules)
    on_hold = any(classify(d.state) == "on_hold" for d in counted)
    shortfall = max(Decimal(0), invoice.amount - total)
    exceptions = set(invoice.exceptions)
    if any(d.match_kind == st.KIND_DUPLICATE for d in deposits):
        exceptions.add(st.DUPLICATE)
    if any(d.match_kind == st.KIND_AFTER_CLOSE for d in deposits):
        exceptions.add(st.PAID_LATE)
    if any(is_mismatch(d, invoice) for d in counted):
        exceptions.add(st.MISMATCH)
    if on_hold:
        exceptions.add(st.ON_HOLD)

    def verdict(status: str, *, partial: bool = False, late_review: bool = False) -> Verdict:
        return Verdict(
            status=status,
            exceptions=frozenset(exceptions),
            received=total,
            settled=settled,
            shortfall=shortfall,
            partial=partial,
            late_review=late_review,
            on_hold=on_hold,
        )

    if invoice.frozen or invoice.status not in st.UNPAID_STATUSES:
        return verdict(invoice.status)

    lower = rules.lower_bound(invoice)
    if settled >= lower:
        if settled > _expected_total(invoice, counted):
            exceptions.add(st.PAID_OVER)
        if any(d.ts > invoice.expires_at + rules.late_grace_ms for d in counted):
            exceptions.add(st.PAID_LATE)
            if not _still_worth_it(invoice, settled, rules, rate_now):
                return verdict(st.EXPIRED, late_review=True)
        return verdict(st.PAID)
    if total >= lower:
        return verdict(st.PROCESSING)  # seen, waiting for confirmations (or on hold)
    if total > 0:
        exceptions.add(st.PAID_PARTIAL)
        if invoice.status == st.EXPIRED:
            return verdict(st.EXPIRED)  # partial after expiry: the admin queue, no top-up
        return verdict(st.PROCESSING, partial=True)
    return verdict(invoice.status)


def settled_total(deposits: Sequence[DepositFacts], rules: MatchRules) -> Decimal:
    """What the counted deposits in a settled state add up to."""
    return sum(
        (
            d.amount
            for d in deposits
            if d.match_kind in st.COUNTED_KINDS and rules.states.classify(d.state) == "settled"
        ),
        Decimal(0),
    )


def _expected_total(invoice: InvoiceFacts, counted: Sequence[DepositFacts]) -> Decimal:
    """The asked amount, or after a partial payment the partial part plus the top-up asked."""
    topups = [d for d in counted if d.match_kind == st.KIND_TOPUP]
    if not topups:
        return invoice.amount
    return received([d for d in counted if d.match_kind != st.KIND_TOPUP]) + received(topups)


def _still_worth_it(
    invoice: InvoiceFacts, settled: Decimal, rules: MatchRules, rate_now: Decimal | None
) -> bool:
    """A late payment settles by itself only if, at today's rate, it still covers the price."""
    if rate_now is None:
        return False
    factor = (Decimal(100) - rules.tolerance_percent) / Decimal(100)
    return settled * rate_now >= invoice.price_usd * factor
