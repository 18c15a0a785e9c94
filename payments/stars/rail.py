"""The Telegram Stars rail: orders, the pre-checkout check, crediting each charge once,
refunds, the customer's renewal switch, and reconciliation against Telegram's ledger.

Telegram tells the shop of each payment (``successful_payment``); the shop never asks for
money itself. So the rules are:

* An order's payload names it; at pre-checkout it is checked against the order (the customer's,
  still open, the plan still on sale at the same price), never trusted.
* A charge is recorded once, keyed by Telegram's charge id (the primary key), in the same
  transaction as its period, the customer's and the admins' messages and the merchant event:
  an update delivered twice, or a ledger line for a charge whose update did come, changes
  nothing. One period per charge (its key is the payment's own id), so a renewal extends the
  subscription once.
* Money that arrived is credited even when the order expired or was paid meanwhile (the
  customer paid; the shop must not keep Stars for nothing). A charge naming no order of this
  shop is told to the admins instead.
* A refund is recorded after Telegram made it (or reported it), once: the period is revoked
  (chat access follows), and the customer and the admins are told.
* :meth:`StarsRail.reconcile` reads what the bot fetched of Telegram's ledger: a payment whose
  update was lost is credited from it, a refund made outside the bot is recorded, and a
  recorded payment the ledger lacks is reported.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.catalog import Catalog
from payments.clock import MINUTE_MS, Clock
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.delivery.webhooks import emit
from payments.errors import CustomerBlocked, InvoiceNotFound, UnknownChoice
from payments.invoicing.customers import ensure_customer
from payments.stars.model import (
    CANCELLED,
    CURRENCY,
    EXPIRED,
    PAID,
    PENDING,
    SUBSCRIPTION_PERIOD_S,
    Checkout,
    Credited,
    LedgerEntry,
    ReconcileReport,
    Refunded,
    StarsCharge,
    StarsOrder,
    StarsPayment,
    StarsSubscription,
    order_id_of,
)
from payments.storage import Database
from payments.storage.db import insert_ignore
from payments.storage.schema import customers, star_invoices, star_payments, subscriptions
from payments.subscriptions.periods import credit_period, revoke_period

_ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # as crypto invoice ids: read aloud to support
ORDERS_OPEN_PER_CUSTOMER = 5  # open orders a customer may hold (a repeated tap reuses one)


def _new_id(prefix: str = "", length: int = 8) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _order(row: Any) -> StarsOrder:
    return StarsOrder(
        id=row.id,
        customer_id=int(row.customer_id),
        plan_id=row.plan_id,
        days=int(row.days),
        stars=int(row.stars),
        recurring=bool(row.recurring),
        status=row.status,
        created_at=int(row.created_at),
        expires_at=int(row.expires_at),
        link=row.link,
    )


def _payment(row: Any) -> StarsPayment:
    return StarsPayment(
        id=row.id,
        charge_id=row.charge_id,
        order_id=row.invoice_id,
        customer_id=int(row.customer_id),
        plan_id=row.plan_id,
        stars=int(row.stars),
        renewal=bool(row.renewal),
        paid_at=int(row.paid_at),
        refunded_at=None if row.refunded_at is None else int(row.refunded_at),
        source=row.source,
    )


class StarsRail:
    """The Stars rail on one database (``payments.stars``)."""

    def __init__(self, db: Database, catalog: Catalog, clock: Clock, *, order_ttl_ms: int) -> None:
        self._db = db
        self.catalog = catalog
        self._clock = clock
        self.order_ttl_ms = order_ttl_ms

    @property
    def enabled(self) -> bool:
        """Some plan is on sale for Stars."""
        return bool(self.catalog.stars_plans)

    # --- orders and pre-checkout ---------------------------------------------------------------

    async def open_order(
        self, customer_id: int, plan_id: str, language: str | None = None
    ) -> StarsOrder:
        """An order for ``plan_id`` in Stars: the customer's open one for that plan when there is
        one (a repeated tap issues nothing new), else a new one. Raises
        :class:`~payments.errors.UnknownChoice` for a plan not on sale for Stars and
        :class:`~payments.errors.CustomerBlocked` for a blocked customer."""
        plan = self.catalog.plan(plan_id)
        if plan is None or plan.stars is None:
            raise UnknownChoice(f"plan {plan_id!r} is not on sale for Telegram Stars")
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            await ensure_customer(conn, customer_id, now, language)
            blocked = (
                await conn.execute(
                    select(customers.c.blocked_at).where(customers.c.id == customer_id)
                )
            ).scalar_one_or_none()
            if blocked is not None:
                raise CustomerBlocked("an admin has blocked this customer")
            open_rows = (
                await conn.execute(
                    select(star_invoices)
                    .where(
                        star_invoices.c.customer_id == customer_id,
                        star_invoices.c.status == PENDING,
                        star_invoices.c.expires_at > now,
                    )
                    .order_by(star_invoices.c.created_at.desc())
                )
            ).all()
            for row in open_rows:
                if row.plan_id == plan.id and int(row.stars) == plan.stars:
                    return replace(_order(row), reused=True)
            if len(open_rows) >= ORDERS_OPEN_PER_CUSTOMER:  # the oldest makes room
                await conn.execute(
                    update(star_invoices)
                    .where(
                        star_invoices.c.id == open_rows[-1].id, star_invoices.c.status == PENDING
                    )
                    .values(status=CANCELLED, updated_at=now)
                )
            row_values = {
                "id": _new_id(),
                "customer_id": customer_id,
                "plan_id": plan.id,
                "days": plan.days,
                "stars": plan.stars,
                "recurring": plan.renews_by_itself,
                "status": PENDING,
                "link": None,
                "first_charge_id": None,
                "renewal_off": False,
                "created_at": now,
                "expires_at": now + self.order_ttl_ms,
                "paid_at": None,
                "updated_at": now,
            }
            await conn.execute(star_invoices.insert().values(row_values))
        return _order(_Row(row_values))

    async def attach_link(self, order_id: str, link: str) -> None:
        """Remember the invoice link Telegram made for a subscription order (shown again on
        a repeated tap)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(star_invoices).where(star_invoices.c.id == order_id).values(link=link[:300])
            )

    async def check_checkout(
        self, user_id: int, payload: str, currency: str, total: int
    ) -> Checkout:
        """Telegram's pre-checkout question, answered from the database alone (it must be
        answered within 10 seconds): yes only for an open order of this user, for a plan still
        on sale at the price the order and Telegram both name."""
        order_id = order_id_of(payload)
        if order_id is None or currency != CURRENCY:
            return Checkout(False, "unknown")
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(star_invoices).where(star_invoices.c.id == order_id))
            ).first()
        if row is None:
            return Checkout(False, "unknown")
        order = _order(row)
        if order.customer_id != user_id:
            return Checkout(False, "not_yours")
        if order.status == PAID:
            return Checkout(False, "paid", order)
        if order.status != PENDING or order.expires_at <= self._clock.now_ms():
            return Checkout(False, "expired", order)
        plan = self.catalog.plan(order.plan_id)
        if plan is None or plan.stars is None:
            return Checkout(False, "plan_gone", order)
        if plan.stars != order.stars or total != order.stars:
            return Checkout(False, "price_changed", order)
        return Checkout(True, None, order)

    # --- charges -------------------------------------------------------------------------------

    async def record_charge(self, charge: StarsCharge, *, source: str = "update") -> Credited:
        """Credit one charge, once (see the module's rules); one transaction."""
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            return await self._record(conn, charge, source, now)

    async def _record(
        self, conn: AsyncConnection, charge: StarsCharge, source: str, now: int
    ) -> Credited:
        known = (
            await conn.execute(
                select(star_payments.c.charge_id).where(
                    star_payments.c.charge_id == charge.charge_id
                )
            )
        ).first()
        if known is not None:
            return Credited(new=False)
        order_id = order_id_of(charge.payload)
        row = None
        if order_id is not None:
            row = (
                await conn.execute(select(star_invoices).where(star_invoices.c.id == order_id))
            ).first()
        if row is None or int(row.customer_id) != charge.customer_id or charge.currency != CURRENCY:
            await ensure_customer(conn, charge.customer_id, now)
            reason = "names no order of this shop" if row is None else "names another's order"
            alert: msg.StarsUnmatched = {
                "charge_id": charge.charge_id,
                "customer_id": charge.customer_id,
                "stars": charge.stars,
                "reason": reason,
            }
            await enqueue(
                conn,
                msg.ADMIN_STARS_UNMATCHED.message(alert, key=f"a:xtr:{charge.charge_id}:unmatched"),
                now_ms=now,
            )
            return Credited(new=True)
        order = _order(row)
        renewal = order.recurring and (
            (charge.recurring and not charge.first)
            or (row.first_charge_id is not None and row.first_charge_id != charge.charge_id)
        )
        payment_id = _new_id("XTR")
        inserted = await insert_ignore(
            conn,
            star_payments,
            {
                "charge_id": charge.charge_id,
                "id": payment_id,
                "invoice_id": order.id,
                "customer_id": order.customer_id,
                "plan_id": order.plan_id,
                "days": order.days,
                "stars": charge.stars,
                "renewal": renewal,
                "subscription_ends_at": charge.subscription_ends_at,
                "paid_at": charge.paid_at,
                "recorded_at": now,
                "source": source,
                "refunded_at": None,
                "refund_source": None,
            },
            ["charge_id"],
        )
        if inserted != 1:  # recorded meanwhile (the update and the ledger at once)
            return Credited(new=False)
        if not renewal:
            await conn.execute(
                update(star_invoices)
                .where(star_invoices.c.id == order.id, star_invoices.c.status != PAID)
                .values(status=PAID, paid_at=now, first_charge_id=charge.charge_id, updated_at=now)
            )
        # the period runs from the charge: a renewal found in the ledger later is not
        # shifted by the time its update was lost (never later than now, whatever the clocks)
        credit = await credit_period(
            conn,
            customer_id=order.customer_id,
            plan_id=order.plan_id,
            days=order.days,
            now_ms=min(now, charge.paid_at),
            invoice_id=payment_id,
            source="stars",
        )
        ends_at = credit.ends_at if credit is not None else None
        told: msg.StarsPaid = {
            "stars_invoice": order.id,
            "payment_id": payment_id,
            "customer_id": order.customer_id,
            "plan_id": order.plan_id,
            "stars": charge.stars,
            "recurring": order.recurring,
            "renewal": renewal,
            "ends_at": ends_at,
        }
        key = f"xtr:{charge.charge_id}:paid"
        await enqueue(
            conn,
            msg.STARS_PAID.message(told, key=f"c:{key}", customer_id=order.customer_id),
            msg.ADMIN_STARS_PAID.message(told, key=f"a:{key}"),
            now_ms=now,
        )
        await emit.stars_paid(
            conn,
            order_id=order.id,
            payment_id=payment_id,
            customer_id=order.customer_id,
            plan_id=order.plan_id,
            stars=charge.stars,
            renewal=renewal,
            paid_at=charge.paid_at,
            now_ms=now,
            credit=credit,
        )
        return Credited(
            new=True,
            payment_id=payment_id,
            order_id=order.id,
            plan_id=order.plan_id,
            ends_at=ends_at,
            renewal=renewal,
        )

    # --- refunds -------------------------------------------------------------------------------

    async def find_payment(self, reference: str) -> StarsPayment | None:
        """The charge an admin names: its payment id, Telegram's charge id, or an order id (the
        order's latest charge not refunded yet, else its latest)."""
        ref = reference.strip()
        async with self._db.read() as conn:
            by_id = (
                await conn.execute(
                    select(star_payments).where(
                        (star_payments.c.id == ref.upper()) | (star_payments.c.charge_id == ref)
                    )
                )
            ).first()
            if by_id is not None:
                return _payment(by_id)
            rows = (
                await conn.execute(
                    select(star_payments)
                    .where(star_payments.c.invoice_id == ref.upper())
                    .order_by(star_payments.c.paid_at.desc())
                )
            ).all()
        if not rows:
            return None
        open_rows = [r for r in rows if r.refunded_at is None]
        return _payment((open_rows or rows)[0])

    async def record_refund(self, charge_id: str, *, by: str) -> Refunded | None:
        """Telegram refunded ``charge_id`` (``by`` "admin": through /refund; "telegram": found
        refunded outside the bot): revoke its period and tell the customer and the admins, in
        one transaction. None when it was recorded as refunded already (nothing changes)."""
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    update(star_payments)
                    .where(
                        star_payments.c.charge_id == charge_id,
                        star_payments.c.refunded_at.is_(None),
                    )
                    .values(refunded_at=now, refund_source=by)
                    .returning(*star_payments.c)
                )
            ).first()
            if row is None:
                return None
            payment = _payment(row)
            ends_at = await revoke_period(
                conn, invoice_id=payment.id, now_ms=now, reason=f"Stars refunded ({by})"
            )
            if ends_at is None:
                ends_at = await _subscription_end(conn, payment.customer_id, payment.plan_id)
            # a refund ends the Telegram subscription it belonged to (Telegram stops renewing)
            await conn.execute(
                update(star_invoices)
                .where(star_invoices.c.id == payment.order_id, star_invoices.c.recurring)
                .values(renewal_off=True, updated_at=now)
            )
            told: msg.StarsRefunded = {
                "payment_id": payment.id,
                "customer_id": payment.customer_id,
                "plan_id": payment.plan_id,
                "stars": payment.stars,
                "by": by,
                "ends_at": ends_at,
            }
            key = f"xtr:{charge_id}:refunded"
            await enqueue(
                conn,
                msg.STARS_REFUNDED.message(told, key=f"c:{key}", customer_id=payment.customer_id),
                msg.ADMIN_STARS_REFUNDED.message(told, key=f"a:{key}"),
                now_ms=now,
            )
            await emit.stars_refunded(
                conn,
                payment_id=payment.id,
                order_id=payment.order_id,
                customer_id=payment.customer_id,
                plan_id=payment.plan_id,
                stars=payment.stars,
                now_ms=now,
                ends_at=ends_at,
                by=by,
            )
        return Refunded(payment=payment, by=by, ends_at=ends_at)

    # --- what the customer and the admins read -------------------------------------------------

    async def payments_of(self, customer_id: int, *, limit: int = 10) -> list[StarsPayment]:
        """The customer's newest charges (first payments and renewals), newest first (read
        through the ``(customer_id, paid_at)`` index)."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(star_payments)
                    .where(star_payments.c.customer_id == customer_id)
                    .order_by(star_payments.c.paid_at.desc(), star_payments.c.id)
                    .limit(limit)
                )
            ).all()
        return [_payment(r) for r in rows]

    async def orders_of(self, customer_id: int, *, limit: int = 20) -> list[StarsOrder]:
        """The customer's newest orders, any status, newest first; an open order whose time ran
        out reads as expired before the job closes it."""
        now = self._clock.now_ms()
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(star_invoices)
                    .where(star_invoices.c.customer_id == customer_id)
                    .order_by(star_invoices.c.created_at.desc(), star_invoices.c.id)
                    .limit(limit)
                )
            ).all()
        return [_as_seen(_order(r), now) for r in rows]

    async def order(self, order_id: str, *, customer_id: int | None = None) -> StarsOrder | None:
        """One order (of ``customer_id`` when given: another's reads as None, as an unknown
        one)."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(star_invoices).where(star_invoices.c.id == order_id.strip().upper())
                )
            ).first()
        if row is None or (customer_id is not None and int(row.customer_id) != customer_id):
            return None
        return _as_seen(_order(row), self._clock.now_ms())

    async def payments_for(self, order_ids: Sequence[str]) -> dict[str, list[StarsPayment]]:
        """Order id -> its charges, oldest first (through the ``invoice_id`` index)."""
        if not order_ids:
            return {}
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(star_payments)
                    .where(star_payments.c.invoice_id.in_(list(order_ids)))
                    .order_by(star_payments.c.paid_at, star_payments.c.id)
                )
            ).all()
        out: dict[str, list[StarsPayment]] = {}
        for row in rows:
            out.setdefault(row.invoice_id, []).append(_payment(row))
        return out

    # --- the customer's Telegram subscriptions --------------------------------------------------

    async def subscriptions_of(self, customer_id: int) -> list[StarsSubscription]:
        """The customer's Telegram subscriptions (paid recurring orders), newest first."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(star_invoices)
                    .where(
                        star_invoices.c.customer_id == customer_id,
                        star_invoices.c.recurring,
                        star_invoices.c.status == PAID,
                        star_invoices.c.first_charge_id.is_not(None),
                    )
                    .order_by(star_invoices.c.paid_at.desc())
                )
            ).all()
            out = []
            for row in rows:
                ends_at = await _subscription_end(conn, customer_id, row.plan_id)
                out.append(
                    StarsSubscription(
                        order_id=row.id,
                        plan_id=row.plan_id,
                        stars=int(row.stars),
                        first_charge_id=row.first_charge_id,
                        renewal_on=not row.renewal_off,
                        ends_at=ends_at,
                    )
                )
        return out

    async def set_renewal(self, customer_id: int, order_id: str, *, on: bool) -> None:
        """Record that Telegram turned the renewal of the customer's subscription on or off.
        :class:`~payments.errors.InvoiceNotFound` when it is not theirs."""
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(star_invoices)
                .where(
                    star_invoices.c.id == order_id,
                    star_invoices.c.customer_id == customer_id,
                    star_invoices.c.status == PAID,
                    star_invoices.c.recurring,
                )
                .values(renewal_off=not on, updated_at=now)
            )
            if int(result.rowcount or 0) != 1:
                raise InvoiceNotFound(f"no Telegram subscription {order_id} of this customer")

    async def subscription(self, customer_id: int, order_id: str) -> StarsSubscription | None:
        return next(
            (s for s in await self.subscriptions_of(customer_id) if s.order_id == order_id), None
        )

    # --- reconciliation ------------------------------------------------------------------------

    async def reconcile(
        self, entries: Sequence[LedgerEntry], *, covered_since: int, read_at: int | None = None
    ) -> ReconcileReport:
        """Compare what the bot read of Telegram's ledger (every line from ``covered_since``, ms
        on Telegram's dates, to when it was read) with what was recorded: credit incoming
        payments never recorded, record refunds made outside the bot, and tell the admins of
        recorded payments in that span that the ledger lacks (once each). ``read_at``: when the
        read began, on this shop's clock (default: now); only a payment recorded a minute before
        that can be missing, so one recorded while the ledger was being read, or a clock that
        differs from Telegram's, never raises a false alarm."""
        report = ReconcileReport(read=len(entries))
        incoming = {e.id: e for e in entries if e.incoming}
        refunds = {e.id for e in entries if not e.incoming}
        for entry in sorted(incoming.values(), key=lambda e: e.date):
            if entry.user_id is None or entry.payload is None:
                continue
            charge = StarsCharge(
                customer_id=entry.user_id,
                charge_id=entry.id,
                payload=entry.payload,
                stars=entry.stars,
                paid_at=entry.date,
                recurring=entry.subscription_period == SUBSCRIPTION_PERIOD_S,
                first=False,  # decided from the order: the first charge it sees is the first
                subscription_ends_at=(
                    entry.date + SUBSCRIPTION_PERIOD_S * 1000
                    if entry.subscription_period == SUBSCRIPTION_PERIOD_S
                    else None
                ),
            )
            now = self._clock.now_ms()
            async with self._db.transaction() as conn:
                credited = await self._first_or_renewal(conn, charge, now)
            report.credited += credited.new and credited.payment_id is not None
        for charge_id in sorted(refunds):
            if await self._recorded_unrefunded(charge_id):
                report.refunded += await self.record_refund(charge_id, by="telegram") is not None
        now = self._clock.now_ms()
        read_began = now if read_at is None else read_at
        async with self._db.transaction() as conn:
            recorded = (
                await conn.execute(
                    select(star_payments).where(
                        star_payments.c.paid_at >= covered_since,
                        # recorded a minute before the read began, on our own clock
                        star_payments.c.recorded_at <= read_began - MINUTE_MS,
                    )
                )
            ).all()
            for row in recorded:
                if row.charge_id in incoming:
                    continue
                report.missing += 1
                alert: msg.StarsUnmatched = {
                    "charge_id": row.charge_id,
                    "customer_id": int(row.customer_id),
                    "stars": int(row.stars),
                    "reason": "recorded here, but not in Telegram's Stars ledger",
                }
                await enqueue(
                    conn,
                    msg.ADMIN_STARS_UNMATCHED.message(
                        alert, key=f"a:xtr:{row.charge_id}:not-in-ledger"
                    ),
                    now_ms=now,
                )
        return report

    async def _first_or_renewal(
        self, conn: AsyncConnection, charge: StarsCharge, now: int
    ) -> Credited:
        """A ledger line of a subscription does not say whether it is the first charge: it is,
        when its order has none recorded yet."""
        order_id = order_id_of(charge.payload)
        if order_id is not None and charge.recurring:
            first = (
                await conn.execute(
                    select(star_invoices.c.first_charge_id).where(star_invoices.c.id == order_id)
                )
            ).scalar_one_or_none()
            charge = _with_first(charge, first is None)
        return await self._record(conn, charge, "ledger", now)

    async def _recorded_unrefunded(self, charge_id: str) -> bool:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(star_payments.c.charge_id).where(
                        and_(
                            star_payments.c.charge_id == charge_id,
                            star_payments.c.refunded_at.is_(None),
                        )
                    )
                )
            ).first()
        return row is not None

    async def expire_orders(self) -> int:
        """Close the orders whose time ran out unpaid (pre-checkout refuses them anyway)."""
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(star_invoices)
                .where(star_invoices.c.status == PENDING, star_invoices.c.expires_at <= now)
                .values(status=EXPIRED, updated_at=now)
            )
        return int(result.rowcount or 0)


def _as_seen(order: StarsOrder, now: int) -> StarsOrder:
    if order.status == PENDING and order.expires_at <= now:
        return replace(order, status=EXPIRED)
    return order


def _with_first(charge: StarsCharge, first: bool) -> StarsCharge:
    return StarsCharge(
        customer_id=charge.customer_id,
        charge_id=charge.charge_id,
        payload=charge.payload,
        stars=charge.stars,
        paid_at=charge.paid_at,
        currency=charge.currency,
        recurring=charge.recurring,
        first=first,
        subscription_ends_at=charge.subscription_ends_at,
    )


async def _subscription_end(conn: AsyncConnection, customer_id: int, plan_id: str) -> int | None:
    value = (
        await conn.execute(
            select(subscriptions.c.ends_at).where(
                subscriptions.c.customer_id == customer_id, subscriptions.c.plan_id == plan_id
            )
        )
    ).scalar_one_or_none()
    return None if value is None else int(value)


class _Row:
    """Attribute access over a dict of column values (an order just inserted)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
