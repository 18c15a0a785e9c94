"""Deposits: the minute cycle that reads OKX, decides which invoice each deposit pays, writes
the decision, takes claims and expires what ran out."""

from payments.deposits import claims
from payments.deposits.claims import ClaimResult, ClaimService
from payments.deposits.cycle import CycleReport, PaymentCycle

__all__ = [
    "ClaimResult",
    "ClaimService",
    "CycleReport",
    "PaymentCycle",
    "claims",  # a claim's outcomes and reasons (ATTACHED, REJECTED, BAD_REFERENCE, ...)
]
