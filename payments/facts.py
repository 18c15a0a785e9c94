"""Plain, immutable views of invoices, reservations and deposits that the pure decision
functions (``matching``, ``settlement``) work on. Loaded from the database by ``snapshot``
and ``record``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from payments.money import from_units
from payments.states import parse_exceptions


@dataclass(frozen=True)
class InvoiceFacts:
    id: str
    customer_id: int
    plan_id: str
    days: int
    price_usd: Decimal
    currency: str
    network: str
    chain: str
    address: str
    tag: str | None
    rate: Decimal
    scale: int
    step: Decimal
    base_units: int
    amount_units: int
    topup_units: int | None
    status: str
    exceptions: frozenset[str]
    frozen: bool
    created_at: int
    expires_at: int
    monitor_until: int
    paid_at: int | None
    version: int = 0  # bumped by every write: a decision acts only on the version it saw

    @property
    def amount(self) -> Decimal:
        """What the customer was asked to pay (base + unique offset)."""
        return from_units(self.amount_units, self.scale)

    @property
    def base(self) -> Decimal:
        return from_units(self.base_units, self.scale)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> InvoiceFacts:
        return cls(
            id=row["id"],
            customer_id=int(row["customer_id"]),
            plan_id=row["plan_id"],
            days=int(row["days"]),
            price_usd=Decimal(row["price_usd"]),
            currency=row["currency"],
            network=row["network"],
            chain=row["chain"],
            address=row["address"],
            tag=row["tag"],
            rate=Decimal(row["rate"]),
            scale=int(row["scale"]),
            step=Decimal(row["step"]),
            base_units=int(row["base_units"]),
            amount_units=int(row["amount_units"]),
            topup_units=None if row["topup_units"] is None else int(row["topup_units"]),
            status=row["status"],
            exceptions=parse_exceptions(row["exceptions"]),
            frozen=bool(row["frozen"]),
            created_at=int(row["created_at"]),
            expires_at=int(row["expires_at"]),
            monitor_until=int(row["monitor_until"]),
            paid_at=None if row["paid_at"] is None else int(row["paid_at"]),
            version=int(row.get("version") or 0),
        )


@dataclass(frozen=True)
class ReservationFacts:
    currency: str
    amount_units: int
    invoice_id: str
    kind: str  # "main" | "topup"
    held_until: int


@dataclass(frozen=True)
class DepositFacts:
    dep_id: str
    currency: str
    chain: str
    amount: Decimal
    amount_text: str  # OKX's canonical string, as stored
    amount_units: int | None  # None: not exactly representable at the scale
    to_address: str
    type: str  # "3" internal transfer, "4" on-chain
    state: str
    ts: int
    tx_id: str
    disposition: str
    invoice_id: str | None
    match_kind: str | None
    matched_amount: Decimal | None
    matched_state: str | None
    candidate_invoice_id: str | None = None  # unmatched: the invoice it probably was for
    # unmatched: why (payments.deposits.matching's reasons); attached: "mismatch" or ""
    note: str = ""
    vanished: bool = False  # OKX no longer returns the record (see payments.deposits.poll)

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.ts, self.dep_id)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> DepositFacts:
        matched = row["matched_amount"]
        return cls(
            dep_id=row["dep_id"],
            currency=row["currency"],
            chain=row["chain"],
            amount=Decimal(row["amount"]),
            amount_text=row["amount"],
            amount_units=None if row["amount_units"] is None else int(row["amount_units"]),
            to_address=row["to_address"],
            type=row["type"],
            state=row["state"],
            ts=int(row["ts"]),
            tx_id=row["tx_id"],
            disposition=row["disposition"],
            invoice_id=row["invoice_id"],
            match_kind=row["match_kind"],
            matched_amount=None if matched is None else Decimal(matched),
            matched_state=row["matched_state"],
            candidate_invoice_id=row.get("candidate_invoice_id"),
            note=row.get("note") or "",
            vanished=row.get("vanished_at") is not None,
        )
