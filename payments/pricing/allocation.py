"""Reservations that make every payment identifiable (docs/architecture.md, 1).

Amount: an invoice pays ``base + k * step`` where no reservation of the same currency holds that
amount. The offset is only ever added and capped; no issued amount ends in 0 at step precision
(a payment rounded or truncated to fewer decimals cannot land exactly on another invoice).
A reservation is a row per (currency, amount) released only by time (``held_until``); a released
amount is reused only after a quarantine of 24 h, the one released longest ago first.

Address: a new invoice takes a pool address that no invoice holds when one exists, and otherwise
shares one (amount uniqueness is per currency regardless). An address is held through its
invoice's life (through its monitoring window once money arrived), then quarantined before it
is anybody else's own.

Every function here takes an ``AsyncConnection`` and never commits: the caller owns the
transaction. Both databases are race-free without aborting the transaction on a conflict: a
never-used amount is taken by INSERT ... ON CONFLICT DO NOTHING, a released one (or an address)
by a compare-and-set UPDATE, and the row count says who won.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.clock import DAY_MS
from payments.errors import NoFreeAmount
from payments.storage.db import insert_ignore
from payments.storage.schema import pool_addresses, reservations

KINDS = ("main", "topup")
DEFAULT_CAP_PERCENT = Decimal("0.5")


# --- pure: which amounts exist -----------------------------------------------------------------


def _check_steps(base_units: int, step_units: int, cap_units: int) -> None:
    if step_units <= 0:
        raise ValueError("step_units must be positive")
    if base_units <= 0 or base_units % step_units:
        raise ValueError(f"base {base_units} must be a positive multiple of the step {step_units}")
    if cap_units < 0:
        raise ValueError("cap_units must not be negative")


def ends_in_zero(amount_units: int, step_units: int) -> bool:
    """True when the amount's last digit at step precision is 0 (29.0030, 29.0000)."""
    return (amount_units // step_units) % 10 == 0


def iter_candidates(base_units: int, step_units: int, cap_units: int) -> Iterator[int]:
    """Lazily, ``base + k * step`` for ``0 <= k * step <= cap`` without amounts ending in 0."""
    _check_steps(base_units, step_units, cap_units)
    for k in range(cap_units // step_units + 1):
        amount = base_units + k * step_units
        if not ends_in_zero(amount, step_units):
            yield amount


def amount_candidates(base_units: int, step_units: int, cap_units: int) -> list[int]:
    """``base + k * step`` for ``0 <= k * step <= cap``, without amounts ending in 0, ascending."""
    return list(iter_candidates(base_units, step_units, cap_units))


def is_candidate(amount_units: int, base_units: int, step_units: int, cap_units: int) -> bool:
    """Whether ``amount_candidates(base, step, cap)`` contains the amount (without listing it)."""
    offset = amount_units - base_units
    return (
        0 <= offset <= cap_units
        and offset % step_units == 0
        and not ends_in_zero(amount_units, step_units)
    )


def cap_units_for(base_units: int, cap_percent: Decimal, step_units: int) -> int:
    """The largest offset allowed: ``base * cap_percent / 100`` floored to whole steps."""
    if step_units <= 0:
        raise ValueError("step_units must be positive")
    if not cap_percent.is_finite() or cap_percent < 0:
        raise ValueError("cap_percent must not be negative")
    with localcontext() as ctx:
        ctx.prec = 50
        raw = int((Decimal(base_units) * cap_percent / 100).to_integral_value(ROUND_FLOOR))
    return raw - raw % step_units


def capacity(base_units: int, step_units: int, cap_units: int) -> int:
    """How many invoices of one (currency, base) can hold an amount at once."""
    _check_steps(base_units, step_units, cap_units)
    first = base_units // step_units
    last = first + cap_units // step_units
    zeros = last // 10 - (first - 1) // 10  # multiples of 10 in [first, last]
    return last - first + 1 - zeros


# --- reservations ------------------------------------------------------------------------------


def reusable(held_until: int, now_ms: int, quarantine_ms: int) -> bool:
    """Whether a reserved amount may be taken again: released at least ``quarantine_ms`` ago."""
    return held_until <= now_ms - quarantine_ms


async def _held(
    conn: AsyncConnection, currency: str, base_units: int, cap_units: int
) -> dict[int, tuple[int, str]]:
    """amount -> (held_until, invoice_id) of every reservation row in ``[base, base + cap]``."""
    rows = await conn.execute(
        select(
            reservations.c.amount_units, reservations.c.held_until, reservations.c.invoice_id
        ).where(
            reservations.c.currency == currency,
            reservations.c.amount_units.between(base_units, base_units + cap_units),
        )
    )
    return {int(amount): (int(until), str(holder)) for amount, until, holder in rows.all()}


async def free_amounts(
    conn: AsyncConnection,
    *,
    currency: str,
    base_units: int,
    step_units: int,
    cap_units: int,
    now_ms: int,
    quarantine_ms: int = DAY_MS,
) -> int:
    """How many amounts :func:`reserve_amount` could still hand out now for this range: the
    :func:`capacity` minus the candidates that are held or released less than the quarantine
    ago (the same rows and the same rule the allocator reads)."""
    held = await _held(conn, currency, base_units, cap_units)
    blocked = sum(
        1
        for amount, (until, _holder) in held.items()
        if not reusable(until, now_ms, quarantine_ms)
        and is_candidate(amount, base_units, step_units, cap_units)
    )
    return capacity(base_units, step_units, cap_units) - blocked


async def reserve_amount(
    conn: AsyncConnection,
    *,
    currency: str,
    base_units: int,
    step_units: int,
    cap_units: int,
    invoice_id: str,
    kind: str,
    address: str | None,
    now_ms: int,
    held_until: int,
    quarantine_ms: int = DAY_MS,
) -> int:
    """Reserve a unique amount in ``[base, base + cap]`` for ``invoice_id``; returns its units.

    Free: no row yet, or released (``held_until``) at least ``quarantine_ms`` ago. Never-used
    amounts come first (smallest offset first), then the one released longest ago. Raises
    NoFreeAmount when every candidate is held: busy, try again in a few minutes.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if held_until <= now_ms:
        raise ValueError("held_until must be in the future")
    _check_steps(base_units, step_units, cap_units)
    held = await _held(conn, currency, base_units, cap_units)

    for amount in iter_candidates(base_units, step_units, cap_units):
        if amount in held:
            continue
        inserted = await insert_ignore(
            conn,
            reservations,
            {
                "currency": currency,
                "amount_units": amount,
                "invoice_id": invoice_id,
                "kind": kind,
                "address": address,
                "taken_at": now_ms,
                "held_until": held_until,
            },
            ["currency", "amount_units"],
        )
        if inserted == 1:
            return amount

    released = sorted(
        (until, amount, holder)
        for amount, (until, holder) in held.items()
        if reusable(until, now_ms, quarantine_ms)
        and is_candidate(amount, base_units, step_units, cap_units)
    )
    for old_until, amount, old_holder in released:
        result = await conn.execute(
            update(reservations)
            .where(
                reservations.c.currency == currency,
                reservations.c.amount_units == amount,
                reservations.c.held_until == old_until,
                reservations.c.invoice_id == old_holder,
            )
            .values(
                invoice_id=invoice_id,
                kind=kind,
                address=address,
                taken_at=now_ms,
                held_until=held_until,
            )
        )
        if result.rowcount == 1:
            return amount
    # every candidate is held or quarantined: say when the first of them is free again
    free_again = [
        until + quarantine_ms
        for amount, (until, _holder) in held.items()
        if is_candidate(amount, base_units, step_units, cap_units)
    ]
    retry = max(1, min(free_again) - now_ms) if free_again else None
    raise NoFreeAmount("busy, try again in a few minutes", retry_after_ms=retry)


async def extend_hold(conn: AsyncConnection, *, invoice_id: str, held_until: int) -> int:
    """Raise (never lower) ``held_until`` of every reservation of the invoice; returns the count."""
    result = await conn.execute(
        update(reservations)
        .where(reservations.c.invoice_id == invoice_id, reservations.c.held_until < held_until)
        .values(held_until=held_until)
    )
    return int(result.rowcount or 0)


# --- the address pool --------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressChoice:
    """``exclusive``: no other open invoice uses the address (tolerance is unambiguous there)."""

    address: str
    tag: str | None
    exclusive: bool


async def take_address(
    conn: AsyncConnection,
    *,
    currency: str,
    chain: str,
    invoice_id: str,
    now_ms: int,
    held_until: int,
) -> AddressChoice | None:
    """An address of the chain for a new invoice; None when the chain has no active address.

    Takes a free pool address (``held_until <= now``), least recently assigned first, for the
    invoice until ``held_until``. When every address is held, shares the selected one (else the
    least recently assigned) without taking it.
    """
    if held_until <= now_ms:
        raise ValueError("held_until must be in the future")
    c = pool_addresses.c
    rows = (
        await conn.execute(
            select(c.id, c.address, c.tag, c.selected, c.held_until, c.assigned_at)
            .where(c.currency == currency, c.chain == chain, c.active.is_(True))
            .order_by(c.assigned_at, c.id)
        )
    ).all()
    if not rows:
        return None
    for row in rows:
        if row.held_until > now_ms:
            continue
        result = await conn.execute(
            update(pool_addresses)
            .where(
                and_(
                    c.id == row.id,
                    c.active.is_(True),
                    c.held_until == row.held_until,
                    c.assigned_at == row.assigned_at,
                )
            )
            .values(holder_invoice_id=invoice_id, held_until=held_until, assigned_at=now_ms)
        )
        if result.rowcount == 1:
            return AddressChoice(address=row.address, tag=row.tag or None, exclusive=True)
    shared = next((row for row in rows if row.selected), rows[0])
    return AddressChoice(address=shared.address, tag=shared.tag or None, exclusive=False)


async def hold_address(conn: AsyncConnection, *, invoice_id: str, until: int) -> int:
    """Keep the address the invoice holds (if nobody has taken it since) until at least
    ``until``: a part-paid invoice keeps its address while it can still take money for itself.
    Returns the number of addresses held longer (0 or 1)."""
    result = await conn.execute(
        update(pool_addresses)
        .where(
            pool_addresses.c.holder_invoice_id == invoice_id,
            pool_addresses.c.held_until < until,
        )
        .values(held_until=until)
    )
    return int(result.rowcount or 0)


async def release_addresses(
    conn: AsyncConnection, invoice_ids: Sequence[str], *, now_ms: int, quarantine_ms: int
) -> None:
    """:func:`release_address` for many closed invoices, one statement per 500."""
    free_at = now_ms + quarantine_ms
    ids = list(invoice_ids)
    for start in range(0, len(ids), 500):
        await conn.execute(
            update(pool_addresses)
            .where(
                pool_addresses.c.holder_invoice_id.in_(ids[start : start + 500]),
                pool_addresses.c.held_until > free_at,
            )
            .values(held_until=free_at)
        )


async def release_address(
    conn: AsyncConnection, *, invoice_id: str, now_ms: int, quarantine_ms: int
) -> None:
    """The invoice has closed (paid, cancelled, rejected, expired): its address becomes free
    after ``quarantine_ms``, not at once, so that a second payment its payer sends to it cannot
    become the next holder's own payment."""
    free_at = now_ms + quarantine_ms
    await conn.execute(
        update(pool_addresses)
        .where(
            pool_addresses.c.holder_invoice_id == invoice_id,
            pool_addresses.c.held_until > free_at,
        )
        .values(held_until=free_at)
    )
