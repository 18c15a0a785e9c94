"""Settings of the payments core (plain data; the bot builds it from the environment)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS
from payments.states import StatePolicy

# longer than any retry window (messages and webhooks give up after 3 days) and the monitoring
MIN_RETENTION_DAYS = 7


@dataclass(frozen=True)
class PaymentSettings:
    invoice_ttl_minutes: int = 120  # INVOICE_TTL_MINUTES
    monitor_hours: int = 24  # PAYMENT_MONITOR_HOURS
    tolerance_percent: Decimal = Decimal(2)  # PAYMENT_TOLERANCE_PERCENT
    offset_cap_percent: Decimal = Decimal("0.5")  # AMOUNT_OFFSET_CAP_PERCENT
    offset_cap_max_percent: Decimal = Decimal("1.5")  # AMOUNT_OFFSET_CAP_MAX_PERCENT
    max_open_invoices: int = 3  # MAX_OPEN_INVOICES
    # unique amounts one customer's invoices may hold at once, over each amount's whole hold
    max_held_amounts: int = 20  # MAX_HELD_AMOUNTS
    # the share of a coin's amounts (per price) customers who never paid may hold together
    unpaid_amount_budget_percent: Decimal = Decimal(50)  # UNPAID_AMOUNT_BUDGET_PERCENT
    invoices_per_hour: int = 10  # rate limit on creating invoices, per customer
    claims_per_hour: int = (
        10  # rate limit on payment claims (tx hash / withdrawal ID), per customer
    )
    settle_on_state: int = 2  # SETTLE_ON_STATE
    reuse_min_left_minutes: int = 30  # an open invoice with this much left is handed back
    late_grace_minutes: int = 5  # a deposit this long after expiry is not yet "late"
    pre_invoice_slack_ms: int = 2 * MINUTE_MS  # deposits older than invoice - this never match
    amount_quarantine_ms: int = DAY_MS  # a released amount is not reused for this long
    # a pool address is not handed out as anyone's own for this long after its invoice closed
    # (or its hold ended): a payer's second, fee-reduced payment must not become a stranger's
    address_quarantine_ms: int = DAY_MS
    poll_overlap_ms: int = HOUR_MS  # each poll re-reads this far behind the newest deposit seen
    sweep_interval_ms: int = HOUR_MS  # a sweep re-reads the whole monitoring window this often
    refresh_batch: int = 20  # unfinished older deposits re-read by depId per poll
    clock_alert_ms: int = 30_000  # tell admins when OKX's clock and ours differ by more
    # settled history (sent messages, delivered webhooks, ...) kept this long; 0: kept forever
    retention_days: int = 90  # RETENTION_DAYS
    # chat access lasts this long past the end of a subscription
    grace_days: int = 0  # GRACE_DAYS
    states: StatePolicy = field(default_factory=lambda: StatePolicy.from_setting(2))

    def __post_init__(self) -> None:
        if self.invoice_ttl_minutes < 5:
            raise ValueError("INVOICE_TTL_MINUTES must be at least 5")
        if self.monitor_hours < 1:
            raise ValueError("PAYMENT_MONITOR_HOURS must be at least 1")
        if not Decimal(0) <= self.tolerance_percent < Decimal(50):
            raise ValueError("PAYMENT_TOLERANCE_PERCENT must be from 0 to 50")
        if not Decimal(0) < self.offset_cap_percent <= Decimal(10):
            raise ValueError("AMOUNT_OFFSET_CAP_PERCENT must be above 0 and at most 10")
        if not self.offset_cap_percent <= self.offset_cap_max_percent <= Decimal(10):
            raise ValueError(
                "AMOUNT_OFFSET_CAP_MAX_PERCENT must be from AMOUNT_OFFSET_CAP_PERCENT to 10"
            )
        if self.max_open_invoices < 1:
            raise ValueError("MAX_OPEN_INVOICES must be at least 1")
        if self.max_held_amounts < self.max_open_invoices:
            raise ValueError("MAX_HELD_AMOUNTS must be at least MAX_OPEN_INVOICES")
        if not Decimal(0) < self.unpaid_amount_budget_percent <= Decimal(100):
            raise ValueError("UNPAID_AMOUNT_BUDGET_PERCENT must be above 0 and at most 100")
        if self.retention_days != 0 and not MIN_RETENTION_DAYS <= self.retention_days <= 3650:
            raise ValueError(
                f"RETENTION_DAYS must be 0 (keep everything) or from {MIN_RETENTION_DAYS} to 3650"
            )
        if self.settle_on_state not in (1, 2):
            raise ValueError("SETTLE_ON_STATE must be 1 or 2")
        object.__setattr__(self, "states", StatePolicy.from_setting(self.settle_on_state))

    @property
    def ttl_ms(self) -> int:
        return self.invoice_ttl_minutes * MINUTE_MS

    @property
    def monitor_ms(self) -> int:
        return self.monitor_hours * HOUR_MS

    @property
    def late_grace_ms(self) -> int:
        return self.late_grace_minutes * MINUTE_MS
