"""Small builders for the pure decision functions (``matching``, ``settlement``).

Defaults describe one USDT-TRC20 invoice for a $29 plan at rate 1 (scale 8, step 0.0001), created
at ``T``, living 120 minutes and monitored for 24 hours after that, and deposits of 29.0037 made
ten minutes after ``T`` to the shared pool address ``POOL``. Amounts are given as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from payments.clock import HOUR_MS, MINUTE_MS
from payments.deposits.matching import MatchRules, Snapshot
from payments.facts import DepositFacts, InvoiceFacts, ReservationFacts
from payments.money import round_up, to_units
from payments.states import StatePolicy

T = 1_790_000_000_000  # a fixed "now" in ms (OKX time)
TTL_MS = 120 * MINUTE_MS
MONITOR_MS = 24 * HOUR_MS
POOL = "TPoolAddress0000000000000000000001"
CHAIN = "USDT-TRC20"


def units(amount: str, scale: int = 8) -> int:
    value = to_units(Decimal(amount), scale)
    assert value is not None, f"{amount} is not exact at scale {scale}"
    return value


def invoice(
    id: str = "A",
    amount: str = "29.0037",
    *,
    currency: str = "USDT",
    chain: str = CHAIN,
    address: str = POOL,
    status: str = "pending",
    price: str = "29",
    rate: str = "1",
    base: str | None = None,
    scale: int = 8,
    step: str = "0.0001",
    created_at: int = T,
    expires_at: int | None = None,
    monitor_until: int | None = None,
    topup: str | None = None,
    exceptions: Iterable[str] = (),
    frozen: bool = False,
    customer_id: int = 1,
) -> InvoiceFacts:
    expires = created_at + TTL_MS if expires_at is None else expires_at
    base_amount = round_up(Decimal(price) / Decimal(rate), Decimal(step)) if base is None else base
    return InvoiceFacts(
        id=id,
        customer_id=customer_id,
        plan_id="pro",
        days=30,
        price_usd=Decimal(price),
        currency=currency,
        network=chain.split("-", 1)[-1],
        chain=chain,
        address=address,
        tag=None,
        rate=Decimal(rate),
        scale=scale,
        step=Decimal(step),
        base_units=units(str(base_amount), scale),
        amount_units=units(amount, scale),
        topup_units=None if topup is None else units(topup, scale),
        status=status,
        exceptions=frozenset(exceptions),
        frozen=frozen,
        created_at=created_at,
        expires_at=expires,
        monitor_until=expires + MONITOR_MS if monitor_until is None else monitor_until,
        paid_at=None,
    )


def deposit(
    dep_id: str = "d1",
    amount: str = "29.0037",
    *,
    currency: str = "USDT",
    chain: str = CHAIN,
    to: str = POOL,
    type: str = "4",
    state: str = "2",
    ts: int = T + 10 * MINUTE_MS,
    scale: int = 8,
    tx_id: str | None = None,
    disposition: str = "new",
    invoice_id: str | None = None,
    kind: str | None = None,
    matched_amount: str | None = None,
    matched_state: str | None = None,
) -> DepositFacts:
    """A deposit as the poller stores it; ``amount_units`` is None when not exact at ``scale``."""
    return DepositFacts(
        dep_id=dep_id,
        currency=currency,
        chain=chain,
        amount=Decimal(amount),
        amount_text=amount,
        amount_units=to_units(Decimal(amount), scale),
        to_address=to,
        type=type,
        state=state,
        ts=ts,
        tx_id=f"0xtx{dep_id}" if tx_id is None else tx_id,
        disposition=disposition,
        invoice_id=invoice_id,
        match_kind=kind,
        matched_amount=None if matched_amount is None else Decimal(matched_amount),
        matched_state=matched_state,
    )


def as_attached(
    dep: DepositFacts, invoice_id: str, kind: str = "exact", *, matched_state: str | None = None
) -> DepositFacts:
    """``dep`` as an earlier poll left it: attached, with the amount and state it was matched at."""
    return replace(
        dep,
        disposition="attached",
        invoice_id=invoice_id,
        match_kind=kind,
        matched_amount=dep.amount,
        matched_state=dep.state if matched_state is None else matched_state,
    )


def reservation(
    inv: InvoiceFacts,
    amount: str | None = None,
    *,
    kind: str = "main",
    held_until: int | None = None,
) -> ReservationFacts:
    return ReservationFacts(
        currency=inv.currency,
        amount_units=inv.amount_units if amount is None else units(amount, inv.scale),
        invoice_id=inv.id,
        kind=kind,
        held_until=inv.monitor_until if held_until is None else held_until,
    )


def snapshot(
    *invoices: InvoiceFacts,
    extra: Sequence[ReservationFacts] = (),
    attached: Mapping[str, Sequence[DepositFacts]] | None = None,
    main: bool = True,
) -> Snapshot:
    """Every invoice with its main reservation (unless ``main=False``) plus ``extra`` ones."""
    held = [reservation(inv) for inv in invoices] if main else []
    return Snapshot(
        invoices={inv.id: inv for inv in invoices},
        reservations={(r.currency, r.amount_units): r for r in [*held, *extra]},
        attached={k: list(v) for k, v in (attached or {}).items()},
    )


def rules(
    *,
    tolerance: str = "2",
    settle_on_state: int = 2,
    allowances: Mapping[str, str] | None = None,
) -> MatchRules:
    return MatchRules(
        tolerance_percent=Decimal(tolerance),
        pre_invoice_slack_ms=2 * MINUTE_MS,
        late_grace_ms=5 * MINUTE_MS,
        states=StatePolicy.from_setting(settle_on_state),
        allowances={k: Decimal(v) for k, v in (allowances or {}).items()},
    )


RULES = rules()
