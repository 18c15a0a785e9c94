"""Pure decisions: which invoice, if any, each deposit belongs to (docs/architecture.md, "Matching
deposits").

No I/O here. ``decide`` loads a :class:`Snapshot` (``snapshot``), calls :func:`match_deposits`,
and ``record`` writes the decisions in one transaction. The rules, in order:

* A deposit in a currency or on a chain the catalogue does not sell (dust, airdrops, anything
  anyone sends to a public address) is unmatched at once, before any price is asked, and never
  touches another deposit's decision.
* Deposits are decided in (ts, depId) order, exact matches first, then the inexact ones, so the
  outcome never depends on the order rows arrived.
* Exact: same currency and same amount (in units) as a reservation. Another chain of the currency
  or another of our addresses still matches, recorded as a mismatch. A deposit created before the
  invoice (minus a slack) never matches it; one after the reservation's hold goes to an admin.
  Paid invoices take a second payment as a duplicate, cancelled/rejected ones as after-close:
  both attach for an admin and never credit anybody.
* Inexact: a deposit that could be meant for an invoice that cannot take it by itself is for an
  admin, never a stranger's payment by tolerance: inside that invoice's monitoring window, a
  second or fee-reduced payment of an invoice that has already received its money at that
  address, or a payment for a cancelled or rejected invoice (at its address; by internal
  transfer, which has none, whatever its address).
* Inexact: when the deposit's address belongs to exactly one open invoice, that invoice takes
  it (over, within tolerance, or partial), unless another unpaid invoice's amount it is too (its
  payer may have used the wrong address of ours): then both are candidates for a claim.
  Otherwise the candidates are the unpaid
  invoices of the currency that have received nothing yet, within tolerance (below) or the same
  tolerance above; exactly one candidate settles, anything else goes to the unmatched queue (an
  ambiguous deposit keeps the candidates it had, so a claim can later pick among exactly them).
  A part-paid invoice takes more inexact money only on an address of its own, or by its exact
  top-up amount.
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
from payments.money import DEFAULT_SCALE, to_units, to_units_ceil, to_units_floor
from payments.states import StatePolicy


@dataclass(frozen=True)
class MatchRules:
    tolerance_percent: Decimal
    pre_invoice_slack_ms: int
    late_grace_ms: int
    states: StatePolicy
    allowances: Mapping[str, Decimal] = field(default_factory=dict)  # chain -> fixed allowance
    # (currency, OKX chain) pairs the catalogue sells; None: every pair (pure tests)
    sold: frozenset[tuple[str, str]] | None = None
    scales: Mapping[str, int] = field(default_factory=dict)  # currency -> units scale

    def allowance(self, chain: str) -> Decimal:
        return self.allowances.get(chain, Decimal(0))

    def sells(self, currency: str, chain: str) -> bool:
        return self.sold is None or (currency, chain) in self.sold

    def scale(self, currency: str) -> int:
        return self.scales.get(currency, DEFAULT_SCALE)

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


# why a deposit went to the unmatched queue (kept in ``deposits.note``)
NOT_SOLD = "not_sold"  # a currency or chain the catalogue does not sell
AFTER_WINDOW = "after_window"  # its exact amount's reservation had ended
ADDRESS_OWNER = "address_owner"  # the one invoice on its address cannot take it
POSSIBLE_DUPLICATE = "possible_duplicate"  # maybe a second payment of a paid invoice
MAYBE_CLOSED = "maybe_closed_invoice"  # maybe for a cancelled, rejected or lapsed invoice
AMBIGUOUS = "ambiguous"  # several candidates: a claim or an admin picks
NO_CANDIDATE = "no_candidate"
DECISION_ERROR = "decision_error"  # the decision failed on this deposit (``decide``)
VANISHED = "vanished"  # OKX no longer returns the record (``poll`` marks it missing)
UNMATCHED_REASONS = frozenset(
    {
        NOT_SOLD,
        AFTER_WINDOW,
        ADDRESS_OWNER,
        POSSIBLE_DUPLICATE,
        MAYBE_CLOSED,
        AMBIGUOUS,
        NO_CANDIDATE,
        DECISION_ERROR,
        VANISHED,
    }
)
# An ambiguous deposit keeps at most this many of its candidates (a claim for an invoice that
# is not among them goes to an admin, which is safe whether or not it was a candidate).
CANDIDATES_KEPT = 100


@dataclass(frozen=True)
class Unmatched:
    dep_id: str
    reason: str  # one of UNMATCHED_REASONS
    candidate_invoice_id: str | None = None  # a hint for the admin
    candidates: tuple[str, ...] = ()  # ambiguous: the invoices it could have been for


@dataclass(frozen=True)
class Freeze:
    dep_id: str
    invoice_id: str
    reason: str  # amount_changed | state_reverted | vanished | decision_error


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
        """Invoices of the deposit's currency priced near its amount (a part-paid invoice's
        rest is not among them: it takes inexact money only on an address of its own)."""
        keys, invoices = self._by_currency.get(deposit.currency, ([], []))
        if not invoices:
            return
        low, high = base_range(deposit.amount, rules, invoices[0].scale)
        yield from invoices[bisect_left(keys, low) : bisect_right(keys, high)]

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
        self._received[invoice_id] = received(self.deposits_of(invoice_id))


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
        elif deposit.disposition == st.DEP_NEW and not rules.sells(deposit.currency, deposit.chain):
            decisions.append(Unmatched(deposit.dep_id, NOT_SOLD))
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
    if deposit.vanished:
        return Freeze(deposit.dep_id, deposit.invoice_id, VANISHED)
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
    if invoice is None or not decided_by_reservation(deposit, invoice, rules):
        return None  # too early, or rounded or truncated by a wallet: never an exact match
    if deposit.ts > reservation.held_until:
        return Unmatched(deposit.dep_id, AFTER_WINDOW, invoice.id)
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


def decided_by_reservation(
    deposit: DepositFacts, holder: InvoiceFacts | None, rules: MatchRules
) -> bool:
    """Whether the exact pass decides this deposit whatever else the snapshot holds: it has
    the unique amount of ``holder`` (the invoice whose reservation it is), was not made before
    it, and has all the step's decimals. Otherwise the inexact rules decide it."""
    return (
        deposit.amount_units is not None
        and holder is not None
        and not _too_early(deposit, holder, rules)
        and not _fewer_decimals_than_step(deposit.amount_units, holder)
    )


def _fewer_decimals_than_step(amount_units: int, invoice: InvoiceFacts) -> bool:
    """Ends in 0 at the invoice's step precision (29.00, 29.003 for a 0.0001 step): no such
    amount is ever issued, and no such deposit ever counts as an exact match."""
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
    other = _other_payee(deposit, book, rules)
    owner = _address_owner(deposit, book.by_address.get(deposit.to_address, []))
    if owner is not None:
        if other is not None:
            return _for_an_admin(deposit, other, book)
        if _eligible(deposit, owner, book, rules):
            clean = _within_window(deposit, owner, book, rules)  # neither partial nor over
            partial = book.received(owner.id) + deposit.amount < book.lower_bound(owner)
            earlier = None if clean else _earlier_on_address(deposit, owner, partial, book, rules)
            if earlier is not None:  # a part of its money, or of the owner's: an admin's call
                return _for_an_admin(deposit, earlier, book)
            # an invoice elsewhere whose amount this is: its payer may have sent it to the
            # wrong address of ours (an old invoice's). An unpaid one is a candidate as much as
            # the owner (a claim picks); a cancelled or rejected one leaves it to an admin.
            closed = _closed_for(deposit, book, rules)
            if closed is not None:
                return _for_an_admin(deposit, closed, book)
            rivals = [i for i in _candidates(deposit, book, rules) if i.id != owner.id]
            if rivals:
                found = (owner, *rivals)[:CANDIDATES_KEPT]
                return Unmatched(deposit.dep_id, AMBIGUOUS, candidates=tuple(i.id for i in found))
            return _attach_to_owner(deposit, owner, book, rules)
        # the only candidate cannot take it: never fall back to an invoice on another address
        hint = _closest_hint(deposit, book) or owner.id
        return Unmatched(deposit.dep_id, ADDRESS_OWNER, hint)
    candidates = _candidates(deposit, book, rules)
    if other is not None:
        return _for_an_admin(deposit, other, book)
    if len(candidates) == 1:
        invoice = candidates[0]
        total = book.received(invoice.id) + deposit.amount
        kind = st.KIND_OVER if total > invoice.amount else st.KIND_TOLERANCE
        book.attach(deposit, invoice.id, kind)
        return Attach(deposit.dep_id, invoice.id, kind, is_mismatch(deposit, invoice))
    if candidates:
        return Unmatched(deposit.dep_id, AMBIGUOUS, candidates=tuple(i.id for i in candidates))
    return Unmatched(deposit.dep_id, NO_CANDIDATE, _closest_hint(deposit, book))


def _candidates(deposit: DepositFacts, book: _Book, rules: MatchRules) -> list[InvoiceFacts]:
    """The unpaid invoices of the coin that have received nothing yet and whose window holds
    the amount (at most CANDIDATES_KEPT: a claim for one beyond them goes to an admin)."""
    found: list[InvoiceFacts] = []
    for inv in book.near(deposit, rules):
        if (
            _eligible(deposit, inv, book, rules)
            and book.received(inv.id) == 0  # a part-paid invoice: only on its own address
            and _within_window(deposit, inv, book, rules)
        ):
            found.append(inv)
            if len(found) == CANDIDATES_KEPT:
                break
    return found


def _for_an_admin(deposit: DepositFacts, other: InvoiceFacts, book: _Book) -> Unmatched:
    if other.status == st.PAID or book.received(other.id) > 0:
        return Unmatched(deposit.dep_id, POSSIBLE_DUPLICATE, other.id)
    return Unmatched(deposit.dep_id, MAYBE_CLOSED, other.id)


def _other_payee(deposit: DepositFacts, book: _Book, rules: MatchRules) -> InvoiceFacts | None:
    """An invoice this deposit could be meant for, inside its monitoring window, that cannot
    take it by itself: it has its money already (a second or fee-reduced payment), or it is
    cancelled or rejected. Such money is nobody else's by tolerance. On-chain, the invoices
    that were given the deposit's address; by internal transfer (no address), the cancelled and
    rejected ones."""
    on_chain = deposit.type != "3" and bool(deposit.to_address)
    if on_chain:
        suspects: Iterable[InvoiceFacts] = book.by_address.get(deposit.to_address, [])
    else:
        suspects = (i for i in book.near(deposit, rules) if i.status in _CLOSED_UNPAID)
    for invoice in suspects:
        if (
            invoice.currency != deposit.currency
            or _too_early(deposit, invoice, rules)
            or not book.lower_bound(invoice) <= deposit.amount <= rules.upper_window(invoice)
        ):
            continue
        if deposit.ts > invoice.monitor_until:
            continue
        if (
            invoice.status not in st.UNPAID_STATUSES
            or invoice.frozen
            or book.received(invoice.id) >= book.lower_bound(invoice)
        ):
            return invoice
    return None


def _earlier_on_address(
    deposit: DepositFacts, owner: InvoiceFacts, partial: bool, book: _Book, rules: MatchRules
) -> InvoiceFacts | None:
    """Another invoice given this address, inside its monitoring window, that this amount (a
    part of the owner's, or more than it) could be part of: a payer who cancelled, or was
    rejected, after paying part; for a partial amount also one topping up a paid invoice. Then
    the address's one open invoice is not the only invoice it may be for."""
    for invoice in book.by_address.get(deposit.to_address, []):
        if (
            invoice.id != owner.id
            and invoice.currency == deposit.currency
            and (partial or invoice.status in _CLOSED_UNPAID)
            and not _too_early(deposit, invoice, rules)
            and deposit.ts <= invoice.monitor_until
            and deposit.amount < invoice.amount
        ):
            return invoice
    return None


def _closed_for(deposit: DepositFacts, book: _Book, rules: MatchRules) -> InvoiceFacts | None:
    """A cancelled or rejected invoice, inside its monitoring window, whose amount this is."""
    for invoice in book.near(deposit, rules):
        if (
            invoice.status in _CLOSED_UNPAID
            and invoice.currency == deposit.currency
            and not _too_early(deposit, invoice, rules)
            and deposit.ts <= invoice.monitor_until
            and book.lower_bound(invoice) <= deposit.amount <= rules.upper_window(invoice)
        ):
            return invoice
    return None


_CLOSED_UNPAID = frozenset({st.CANCELLED, st.INVALID})


def _address_owner(deposit: DepositFacts, invoices: Iterable[InvoiceFacts]) -> InvoiceFacts | None:
    """The one invoice on the deposit's address that may still receive money, if there is
    exactly one: then it is the only candidate for an inexact deposit.

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
