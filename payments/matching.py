"""Pure decisions: which invoice, if any, each deposit belongs to (DESIGN section 5).

No I/O here. ``processing`` loads a :class:`Snapshot`, calls :func:`match_deposits`, and applies
the decisions in one transaction. The rules, in order:

* Deposits are decided in (ts, depId) order, exact matches first, then the inexact ones, so the
  outcome never depends on the order rows arrived.
* Exact: same currency and same amount (in units) as a reservation. Another chain of the currency
  or another of our addresses still matches, recorded as a mismatch. A deposit created before the
  invoice (minus a slack) never matches it; one after the reservation's hold goes to an admin.
  Paid invoices take a second payment as a duplicate, cancelled/rejected ones as after-close:
  both attach for an admin and never credit anybody.
* Inexact: when the deposit's address belongs to exactly one open invoice, that invoice is the
  only candidate (over, within tolerance, or partial). Otherwise the candidates are the unpaid
  invoices of the currency within tolerance (below) or the same tolerance above; exactly one
  candidate settles, anything else goes to the unmatched queue.
* Attached deposits whose amount changed, or whose state moved back from settled, freeze their
  invoice for an admin.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from payments import states as st
from payments.facts import DepositFacts, InvoiceFacts, ReservationFacts
from payments.money import to_units, to_units_ceil, to_units_floor
from payments.states import StatePolicy


@dataclass(frozen=True)
class MatchRules:
    tolerance_percent: Decimal
    pre_invoice_slack_ms: int
    late_grace_ms: int
    states: StatePolicy
    allowances: Mapping[str, Decimal] = field(default_factory=dict)  # chain -> fixed allowance

    def allowance(self, chain: str) -> Decimal:
        return self.allowances.get(chain, Decimal(0))

    def lower_bound(self, invoice: InvoiceFacts) -> Decimal:
        """The least total that settles an invoice: base price minus tolerance and allowance."""
        factor = (Decimal(100) - self.tolerance_percent) / Decimal(100)
        return invoice.base * factor - self.allowance(invoice.chain)

    def upper_window(self, invoice: InvoiceFacts) -> Decimal:
        """Above this an inexact deposit is no candidate unless the address is the invoice's own."""
        factor = (Decimal(100) + self.tolerance_percent) / Decimal(100)
        return invoice.amount * factor


@dataclass
class Snapshot:
    """What the matcher may look at. ``invoices`` must hold every invoice referenced by the
    reservations and attachments, every unpaid invoice of a batch currency that an inexact
    deposit could fit, and every open invoice on a batch deposit's address."""

    invoices: dict[str, InvoiceFacts]
    reservations: dict[tuple[str, int], ReservationFacts]
    attached: dict[str, list[DepositFacts]]  # invoice id -> deposits attached before this batch


@dataclass(frozen=True)
class Attach:
    dep_id: str
    invoice_id: str
    kind: str
    mismatch: bool = False


@dataclass(frozen=True)
class Unmatched:
    dep_id: str
    reason: str  # no_candidate | ambiguous | after_window
    candidate_invoice_id: str | None = None


@dataclass(frozen=True)
class Freeze:
    dep_id: str
    invoice_id: str
    reason: str  # amount_changed | state_reverted


@dataclass(frozen=True)
class Update:
    """An attached deposit's state moved on; re-evaluate its invoice."""

    dep_id: str
    invoice_id: str


Decision = Attach | Unmatched | Freeze | Update


def received(deposits: Sequence[DepositFacts], kinds: frozenset[str] = st.COUNTED_KINDS) -> Decimal:
    return sum((d.amount for d in deposits if d.match_kind in kinds), Decimal(0))


# An invoice asks for at most base * (1 + offset cap), and the cap is at most 10 % (config):
# bounds on base_units that every inexact candidate of an amount lies within.
MAX_OFFSET_FACTOR = Decimal("1.11")


def base_range(amount: Decimal, rules: MatchRules, scale: int) -> tuple[int, int]:
    """The base_units an invoice must have for ``amount`` (with nothing received yet) to fall
    within its tolerance window; a superset, filtered exactly by ``_within_window``."""
    factor = rules.tolerance_percent / Decimal(100)
    allowance = max(rules.allowances.values(), default=Decimal(0))
    low = to_units_floor(amount / ((1 + factor) * MAX_OFFSET_FACTOR), scale)
    high = to_units_ceil((amount + allowance) / (1 - factor), scale)
    return low, high


class _Book:
    """The snapshot plus what this batch has attached so far, indexed for the inexact pass."""

    def __init__(self, snapshot: Snapshot, rules: MatchRules) -> None:
        self.snapshot = snapshot
        self.rules = rules
        self.added: dict[str, list[DepositFacts]] = {}
        self._received: dict[str, Decimal] = {}
        self._lower: dict[str, Decimal] = {}
        self.short: set[str] = set()  # invoices that have received money, but not enough yet
        self._by_currency: dict[str, tuple[list[int], list[InvoiceFacts]]] = {}
        ordered = sorted(snapshot.invoices.values(), key=lambda i: (i.currency, i.base_units, i.id))
        for invoice in ordered:
            keys, invoices = self._by_currency.setdefault(invoice.currency, ([], []))
            keys.append(invoice.base_units)
            invoices.append(invoice)
        self.by_address: dict[str, list[InvoiceFacts]] = {}
        for invoice in ordered:
            self.by_address.setdefault(invoice.address, []).append(invoice)
        for invoice_id in snapshot.attached:
            self._recount(invoice_id)

    def near(self, deposit: DepositFacts, rules: MatchRules) -> Iterator[InvoiceFacts]:
        """Invoices of the deposit's currency whose window could hold it: those priced near
        its amount, then those that have already received money (a partial's rest)."""
        keys, invoices = self._by_currency.get(deposit.currency, ([], []))
        if not invoices:
            return
        low, high = base_range(deposit.amount, rules, invoices[0].scale)
        seen: set[str] = set()
        for invoice in invoices[bisect_left(keys, low) : bisect_right(keys, high)]:
            seen.add(invoice.id)
            yield invoice
        for invoice_id in sorted(self.short - seen):
            paid_into = self.snapshot.invoices[invoice_id]
            if paid_into.currency == deposit.currency:
                yield paid_into

    def deposits_of(self, invoice_id: str) -> list[DepositFacts]:
        return self.snapshot.attached.get(invoice_id, []) + self.added.get(invoice_id, [])

    def keep(self, deposit: DepositFacts) -> None:
        """A deposit attached by an earlier poll and re-read in this batch (so the snapshot,
        which holds only what is not being decided again, lacks it): it still counts."""
        assert deposit.invoice_id is not None
        if all(d.dep_id != deposit.dep_id for d in self.deposits_of(deposit.invoice_id)):
            self.added.setdefault(deposit.invoice_id, []).append(deposit)
            self._recount(deposit.invoice_id)

    def attach(self, deposit: DepositFacts, invoice_id: str, kind: str) -> None:
        attached = replace(deposit, invoice_id=invoice_id, match_kind=kind)
        self.added.setdefault(invoice_id, []).append(attached)
        self._recount(invoice_id)

    def received(self, invoice_id: str) -> Decimal:
        cached = self._received.get(invoice_id)
        return cached if cached is not None else Decimal(0)

    def lower_bound(self, invoice: InvoiceFacts) -> Decimal:
        cached = self._lower.get(invoice.id)
        if cached is None:
            cached = self._lower[invoice.id] = self.rules.lower_bound(invoice)
        return cached

    def _recount(self, invoice_id: str) -> None:
        total = received(self.deposits_of(invoice_id))
        self._received[invoice_id] = total
        invoice = self.snapshot.invoices.get(invoice_id)
        if invoice is not None and Decimal(0) < total < self.lower_bound(invoice):
            self.short.add(invoice_id)
        else:
            self.short.discard(invoice_id)


def match_deposits(
    batch: Sequence[DepositFacts], snapshot: Snapshot, rules: MatchRules
) -> list[Decision]:
    """Decide every deposit of ``batch`` (deposits that are new or changed since last time)."""
    book = _Book(snapshot, rules)
    decisions: list[Decision] = []
    fresh: list[DepositFacts] = []
    for deposit in sorted(batch, key=lambda d: d.sort_key):
        if deposit.disposition == st.DEP_ATTACHED and deposit.invoice_id is not None:
            decisions.append(_recheck_attached(deposit, rules))
            book.keep(deposit)  # still attached: the exact and inexact passes must see it
        elif deposit.disposition == st.DEP_NEW:
            fresh.append(deposit)
        # unmatched and refunded deposits are final except for a claim or an admin

    inexact: list[DepositFacts] = []
    for deposit in fresh:  # pass 1: exact amounts
        decision = _match_exact(deposit, book, rules)
        if decision is None:
            inexact.append(deposit)
        else:
            decisions.append(decision)
    for deposit in inexact:  # pass 2: everything else
        decisions.append(_match_inexact(deposit, book, rules))
    return decisions


def _recheck_attached(deposit: DepositFacts, rules: MatchRules) -> Decision:
    assert deposit.invoice_id is not None
    if deposit.matched_amount is not None and deposit.amount != deposit.matched_amount:
        return Freeze(deposit.dep_id, deposit.invoice_id, "amount_changed")
    was = rules.states.classify(deposit.matched_state) if deposit.matched_state else None
    if was == "settled" and rules.states.classify(deposit.state) != "settled":
        return Freeze(deposit.dep_id, deposit.invoice_id, "state_reverted")
    return Update(deposit.dep_id, deposit.invoice_id)


def is_mismatch(deposit: DepositFacts, invoice: InvoiceFacts) -> bool:
    """Paid on another chain of the currency, or to another of our addresses."""
    if deposit.chain != invoice.chain:
        return True
    return (
        deposit.type != "3" and bool(deposit.to_address) and deposit.to_address != invoice.address
    )


def _too_early(deposit: DepositFacts, invoice: InvoiceFacts, rules: MatchRules) -> bool:
    return deposit.ts < invoice.created_at - rules.pre_invoice_slack_ms


def _match_exact(deposit: DepositFacts, book: _Book, rules: MatchRules) -> Decision | None:
    if deposit.amount_units is None:
        return None  # more decimals than the scale: never an exact match
    reservation = book.snapshot.reservations.get((deposit.currency, deposit.amount_units))
    if reservation is None:
        return None
    invoice = book.snapshot.invoices.get(reservation.invoice_id)
    if invoice is None or _too_early(deposit, invoice, rules):
        return None
    if _fewer_decimals_than_step(deposit.amount_units, invoice):
        return None  # rounded or truncated by a wallet: never an exact match
    if deposit.ts > reservation.held_until:
        return Unmatched(deposit.dep_id, "after_window", invoice.id)
    mismatch = is_mismatch(deposit, invoice)
    if invoice.status == st.PAID or _already_has(book, invoice.id, deposit.amount_units):
        kind = st.KIND_DUPLICATE
    elif invoice.status in (st.CANCELLED, st.INVALID):
        kind = st.KIND_AFTER_CLOSE
    elif reservation.kind == "topup":
        kind = st.KIND_TOPUP
    else:
        kind = st.KIND_EXACT
    book.attach(deposit, invoice.id, kind)
    return Attach(deposit.dep_id, invoice.id, kind, mismatch)


def _fewer_decimals_than_step(amount_units: int, invoice: InvoiceFacts) -> bool:
    """Ends in 0 at the invoice's step precision (29.00, 29.003 for a 0.0001 step): DESIGN section
    4 never issues such an amount and never counts such a deposit as an exact match."""
    step = to_units(invoice.step, invoice.scale)
    return step is not None and step > 0 and (amount_units // step) % 10 == 0


def _already_has(book: _Book, invoice_id: str, amount_units: int) -> bool:
    """A second deposit of the very same unique amount is a duplicate, not a second credit.
    Only deposits matched by a reservation count: a partial payment of the same amount as the
    top-up asked after it (a customer paying in two equal halves) is not that amount paid."""
    return any(
        d.amount_units == amount_units and d.match_kind in _BY_RESERVATION
        for d in book.deposits_of(invoice_id)
    )


_BY_RESERVATION = frozenset({st.KIND_EXACT, st.KIND_TOPUP})


def _eligible(deposit: DepositFacts, invoice: InvoiceFacts, book: _Book, rules: MatchRules) -> bool:
    """An unpaid invoice of the currency that this deposit could still be meant for."""
    return (
        invoice.currency == deposit.currency
        and invoice.status in st.UNPAID_STATUSES
        and not invoice.frozen
        and not _too_early(deposit, invoice, rules)
        and deposit.ts <= invoice.monitor_until
        and book.received(invoice.id) < book.lower_bound(invoice)
    )


def _match_inexact(deposit: DepositFacts, book: _Book, rules: MatchRules) -> Decision:
    owner = _address_owner(deposit, book.by_address.get(deposit.to_address, []))
    if owner is not None:
        if _eligible(deposit, owner, book, rules):
            return _attach_to_owner(deposit, owner, book, rules)
        # the only candidate cannot take it: never fall back to an invoice on another address
        return Unmatched(deposit.dep_id, "no_candidate", _closest_hint(deposit, book) or owner.id)
    candidates: list[InvoiceFacts] = []
    for inv in book.near(deposit, rules):
        if _eligible(deposit, inv, book, rules) and _within_window(deposit, inv, book, rules):
            candidates.append(inv)
            if len(candidates) == 2:
                break  # ambiguous: which others also fit does not change the outcome
    if len(candidates) == 1:
        invoice = candidates[0]
        total = book.received(invoice.id) + deposit.amount
        kind = st.KIND_OVER if total > invoice.amount else st.KIND_TOLERANCE
        book.attach(deposit, invoice.id, kind)
        return Attach(deposit.dep_id, invoice.id, kind, is_mismatch(deposit, invoice))
    if candidates:
        return Unmatched(deposit.dep_id, "ambiguous")
    return Unmatched(deposit.dep_id, "no_candidate", _closest_hint(deposit, book))


def _address_owner(deposit: DepositFacts, invoices: Iterable[InvoiceFacts]) -> InvoiceFacts | None:
    """The one invoice on the deposit's address that may still receive money, if there is
    exactly one: then it is the only candidate for an inexact deposit (DESIGN section 5).

    An expired invoice still inside its monitoring window counts as well as the open ones: when
    its address has been handed to a new invoice, a late payment to it is ambiguous, never the
    new invoice's by default.
    """
    if deposit.type == "3" or not deposit.to_address:
        return None
    owners = [
        inv
        for inv in invoices
        if inv.address == deposit.to_address
        and inv.currency == deposit.currency
        and inv.status in st.UNPAID_STATUSES
        and (inv.status != st.EXPIRED or deposit.ts <= inv.monitor_until)
    ]
    return owners[0] if len(owners) == 1 else None


def _within_window(
    deposit: DepositFacts, invoice: InvoiceFacts, book: _Book, rules: MatchRules
) -> bool:
    total = book.received(invoice.id) + deposit.amount
    return book.lower_bound(invoice) <= total <= rules.upper_window(invoice)


def _attach_to_owner(
    deposit: DepositFacts, invoice: InvoiceFacts, book: _Book, rules: MatchRules
) -> Decision:
    total = book.received(invoice.id) + deposit.amount
    if total > invoice.amount:
        kind = st.KIND_OVER
    elif total >= book.lower_bound(invoice):
        kind = st.KIND_TOLERANCE
    else:
        kind = st.KIND_PARTIAL
    book.attach(deposit, invoice.id, kind)
    return Attach(deposit.dep_id, invoice.id, kind, is_mismatch(deposit, invoice))


def _closest_hint(deposit: DepositFacts, book: _Book) -> str | None:
    """For the admin: the exact-amount invoice this deposit was too early or too late for."""
    if deposit.amount_units is None:
        return None
    reservation = book.snapshot.reservations.get((deposit.currency, deposit.amount_units))
    return reservation.invoice_id if reservation else None


def claim_candidates(
    deposit: DepositFacts, snapshot: Snapshot, rules: MatchRules
) -> list[InvoiceFacts]:
    """Every invoice the matcher would consider this deposit a candidate for: same currency,
    not created after it, within the monitoring window, and either within tolerance (the same
    window as inexact matching) or a partial payment to the invoice's own address."""
    book = _Book(snapshot, rules)
    owner = _address_owner(deposit, snapshot.invoices.values())
    if owner is not None and not _eligible(deposit, owner, book, rules):
        return []  # the only candidate of its address cannot take it; no other invoice may
    found: list[InvoiceFacts] = []
    for invoice in snapshot.invoices.values():
        if not _eligible(deposit, invoice, book, rules):
            continue
        if invoice is owner or _within_window(deposit, invoice, book, rules):
            found.append(invoice)
    return found
