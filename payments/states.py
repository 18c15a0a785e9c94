"""Named status groups: invoice statuses, exceptions, and OKX deposit states as explicit sets.

Never ``int(state) >= n``: OKX's deposit states are not ordered (12 is "frozen", 17 "pending
travel-rule check"), so every state is looked up in an explicit set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# --- invoices --------------------------------------------------------------------------------

PENDING = "pending"
PROCESSING = "processing"
PAID = "paid"
EXPIRED = "expired"
CANCELLED = "cancelled"
INVALID = "invalid"

ALL_STATUSES = frozenset({PENDING, PROCESSING, PAID, EXPIRED, CANCELLED, INVALID})
OPEN_STATUSES = frozenset({PENDING, PROCESSING})  # the customer may still pay; counts for caps
UNPAID_STATUSES = frozenset({PENDING, PROCESSING, EXPIRED})  # may still settle (expired: in window)
CLOSED_STATUSES = frozenset({PAID, EXPIRED, CANCELLED, INVALID})

# exceptions (a set per invoice, as BTCPay does)
PAID_PARTIAL = "paid_partial"
PAID_OVER = "paid_over"
PAID_LATE = "paid_late"
DUPLICATE = "duplicate"
ON_HOLD = "on_hold"
MISMATCH = "mismatch"
CHANGED = "changed"
MARKED = "marked"
ALL_EXCEPTIONS = frozenset(
    {PAID_PARTIAL, PAID_OVER, PAID_LATE, DUPLICATE, ON_HOLD, MISMATCH, CHANGED, MARKED}
)


def parse_exceptions(text: str) -> frozenset[str]:
    return frozenset(part for part in text.split(",") if part)


def format_exceptions(values: frozenset[str] | set[str]) -> str:
    return ",".join(sorted(values))


# --- deposits (what we decided about a deposit) ----------------------------------------------

DEP_NEW = "new"  # not decided yet
DEP_ATTACHED = "attached"  # belongs to one invoice
DEP_UNMATCHED = "unmatched"  # in the admin queue (final except for a claim or an admin)
DEP_REFUNDED = "refunded"  # refunded by hand; blocked

# how a deposit came to be attached
KIND_EXACT = "exact"  # the unique amount of the invoice
KIND_TOPUP = "topup"  # the unique top-up amount issued after a partial payment
KIND_TOLERANCE = "tolerance"  # short by less than the tolerance, the only candidate
KIND_OVER = "over"  # more than asked, the only candidate
KIND_PARTIAL = "partial"  # below tolerance to an address of its own
KIND_DUPLICATE = "duplicate"  # a second payment of a paid invoice: for an admin, never credits
KIND_AFTER_CLOSE = "after_close"  # paid to a cancelled / rejected invoice: for an admin
KIND_CLAIM = "claim"  # attached by the customer's claim (tx hash / withdrawal id)
KIND_ADMIN = "admin"  # attached by an admin (/confirm, /reassign)
COUNTED_KINDS = frozenset(
    {KIND_EXACT, KIND_TOPUP, KIND_TOLERANCE, KIND_OVER, KIND_PARTIAL, KIND_CLAIM, KIND_ADMIN}
)

# --- OKX deposit states ----------------------------------------------------------------------

DepositClass = Literal["settled", "waiting", "on_hold"]
ON_HOLD_STATES = frozenset({"11", "12", "13", "14"})  # blacklist, frozen, interception, KYC


@dataclass(frozen=True)
class StatePolicy:
    """Which OKX deposit states settle an invoice, which wait, which hold it for an admin."""

    settled: frozenset[str]
    waiting: frozenset[str]
    on_hold: frozenset[str] = ON_HOLD_STATES

    @classmethod
    def from_setting(cls, settle_on_state: int) -> StatePolicy:
        """SETTLE_ON_STATE=2 (default): only "successful"; 1 also "credited, not withdrawable"."""
        if settle_on_state == 2:
            return cls(settled=frozenset({"2"}), waiting=frozenset({"0", "1", "8", "17"}))
        if settle_on_state == 1:
            return cls(settled=frozenset({"1", "2"}), waiting=frozenset({"0", "8", "17"}))
        raise ValueError("SETTLE_ON_STATE must be 1 or 2")

    def classify(self, state: str) -> DepositClass:
        """Any state we do not know is treated as on hold (and reported), never as settled."""
        if state in self.settled:
            return "settled"
        if state in self.waiting:
            return "waiting"
        return "on_hold"

    def is_known(self, state: str) -> bool:
        return state in self.settled or state in self.waiting or state in self.on_hold


FINAL_DEPOSIT_STATES = frozenset({"2"})  # nothing changes after "successful"
