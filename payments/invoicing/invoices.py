"""Creating, reading and cancelling invoices; expiring them after a completed poll.

An invoice is created in one transaction: the customer's caps are checked under a lock, an
address is taken from the pool when one is free, and a unique amount is reserved
(docs/architecture.md, "Making every payment identifiable").

The amount space is shared by every customer of a coin, so one customer must not be able to lock
it: every invoice holds its amount until its monitoring window ends, so a customer's invoices may
hold at most MAX_HELD_AMOUNTS amounts at once (paid and cancelled ones count until their hold
ends); customers who never paid may hold at most UNPAID_AMOUNT_BUDGET_PERCENT of a coin's amounts
for a price; the range widens up to AMOUNT_OFFSET_CAP_MAX_PERCENT when the usual one is full; and
refusals are counted and remembered in memory (:mod:`payments.invoicing.creation_guard`), so a
burst of
them costs no database work.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.catalog import Catalog, Coin, Network, Plan
from payments.clock import HOUR_MS, Clock
from payments.config import PaymentSettings
from payments.errors import (
    BelowMinimumDeposit,
    CryptoUnavailable,
    CustomerBlocked,
    DepositsDisabled,
    InvalidTransition,
    InvoiceNotFound,
    InvoiceRateLimited,
    NoFreeAmount,
    QuoteUnavailable,
    TooManyHeldAmounts,
    TooManyOpenInvoices,
    UnknownChoice,
    UnpaidBudgetExhausted,
)
from payments.exchange.chains import ChainStatus, get_chain_status
from payments.facts import InvoiceFacts
from payments.invoicing.creation_guard import CreationGuard
from payments.invoicing.customers import ensure_customer
from payments.money import format_amount, from_units, step_units, to_units
from payments.ops.health import FAILING_KIND
from payments.pricing.allocation import (
    cap_units_for,
    capacity,
    release_address,
    reserve_amount,
    take_address,
)
from payments.pricing.quotes import QuoteService, crypto_amount
from payments.storage import Database
from payments.storage.kv import get_value
from payments.storage.schema import customers, invoices, reservations

_ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud to support


def new_invoice_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class InvoiceView:
    """What a customer or an admin is shown about an invoice. Amounts are exact Decimals."""

    id: str
    customer_id: int
    plan_id: str
    plan_name: str
    days: int
    price_usd: Decimal
    currency: str
    network: str
    network_label: str
    chain: str
    address: str
    tag: str | None
    amount: Decimal
    amount_text: str  # exactly the step's decimals: what to send, tap-to-copy
    topup_amount_text: str | None  # after a partial payment: the unique amount still to send
    status: str
    exceptions: frozenset[str]
    frozen: bool
    created_at: int
    expires_at: int
    monitor_until: int
    paid_at: int | None
    withdraw_fee: Decimal | None  # OKX's own withdrawal fee on this chain, as an example
    reused: bool = False  # an open invoice handed back instead of a new one


class InvoiceService:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        quotes: QuoteService,
        clock: Clock,
        settings: PaymentSettings,
        guard: CreationGuard | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.quotes = quotes
        self.clock = clock  # OKX time (ExchangeClock): compared with deposits' ts
        self.settings = settings
        self.guard = guard or CreationGuard(refusals_per_hour=settings.invoices_per_hour)

    # --- creating ----------------------------------------------------------------------------

    def _choice(self, plan_id: str, currency: str, network: str) -> tuple[Plan, Coin, Network]:
        plan = self.catalog.plan(plan_id)
        coin = self.catalog.coin(currency)
        chosen = coin.network(network) if coin else None
        if plan is None or coin is None or chosen is None:
            raise UnknownChoice("that plan, coin or network is not offered")
        return plan, coin, chosen

    async def create(
        self,
        customer_id: int,
        plan_id: str,
        currency: str,
        network: str,
        *,
        language: str | None = None,
    ) -> InvoiceView:
        """A new invoice (or the customer's open one for the same choice, if it has time left).

        Creations of one price in one coin take turns, from reading the customer's open
        invoices to writing the new one, so a burst for a range that turns out full costs one
        refused transaction and leaves every other purchase's turn free (see
        :mod:`payments.invoicing.creation_guard`)."""
        plan, coin, chosen = self._choice(plan_id, currency, network)
        await self._crypto_available()
        self.guard.check_customer(customer_id, self.clock.now_ms())
        try:
            quote = await self.quotes.quote(coin.symbol)
        except QuoteUnavailable:
            reusable = await self._reuse(customer_id, plan, coin, chosen)
            if reusable is not None:  # no price needed to hand back an open invoice
                return reusable
            raise
        base = crypto_amount(plan.price_usd, quote.rate, coin.step)
        base_units = to_units(base, coin.scale)
        assert base_units is not None  # a multiple of the step, which fits the scale
        now = self.clock.now_ms()
        try:
            async with self.guard.turn(coin.symbol, base_units):
                async with self.db.read() as conn:
                    status = await get_chain_status(conn, coin.symbol, chosen.chain)
                    open_one = await self._reusable(conn, customer_id, plan, coin, chosen)
                if open_one is not None:
                    return await self._view(open_one, status, reused=True)
                if status is None or not status.can_deposit:
                    raise DepositsDisabled(
                        f"deposits of {coin.symbol} on {chosen.label} are paused"
                    )
                if base < status.min_deposit:
                    raise BelowMinimumDeposit(
                        f"{format_amount(base, coin.step)} {coin.symbol} is below OKX's minimum "
                        f"deposit of {status.min_deposit} on {chosen.label}"
                    )
                now = self.clock.now_ms()
                self.guard.check_range(coin.symbol, base_units, now)
                step = step_units(coin.step, coin.scale)
                return await self._create(
                    customer_id,
                    plan,
                    coin,
                    chosen,
                    quote.rate,
                    status,
                    language,
                    base_units=base_units,
                    step=step,
                    caps=(
                        cap_units_for(base_units, self.settings.offset_cap_percent, step),
                        cap_units_for(base_units, self.settings.offset_cap_max_percent, step),
                    ),
                    now=now,
                )
        except (NoFreeAmount, InvoiceRateLimited) as exc:
            self.guard.refused(customer_id, now)
            if isinstance(exc, NoFreeAmount) and not isinstance(exc, UnpaidBudgetExhausted):
                self.guard.full(coin.symbol, base_units, now, exc.retry_after_ms)
            raise

    async def _crypto_available(self) -> None:
        """Refuse while the payment cycle records that OKX refuses the API key (until a poll
        succeeds again): deposits cannot be read, so no invoice could ever be matched."""
        async with self.db.read() as conn:
            refused = await get_value(conn, FAILING_KIND) == "auth"
        if refused:
            raise CryptoUnavailable("OKX refuses the API key: crypto payment is unavailable")

    async def _reuse(
        self, customer_id: int, plan: Plan, coin: Coin, chosen: Network
    ) -> InvoiceView | None:
        async with self.db.read() as conn:
            open_one = await self._reusable(conn, customer_id, plan, coin, chosen)
            if open_one is None:
                return None
            status = await get_chain_status(conn, coin.symbol, chosen.chain)
        return await self._view(open_one, status, reused=True)

    async def _create(
        self,
        customer_id: int,
        plan: Plan,
        coin: Coin,
        chosen: Network,
        rate: Decimal,
        status: ChainStatus,
        language: str | None,
        *,
        base_units: int,
        step: int,
        caps: tuple[int, int],
        now: int,
    ) -> InvoiceView:
        cap, widest = caps
        invoice_id = new_invoice_id()
        expires_at = now + self.settings.ttl_ms
        monitor_until = expires_at + self.settings.monitor_ms
        async with self.db.transaction() as conn:
            await self._check_caps(conn, customer_id, now, language)
            await conn.execute(
                invoices.insert().values(
                    id=invoice_id,
                    customer_id=customer_id,
                    plan_id=plan.id,
                    days=plan.days,
                    price_usd=str(plan.price_usd),
                    currency=coin.symbol,
                    network=chosen.code,
                    chain=chosen.chain,
                    address="",
                    tag=None,
                    rate=str(rate),
                    scale=coin.scale,
                    step=str(coin.step),
                    base_units=base_units,
                    amount_units=base_units,
                    topup_units=None,
                    status=st.PENDING,
                    exceptions="",
                    frozen=False,
                    created_at=now,
                    expires_at=expires_at,
                    monitor_until=monitor_until,
                    updated_at=now,
                    version=0,
                )
            )
            choice = await take_address(
                conn,
                currency=coin.symbol,
                chain=chosen.chain,
                invoice_id=invoice_id,
                now_ms=now,
                held_until=expires_at + self.settings.address_quarantine_ms,
            )
            if choice is None:
                raise DepositsDisabled(f"no deposit address is known for {chosen.chain}")
            budget = self.settings.unpaid_amount_budget_percent
            if budget < 100 and not await _has_paid(conn, customer_id):
                await self._check_unpaid_budget(conn, coin.symbol, base_units, step, widest, now)
            amount_units = None
            for width in dict.fromkeys((cap, widest)):  # the usual range, then the widest
                try:
                    amount_units = await reserve_amount(
                        conn,
                        currency=coin.symbol,
                        base_units=base_units,
                        step_units=step,
                        cap_units=width,
                        invoice_id=invoice_id,
                        kind="main",
                        address=choice.address,
                        now_ms=now,
                        held_until=monitor_until,
                        quarantine_ms=self.settings.amount_quarantine_ms,
                    )
                    break
                except NoFreeAmount:
                    if width == widest:
                        raise
            assert amount_units is not None
            await conn.execute(
                update(invoices)
                .where(invoices.c.id == invoice_id)
                .values(address=choice.address, tag=choice.tag, amount_units=amount_units)
            )
            row = await _load(conn, invoice_id)
        return await self._view(row, status)

    async def _reusable(
        self, conn: AsyncConnection, customer_id: int, plan: Plan, coin: Coin, chosen: Network
    ) -> InvoiceFacts | None:
        min_left = self.settings.reuse_min_left_minutes * 60_000
        row = (
            (
                await conn.execute(
                    select(invoices)
                    .where(
                        invoices.c.customer_id == customer_id,
                        invoices.c.plan_id == plan.id,
                        invoices.c.currency == coin.symbol,
                        invoices.c.chain == chosen.chain,
                        invoices.c.status == st.PENDING,
                        invoices.c.expires_at >= self.clock.now_ms() + min_left,
                    )
                    .order_by(invoices.c.created_at.desc())
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else InvoiceFacts.from_row(row)

    async def _check_caps(
        self, conn: AsyncConnection, customer_id: int, now: int, language: str | None
    ) -> None:
        await ensure_customer(conn, customer_id, now, language)
        locked = select(customers.c.blocked_at).where(customers.c.id == customer_id)
        if conn.dialect.name == "postgresql":  # serialise one customer's creations
            locked = locked.with_for_update()
        if (await conn.execute(locked)).scalar_one() is not None:
            raise CustomerBlocked("an admin has blocked this customer")
        open_count = (
            await conn.execute(
                select(func.count()).where(
                    invoices.c.customer_id == customer_id,
                    invoices.c.status.in_(st.OPEN_STATUSES),
                    # frozen for an admin: the customer is not kept waiting on their decision
                    invoices.c.frozen.is_(False),
                )
            )
        ).scalar_one()
        if open_count >= self.settings.max_open_invoices:
            raise TooManyOpenInvoices(
                f"you already have {open_count} open invoices: pay or cancel one first"
            )
        recent = (
            await conn.execute(
                select(func.count()).where(
                    invoices.c.customer_id == customer_id,
                    invoices.c.created_at > now - HOUR_MS,
                )
            )
        ).scalar_one()
        if recent >= self.settings.invoices_per_hour:
            oldest = (
                await conn.execute(
                    select(func.min(invoices.c.created_at)).where(
                        invoices.c.customer_id == customer_id,
                        invoices.c.created_at > now - HOUR_MS,
                    )
                )
            ).scalar_one()
            raise InvoiceRateLimited(
                "too many invoices in the last hour: try again later",
                retry_after_ms=int(oldest) + HOUR_MS - now,
            )
        held, first_free = (
            await conn.execute(
                select(func.count(), func.min(reservations.c.held_until))
                .select_from(
                    reservations.join(invoices, reservations.c.invoice_id == invoices.c.id)
                )
                .where(invoices.c.customer_id == customer_id, reservations.c.held_until > now)
            )
        ).one()
        if held >= self.settings.max_held_amounts:
            raise TooManyHeldAmounts(
                f"your invoices hold {held} payment amounts: try again later",
                retry_after_ms=int(first_free) - now,
            )

    async def _check_unpaid_budget(
        self, conn: AsyncConnection, currency: str, base_units: int, step: int, cap: int, now: int
    ) -> None:
        """Customers who never paid may hold only their budget of this price's amounts (of the
        widest range), so that accounts made to hoard amounts leave the rest to the customers
        who pay."""
        budget = capacity(base_units, step, cap) * self.settings.unpaid_amount_budget_percent / 100
        in_range = (
            reservations.c.currency == currency,
            reservations.c.amount_units.between(base_units, base_units + cap),
            reservations.c.held_until > now,
        )
        held_by_anyone = (
            await conn.execute(select(func.count()).select_from(reservations).where(*in_range))
        ).scalar_one()
        if held_by_anyone < budget:
            return  # fewer held in all than the budget: no need to ask who holds them
        paid_before = (
            select(invoices.c.id)
            .where(invoices.c.customer_id == holder.c.customer_id, invoices.c.status == st.PAID)
            .exists()
        )
        held, first_free = (
            await conn.execute(
                select(func.count(), func.min(reservations.c.held_until))
                .select_from(reservations.join(holder, reservations.c.invoice_id == holder.c.id))
                .where(*in_range, ~paid_before)
            )
        ).one()
        if held >= budget:
            raise UnpaidBudgetExhausted(
                "busy, try again in a few minutes",
                retry_after_ms=max(1, int(first_free) - now),
            )

    # --- reading -----------------------------------------------------------------------------

    async def get(self, invoice_id: str, *, customer_id: int | None = None) -> InvoiceView:
        """An invoice; with ``customer_id`` only if it is theirs (else InvoiceNotFound)."""
        async with self.db.read() as conn:
            row = await _find(conn, invoice_id)
            if row is None or (customer_id is not None and row.customer_id != customer_id):
                raise InvoiceNotFound(f"no invoice {invoice_id}")
            status = await get_chain_status(conn, row.currency, row.chain)
        return await self._view(row, status)

    async def list_for_customer(self, customer_id: int, *, limit: int = 10) -> list[InvoiceView]:
        async with self.db.read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(invoices)
                        .where(invoices.c.customer_id == customer_id)
                        .order_by(invoices.c.created_at.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
            facts = [InvoiceFacts.from_row(r) for r in rows]
        return [await self._view(f, None) for f in facts]

    async def _view(
        self, row: InvoiceFacts, status: ChainStatus | None, *, reused: bool = False
    ) -> InvoiceView:
        plan = self.catalog.plan(row.plan_id)
        coin = self.catalog.coin(row.currency)
        network = coin.network(row.network) if coin else None
        topup = None
        if row.topup_units is not None:
            topup = format_amount(from_units(row.topup_units, row.scale), row.step)
        return InvoiceView(
            id=row.id,
            customer_id=row.customer_id,
            plan_id=row.plan_id,
            plan_name=plan.name if plan else row.plan_id,
            days=row.days,
            price_usd=row.price_usd,
            currency=row.currency,
            network=row.network,
            network_label=network.label if network else row.network,
            chain=row.chain,
            address=row.address,
            tag=row.tag,
            amount=row.amount,
            amount_text=format_amount(row.amount, row.step),
            topup_amount_text=topup,
            status=row.status,
            exceptions=row.exceptions,
            frozen=row.frozen,
            created_at=row.created_at,
            expires_at=row.expires_at,
            monitor_until=row.monitor_until,
            paid_at=row.paid_at,
            withdraw_fee=status.withdraw_fee if status else None,
            reused=reused,
        )

    # --- changing ----------------------------------------------------------------------------

    async def cancel(self, invoice_id: str, *, customer_id: int) -> InvoiceView:
        """The customer cancels an invoice with nothing received. Its amount stays reserved."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            row = await _find(conn, invoice_id)
            if row is None or row.customer_id != customer_id:
                raise InvoiceNotFound(f"no invoice {invoice_id}")
            result = await conn.execute(
                update(invoices)
                .where(invoices.c.id == invoice_id, invoices.c.status == st.PENDING)
                .values(
                    status=st.CANCELLED,
                    closed_at=now,
                    updated_at=now,
                    version=invoices.c.version + 1,
                )
            )
            if result.rowcount != 1:
                raise InvalidTransition(
                    f"invoice {invoice_id} is {row.status}: it cannot be cancelled"
                )
            await release_address(
                conn,
                invoice_id=invoice_id,
                now_ms=now,
                quarantine_ms=self.settings.address_quarantine_ms,
            )
        return await self.get(invoice_id)


holder = invoices.alias("holder")


async def _has_paid(conn: AsyncConnection, customer_id: int) -> bool:
    """Whether the customer has ever paid an invoice."""
    row = await conn.execute(
        select(invoices.c.id)
        .where(invoices.c.customer_id == customer_id, invoices.c.status == st.PAID)
        .limit(1)
    )
    return row.first() is not None


async def _find(conn: AsyncConnection, invoice_id: str) -> InvoiceFacts | None:
    row = (
        (await conn.execute(select(invoices).where(invoices.c.id == invoice_id))).mappings().first()
    )
    return None if row is None else InvoiceFacts.from_row(row)


async def _load(conn: AsyncConnection, invoice_id: str) -> InvoiceFacts:
    row = await _find(conn, invoice_id)
    if row is None:
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    return row
