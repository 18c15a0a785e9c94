"""Loading what a decision may look at: the deposits to decide and a snapshot of the rows they
could concern (reservations of their exact amounts, invoices near their amounts or on their
addresses, and what is already attached to those). Cost follows deposits, not open invoices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from payments import states as st
from payments.deposits.matching import MatchRules, Snapshot, base_range, decided_by_reservation
from payments.facts import DepositFacts, InvoiceFacts, ReservationFacts
from payments.storage.schema import deposits, invoices, reservations


async def pending_currencies(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(
        select(deposits.c.currency).where(deposits.c.needs_decision.is_(True)).distinct()
    )
    return {r[0] for r in rows}


async def load_pending(conn: AsyncConnection, limit: int) -> list[DepositFacts]:
    rows = (
        (
            await conn.execute(
                select(deposits)
                .where(deposits.c.needs_decision.is_(True))
                .order_by(deposits.c.ts, deposits.c.dep_id)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return [DepositFacts.from_row(r) for r in rows]


async def load_snapshot(
    conn: AsyncConnection, batch: Sequence[DepositFacts], rules: MatchRules
) -> Snapshot:
    """Only the rows these deposits could concern: cost follows deposits, not open invoices.
    The one way to load what the matcher looks at, for a poll and for a claim alike (the
    catalogue's amount scales travel in ``rules``)."""
    units_by_currency: dict[str, set[int]] = {}
    for d in batch:
        if d.amount_units is not None:
            units_by_currency.setdefault(d.currency, set()).add(d.amount_units)
    found: dict[tuple[str, int], ReservationFacts] = {}
    # currency = ? AND amount_units IN (...), not (currency, amount_units) IN ((...), ...):
    # PostgreSQL tests every row of the currency against each pair of a row-value list (0.35 s
    # for 500 deposits against 100,000 reservations), and hashes a plain IN list
    chunks = [
        (currency, sorted(units)[start : start + 500])
        for currency, units in sorted(units_by_currency.items())
        for start in range(0, len(units), 500)
    ]
    for currency, chunk in chunks:
        rows = await conn.execute(
            select(reservations).where(
                reservations.c.currency == currency, reservations.c.amount_units.in_(chunk)
            )
        )
        for r in rows.mappings():
            found[(r["currency"], int(r["amount_units"]))] = ReservationFacts(
                currency=r["currency"],
                amount_units=int(r["amount_units"]),
                invoice_id=r["invoice_id"],
                kind=r["kind"],
                held_until=int(r["held_until"]),
            )
    invoice_ids = {r.invoice_id for r in found.values()}
    invoice_ids |= {d.invoice_id for d in batch if d.invoice_id}
    loaded: dict[str, InvoiceFacts] = {}
    ids = sorted(invoice_ids)
    await _load_into(
        loaded, conn, [invoices.c.id.in_(ids[i : i + 500]) for i in range(0, len(ids), 500)]
    )

    # inexact candidates: unpaid invoices of the currency priced near the amount (ranges merged
    # per currency, each an index range scan), and on the deposit's address every unpaid
    # invoice (is it the address's only one?) and every one still inside its monitoring window
    # (did it receive its money here already, was it cancelled?). Not for a deposit its
    # reservation decides (its exact amount, in time): what an exact payment costs does not
    # grow with the invoices sharing its address.
    ranges: dict[str, list[tuple[int, int]]] = {}
    addresses: set[str] = set()
    oldest = min((d.ts for d in batch), default=0)
    for d in batch:
        if d.disposition != st.DEP_NEW or not rules.sells(d.currency, d.chain):
            continue
        reservation = None if d.amount_units is None else found.get((d.currency, d.amount_units))
        holder = None if reservation is None else loaded.get(reservation.invoice_id)
        if decided_by_reservation(d, holder, rules):
            continue
        ranges.setdefault(d.currency, []).append(
            base_range(d.amount, rules, rules.scale(d.currency))
        )
        if d.to_address:
            addresses.add(d.to_address)
    queries: list[ColumnElement[bool]] = []
    unpaid = invoices.c.status.in_(st.UNPAID_STATUSES)
    # cancelled and rejected ones inside their window too: money for them is nobody else's
    closed_lately = and_(
        invoices.c.status.in_((st.CANCELLED, st.INVALID)), invoices.c.monitor_until >= oldest
    )
    for currency, spans in ranges.items():
        for low, high in _merge(spans):
            queries.append(
                and_(
                    invoices.c.currency == currency,
                    or_(unpaid, closed_lately),
                    invoices.c.base_units.between(low, high),
                )
            )
    listed = sorted(addresses)
    # on the address: every invoice that may still receive money there
    on_address = or_(unpaid, invoices.c.monitor_until >= oldest)
    queries += [
        and_(invoices.c.address.in_(listed[i : i + 500]), on_address)
        for i in range(0, len(listed), 500)
    ]
    await _load_into(loaded, conn, queries)
    attached = await load_attached(conn, loaded.keys())
    return Snapshot(invoices=loaded, reservations=found, attached=attached)


async def _load_into(
    loaded: dict[str, InvoiceFacts], conn: AsyncConnection, queries: list[ColumnElement[bool]]
) -> None:
    for condition in queries:
        rows = await conn.execute(select(invoices).where(condition))
        for r in rows.mappings():
            if r["id"] not in loaded:
                loaded[r["id"]] = InvoiceFacts.from_row(r)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching [low, high] ranges merged into as few as possible."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


async def load_attached(
    conn: AsyncConnection, invoice_ids: Iterable[str]
) -> dict[str, list[DepositFacts]]:
    ids = sorted(invoice_ids)
    result: dict[str, list[DepositFacts]] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(deposits).where(
                deposits.c.invoice_id.in_(ids[start : start + 500]),
                deposits.c.disposition == st.DEP_ATTACHED,
                deposits.c.needs_decision.is_(False),
            )
        )
        for r in rows.mappings():
            facts = DepositFacts.from_row(r)
            result.setdefault(r["invoice_id"], []).append(facts)
    return result


async def clear_flags(conn: AsyncConnection, batch: Sequence[DepositFacts]) -> None:
    """Mark the batch decided; a row that changed meanwhile keeps its flag (decided again)."""
    if not batch:
        return
    stmt = (
        update(deposits)
        .where(
            deposits.c.dep_id == bindparam("b_dep"),
            deposits.c.state == bindparam("b_state"),
            deposits.c.amount == bindparam("b_amount"),
        )
        .values(needs_decision=False)
    )
    await conn.execute(
        stmt,
        [{"b_dep": d.dep_id, "b_state": d.state, "b_amount": d.amount_text} for d in batch],
    )
