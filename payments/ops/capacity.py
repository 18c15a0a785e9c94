"""Capacity alerts: tell admins when a currency's free unique amounts, or a
chain's free pool addresses, are running low, before customers hear "busy, try again".

Amounts: for each coin and plan, the range ``[base, base + cap]`` an invoice created now would
draw from (the same functions :meth:`InvoiceService.create` uses, at the current quote), and how
many of its amounts :func:`payments.pricing.allocation.reserve_amount` could still hand out
(:func:`payments.pricing.allocation.free_amounts`: never ending in 0, held ones and the 24 h
quarantine
excluded). Addresses: a chain with more than one active pool address and none free (new
invoices then share an address, so tolerance and partial payments turn ambiguous).

Each warning is one admin outbox message, at most once per (currency, plan or chain, what) and
UTC day. Reads run in one transaction with the messages they cause.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.catalog import Catalog, Coin, Plan
from payments.clock import Clock
from payments.config import PaymentSettings
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.errors import ExchangeError, QuoteUnavailable
from payments.money import step_units, to_units
from payments.pricing.allocation import cap_units_for, capacity, free_amounts
from payments.pricing.quotes import QuoteService, crypto_amount
from payments.storage import Database
from payments.storage.schema import pool_addresses

log = logging.getLogger(__name__)

LOW_SHARE = Decimal("0.2")  # warn when fewer than 20 % of the amounts are free
AMOUNTS = "amounts"
ADDRESSES = "addresses"


@dataclass(frozen=True)
class CapacityWarning:
    currency: str
    what: str  # "amounts" | "addresses"
    free: int
    total: int
    plan_id: str | None = None  # what == "amounts"
    chain: str | None = None  # what == "addresses"
    announced: bool = False  # this check wrote the admin message (False: told earlier today)

    @property
    def subject(self) -> str:
        return self.plan_id or self.chain or ""


@dataclass(frozen=True)
class AmountRange:
    base_units: int
    step_units: int
    cap_units: int


def amount_range(plan: Plan, coin: Coin, rate: Decimal, cap_percent: Decimal) -> AmountRange:
    """The unique-amount range an invoice for ``plan`` in ``coin`` would draw from at ``rate``,
    computed as :meth:`payments.invoicing.invoices.InvoiceService.create` does."""
    base = crypto_amount(plan.price_usd, rate, coin.step)
    base_units = to_units(base, coin.scale)
    assert base_units is not None  # a multiple of the step, which fits the scale
    step = step_units(coin.step, coin.scale)
    return AmountRange(base_units, step, cap_units_for(base_units, cap_percent, step))


def is_low(free: int, total: int) -> bool:
    return free <= 0 or Decimal(free) < LOW_SHARE * total


async def check_capacity(
    *,
    db: Database,
    catalog: Catalog,
    quotes: QuoteService,
    clock: Clock,
    settings: PaymentSettings,
) -> list[CapacityWarning]:
    """Every capacity that is low now; admins are told once a day about each."""
    ranges: list[tuple[Coin, Plan, AmountRange]] = []
    for coin in catalog.coins:
        try:
            rate = (await quotes.quote(coin.symbol)).rate
        except (QuoteUnavailable, ExchangeError) as exc:
            log.info("capacity check skips %s: %s", coin.symbol, exc)
            continue
        for plan in catalog.plans:
            ranges.append((coin, plan, amount_range(plan, coin, rate, settings.offset_cap_percent)))
    now = clock.now_ms()
    warnings: list[CapacityWarning] = []
    async with db.transaction() as conn:
        for coin, plan, r in ranges:
            free = await free_amounts(
                conn,
                currency=coin.symbol,
                base_units=r.base_units,
                step_units=r.step_units,
                cap_units=r.cap_units,
                now_ms=now,
                quarantine_ms=settings.amount_quarantine_ms,
            )
            total = capacity(r.base_units, r.step_units, r.cap_units)
            if is_low(free, total):
                warnings.append(CapacityWarning(coin.symbol, AMOUNTS, free, total, plan_id=plan.id))
        warnings.extend(await _address_warnings(conn, catalog, now))
        return [await _announce(conn, warning, now) for warning in warnings]


async def _address_warnings(
    conn: AsyncConnection, catalog: Catalog, now: int
) -> list[CapacityWarning]:
    offered = {(coin.symbol, n.chain) for coin in catalog.coins for n in coin.networks}
    c = pool_addresses.c
    rows = await conn.execute(
        select(
            c.currency,
            c.chain,
            func.count().label("total"),
            func.sum(case((c.held_until <= now, 1), else_=0)).label("free"),
        )
        .where(c.active.is_(True), c.currency.in_(catalog.currencies))
        .group_by(c.currency, c.chain)
        .order_by(c.currency, c.chain)
    )
    return [
        CapacityWarning(row.currency, ADDRESSES, 0, int(row.total), chain=row.chain)
        for row in rows
        if (row.currency, row.chain) in offered and int(row.total) > 1 and not int(row.free or 0)
    ]


async def _announce(conn: AsyncConnection, warning: CapacityWarning, now: int) -> CapacityWarning:
    day = datetime.fromtimestamp(now // 1000, tz=UTC).date().isoformat()
    payload: msg.Capacity = {
        "currency": warning.currency,
        "free": warning.free,
        "total": warning.total,
        "what": warning.what,
    }
    if warning.what == AMOUNTS:
        payload["plan_id"] = warning.subject
    else:
        payload["chain"] = warning.subject
    alert = msg.ADMIN_CAPACITY.message(
        payload, key=f"a:capacity:{warning.currency}:{warning.subject}:{warning.what}:{day}"
    )
    announced = await enqueue(conn, alert, now_ms=now) == 1
    return replace(warning, announced=announced)
