"""Write one batch of decisions: deposit rows, invoice transitions, periods, top-ups, messages.

Runs inside the caller's transaction. Every write is a compare-and-set; a miss raises
``ConcurrentChange`` so the caller rolls back and decides again from fresh rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.clock import HOUR_MS
from payments.config import PaymentSettings
from payments.delivery import messages as msg
from payments.delivery.messages import Message, invoice_fields
from payments.delivery.outbox import enqueue
from payments.delivery.webhooks import emit
from payments.deposits.matching import (
    NOT_SOLD,
    Attach,
    Decision,
    Freeze,
    MatchRules,
    Unmatched,
    Update,
)
from payments.deposits.settlement import Verdict, evaluate
from payments.errors import NoFreeAmount, PaymentsError
from payments.exchange.chains import get_chain_status
from payments.facts import DepositFacts, InvoiceFacts
from payments.money import format_amount, round_up, step_units, to_units
from payments.pricing.allocation import (
    cap_units_for,
    hold_address,
    release_address,
    release_addresses,
    reserve_amount,
)
from payments.states import format_exceptions
from payments.storage.db import insert_ignore
from payments.storage.schema import deposit_candidates, deposits, invoices
from payments.subscriptions.periods import Credit, CreditRequest, credit_period, credit_periods


class ConcurrentChange(PaymentsError):
    """A compare-and-set found the row changed by someone else: decide again from fresh data."""


@dataclass(frozen=True)
class _Paid:
    """An invoice that turned paid in this batch, and where its messages and events go in the
    batch's lists (so they keep the order they would have had one invoice at a time)."""

    invoice: InvoiceFacts
    received: str
    exceptions: list[str]
    tx_ids: list[str]
    message_at: int
    event_at: int


class Applier:
    """``seen``: the version of every invoice the decisions were taken on (the matcher's
    snapshot); :meth:`finish` refuses to act on an invoice that changed since (a cancel or an
    admin's reject committed in between), and the caller decides again from fresh rows."""

    def __init__(
        self,
        conn: AsyncConnection,
        now_ms: int,
        rules: MatchRules,
        rates: Mapping[str, Decimal | None],
        *,
        settings: PaymentSettings,
        seen: Mapping[str, int] | None = None,
    ) -> None:
        self.conn = conn
        self.now = now_ms
        self.rules = rules
        self.rates = rates
        self.settings = settings
        self.seen = dict(seen or {})
        self.messages: list[Message] = []  # written by finish(), in one statement
        # deposit writes, grouped by (expected disposition, new disposition): written together
        self._writes: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._freezes: list[tuple[Freeze, DepositFacts]] = []
        self._candidates: list[dict[str, str]] = []
        self._not_sold: list[DepositFacts] = []
        self.touched: set[str] = set()
        self.new_money: set[str] = set()  # invoices that received a counted deposit just now
        self.paid: list[str] = []
        self.events: list[dict[str, Any]] = []  # merchant events, written by finish()
        self._paid: list[_Paid] = []  # credited together by finish()

    # --- deposits ----------------------------------------------------------------------------

    async def apply(self, decision: Decision, deposit: DepositFacts) -> None:
        if isinstance(decision, Attach):
            await self._attach(decision, deposit)
        elif isinstance(decision, Unmatched):
            await self._unmatched(decision, deposit)
        elif isinstance(decision, Freeze):
            self._freezes.append((decision, deposit))
        else:
            await self._update(decision, deposit)

    async def finish(self, *, settle: bool = True) -> None:
        """Check that no invoice changed under the decisions, write the queued deposit
        decisions, freeze, settle every touched invoice, write messages."""
        await self._check_seen()
        await self._write_deposits()
        if self._candidates:
            await insert_ignore(
                self.conn, deposit_candidates, self._candidates, ["dep_id", "invoice_id"]
            )
        for decision, deposit in self._freezes:
            await self._freeze(decision, deposit)
        if settle:
            await self._settle_touched()
            await self._credit_paid()
        await self._announce_not_sold()
        await enqueue(self.conn, *self.messages, now_ms=self.now)
        self.messages = []
        await emit.flush(self.conn, self.events)

    async def _check_seen(self) -> None:
        ids = sorted((self.touched | {f.invoice_id for f, _ in self._freezes}) & self.seen.keys())
        for start in range(0, len(ids), 500):
            rows = await self.conn.execute(
                select(invoices.c.id, invoices.c.version).where(
                    invoices.c.id.in_(ids[start : start + 500])
                )
            )
            for invoice_id, version in rows.all():
                if int(version) != self.seen[invoice_id]:
                    raise ConcurrentChange(f"invoice {invoice_id} changed under the decision")

    def _set_deposit(
        self, deposit: DepositFacts, expected: str, target: str, **values: Any
    ) -> None:
        self._writes.setdefault((expected, target), []).append({"b_dep": deposit.dep_id, **values})

    async def _write_deposits(self) -> None:
        """Per group: one compare-and-set on the disposition of all its deposits (the row count
        must match, or someone else changed one: decide again), then their own values."""
        writes, self._writes = self._writes, {}
        for (expected, target), rows in writes.items():
            ids = [row["b_dep"] for row in rows]
            changed = 0
            for start in range(0, len(ids), 500):
                result = await self.conn.execute(
                    update(deposits)
                    .where(
                        deposits.c.dep_id.in_(ids[start : start + 500]),
                        deposits.c.disposition == expected,
                    )
                    .values(disposition=target, updated_at=self.now)
                )
                changed += int(result.rowcount or 0)
            if changed != len(ids):
                raise ConcurrentChange(f"{len(ids) - changed} deposit(s) changed meanwhile")
            columns = [key for key in rows[0] if key != "b_dep"]
            stmt = (
                update(deposits)
                .where(deposits.c.dep_id == bindparam("b_dep"))
                .values({c: bindparam(f"b_{c}") for c in columns})
            )
            await self.conn.execute(
                stmt, [{"b_dep": r["b_dep"], **{f"b_{c}": r[c] for c in columns}} for r in rows]
            )

    async def _attach(self, decision: Attach, deposit: DepositFacts) -> None:
        self._set_deposit(
            deposit,
            st.DEP_NEW,
            st.DEP_ATTACHED,
            invoice_id=decision.invoice_id,
            match_kind=decision.kind,
            matched_amount=deposit.amount_text,
            matched_state=deposit.state,
            note="mismatch" if decision.mismatch else "",
        )
        self.touched.add(decision.invoice_id)
        if decision.kind in st.COUNTED_KINDS:
            self.new_money.add(decision.invoice_id)
        elif decision.kind in (st.KIND_DUPLICATE, st.KIND_AFTER_CLOSE):
            kind = msg.ADMIN_DUPLICATE
            if decision.kind == st.KIND_AFTER_CLOSE:
                kind = msg.ADMIN_AFTER_CLOSE
            self.messages.append(
                kind.message(
                    {**_deposit_payload(deposit), "invoice_id": decision.invoice_id},
                    key=f"a:dep:{deposit.dep_id}:{decision.kind}",
                )
            )

    async def _unmatched(self, decision: Unmatched, deposit: DepositFacts) -> None:
        self._set_deposit(
            deposit,
            st.DEP_NEW,
            st.DEP_UNMATCHED,
            note=decision.reason,
            candidate_invoice_id=decision.candidate_invoice_id,
            matched_amount=deposit.amount_text,
            matched_state=deposit.state,
        )
        self._candidates += [
            {"dep_id": deposit.dep_id, "invoice_id": invoice_id}
            for invoice_id in decision.candidates
        ]
        if decision.reason == NOT_SOLD:
            self._not_sold.append(deposit)  # told in one message: dust must not flood admins
        else:
            payload: msg.Unmatched = {
                **_deposit_payload(deposit),
                "reason": decision.reason,
                "candidate_invoice_id": decision.candidate_invoice_id,
            }
            self.messages.append(
                msg.ADMIN_UNMATCHED.message(payload, key=f"a:dep:{deposit.dep_id}:unmatched")
            )
        self.events.append(emit.unmatched_row(deposit, decision.reason, self.now))

    async def _announce_not_sold(self) -> None:
        """Deposits in coins or on chains the shop does not sell: one admin message an hour at
        most, however many arrive (anyone can send dust to a public address)."""
        if not self._not_sold:
            return
        kinds = sorted({f"{d.currency} ({d.chain})" for d in self._not_sold})
        self.messages.append(
            msg.ADMIN_NOT_SOLD.message(
                {
                    "count": len(self._not_sold),
                    "kinds": kinds[:10],
                    "dep_id": self._not_sold[0].dep_id,
                },
                key=f"a:not_sold:{self.now // HOUR_MS}",
            )
        )

    async def _freeze(self, decision: Freeze, deposit: DepositFacts) -> None:
        invoice, version = await load_invoice_versioned(self.conn, decision.invoice_id)
        result = await self.conn.execute(
            update(invoices)
            .where(invoices.c.id == invoice.id, invoices.c.version == version)
            .values(
                frozen=True,
                exceptions=format_exceptions(invoice.exceptions | {st.CHANGED}),
                updated_at=self.now,
                version=version + 1,
            )
        )
        if result.rowcount != 1:
            raise ConcurrentChange(f"invoice {invoice.id} changed")
        matched = None if deposit.matched_amount is None else str(deposit.matched_amount)
        payload: msg.Frozen = {
            **_deposit_payload(deposit),
            "invoice_id": invoice.id,
            "reason": decision.reason,
            "matched_amount": matched,
            "matched_state": deposit.matched_state,
        }
        key = (
            f"dep:{deposit.dep_id}:changed:{deposit.state}:{deposit.amount_text}:{decision.reason}"
        )
        self.messages.append(msg.ADMIN_FROZEN.message(payload, key=f"a:{key}"))

    async def _update(self, decision: Update, deposit: DepositFacts) -> None:
        self._set_deposit(deposit, st.DEP_ATTACHED, st.DEP_ATTACHED, matched_state=deposit.state)
        self.touched.add(decision.invoice_id)

    # --- invoices ----------------------------------------------------------------------------

    async def _settle_touched(self) -> None:
        ids = sorted(self.touched)
        loaded: dict[str, tuple[InvoiceFacts, int]] = {}
        attached_by: dict[str, list[DepositFacts]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.conn.execute(select(invoices).where(invoices.c.id.in_(chunk)))
            for row in rows.mappings():
                loaded[row["id"]] = (InvoiceFacts.from_row(row), int(row["version"]))
            deps = await self.conn.execute(
                select(deposits)
                .where(
                    deposits.c.invoice_id.in_(chunk),
                    deposits.c.disposition == st.DEP_ATTACHED,
                )
                .order_by(deposits.c.ts, deposits.c.dep_id)
            )
            for row in deps.mappings():
                attached_by[row["invoice_id"]].append(DepositFacts.from_row(row))
        for invoice_id in ids:
            if invoice_id not in loaded:
                raise ConcurrentChange(f"invoice {invoice_id} vanished")
            invoice, version = loaded[invoice_id]
            attached = attached_by[invoice_id]
            verdict = evaluate(
                invoice, attached, self.rules, rate_now=self.rates.get(invoice.currency)
            )
            await self._transition(invoice, version, verdict, attached)

    async def _transition(
        self, invoice: InvoiceFacts, version: int, verdict: Verdict, attached: list[DepositFacts]
    ) -> None:
        values: dict[str, Any] = {}
        if verdict.status != invoice.status:
            values["status"] = verdict.status
            if verdict.status == st.PAID:
                values["paid_at"] = self.now
            if verdict.status in st.CLOSED_STATUSES:
                values["closed_at"] = self.now
        if verdict.exceptions != invoice.exceptions:
            values["exceptions"] = format_exceptions(verdict.exceptions)
        if values:
            params = {f"b_{k}": v for k, v in values.items()}
            result = await self.conn.execute(
                _transition_statement(tuple(sorted(values))),
                {
                    "b_id": invoice.id,
                    "b_version": version,
                    "b_next": version + 1,
                    "b_updated_at": self.now,
                    **params,
                },
            )
            if result.rowcount != 1:
                raise ConcurrentChange(f"invoice {invoice.id} changed")
        if verdict.status == st.PROCESSING:
            # money seen: the address stays this invoice's while it can still take money for
            # itself (a part-paid invoice's top-up message names it), then a quarantine
            await hold_address(
                self.conn,
                invoice_id=invoice.id,
                until=invoice.monitor_until + self.settings.address_quarantine_ms,
            )
        await self._announce(invoice, verdict, attached)

    async def _announce(
        self, invoice: InvoiceFacts, verdict: Verdict, attached: list[DepositFacts]
    ) -> None:
        received = format_amount(verdict.received, invoice.step)
        exceptions = sorted(verdict.exceptions)
        for deposit in attached:
            if self.rules.states.classify(deposit.state) == "on_hold":
                key = f"dep:{deposit.dep_id}:hold:{deposit.state}"
                on_hold: msg.DepositOnInvoice = {
                    **_deposit_payload(deposit),
                    "invoice_id": invoice.id,
                }
                self.messages += [
                    msg.ADMIN_ON_HOLD.message(on_hold, key=f"a:{key}"),
                    msg.PAYMENT_ON_HOLD.message(
                        invoice_fields(invoice), key=f"c:{key}", customer_id=invoice.customer_id
                    ),
                ]
        if verdict.status == st.PAID and invoice.status != st.PAID:
            self._paid.append(
                _Paid(
                    invoice=invoice,
                    received=received,
                    exceptions=exceptions,
                    tx_ids=[d.tx_id for d in attached if d.tx_id],
                    message_at=len(self.messages),
                    event_at=len(self.events),
                )
            )
            self.paid.append(invoice.id)
        elif verdict.late_review:
            if invoice.status != st.EXPIRED:  # a late payment ends it as expired
                self.events.append(emit.invoice_expired_row(invoice, self.now))
            fields: msg.Received = {**invoice_fields(invoice), "received": received}
            self.messages += [
                msg.ADMIN_LATE_REVIEW.message(
                    {**fields, "exceptions": exceptions}, key=f"a:inv:{invoice.id}:late"
                ),
                msg.PAYMENT_LATE_REVIEW.message(
                    fields, key=f"c:inv:{invoice.id}:late", customer_id=invoice.customer_id
                ),
            ]
        elif verdict.partial and (invoice.id in self.new_money or invoice.topup_units is None):
            await self._issue_topup(invoice, verdict)
        elif (
            verdict.status == st.PROCESSING
            and invoice.status != st.PROCESSING
            and not verdict.on_hold
        ):
            self.messages.append(
                msg.PAYMENT_DETECTED.message(
                    {**invoice_fields(invoice), "received": received},
                    key=f"c:inv:{invoice.id}:detected",
                    customer_id=invoice.customer_id,
                )
            )
        elif (
            verdict.status == st.EXPIRED
            and st.PAID_PARTIAL in verdict.exceptions
            and (st.PAID_PARTIAL not in invoice.exceptions or invoice.id in self.new_money)
        ):
            self.messages.append(
                msg.ADMIN_PARTIAL_UNFINISHED.message(
                    {**invoice_fields(invoice), "received": received},
                    key=f"a:inv:{invoice.id}:partial_late:{received}",
                )
            )

    async def _credit_paid(self) -> None:
        """What :func:`on_paid` does, for every invoice of the batch that turned paid, in a few
        statements for them all: periods, addresses back to the pool, events and messages."""
        paid, self._paid = self._paid, []
        if not paid:
            return
        credits = await credit_periods(
            self.conn,
            [
                CreditRequest(
                    invoice_id=p.invoice.id,
                    customer_id=p.invoice.customer_id,
                    plan_id=p.invoice.plan_id,
                    days=p.invoice.days,
                )
                for p in paid
            ],
            now_ms=self.now,
        )
        await release_addresses(
            self.conn,
            [p.invoice.id for p in paid],
            now_ms=self.now,
            quarantine_ms=self.settings.address_quarantine_ms,
        )
        for p in reversed(paid):  # from the end, so the earlier positions stay right
            credit = credits[p.invoice.id]
            self.events[p.event_at : p.event_at] = emit.invoice_paid_rows(
                p.invoice,
                self.now,
                received=p.received,
                exceptions=p.exceptions,
                credit=credit,
                tx_ids=p.tx_ids,
            )
            self.messages[p.message_at : p.message_at] = _paid_messages(
                p.invoice, self.now, p.received, p.exceptions, credit, tell_admins=True
            )

    async def _issue_topup(self, invoice: InvoiceFacts, verdict: Verdict) -> None:
        """A fresh unique amount for the rest, at least OKX's minimum deposit."""
        status = await get_chain_status(self.conn, invoice.currency, invoice.chain)
        minimum = status.min_deposit if status is not None else Decimal(0)
        wanted = round_up(max(verdict.shortfall, minimum), invoice.step)
        base_units = to_units(wanted, invoice.scale)
        assert base_units is not None
        step = step_units(invoice.step, invoice.scale)
        cap = cap_units_for(invoice.base_units, self.settings.offset_cap_percent, step)
        received = format_amount(verdict.received, invoice.step)
        try:
            topup = await reserve_amount(
                self.conn,
                currency=invoice.currency,
                base_units=base_units,
                step_units=step,
                cap_units=cap,
                invoice_id=invoice.id,
                kind="topup",
                address=invoice.address,
                now_ms=self.now,
                held_until=max(invoice.monitor_until, self.now + 1),
                quarantine_ms=self.settings.amount_quarantine_ms,
            )
        except NoFreeAmount:
            self.messages.append(
                msg.ADMIN_TOPUP_UNAVAILABLE.message(
                    {**invoice_fields(invoice), "received": received},
                    key=f"a:inv:{invoice.id}:topup_busy:{received}",
                )
            )
            return
        await self.conn.execute(
            update(invoices).where(invoices.c.id == invoice.id).values(topup_units=topup)
        )
        topup_text = format_amount(Decimal(topup).scaleb(-invoice.scale), invoice.step)
        partial: msg.Partial = {
            **invoice_fields(invoice),
            "received": received,
            "shortfall": format_amount(verdict.shortfall, invoice.step),
            "topup_amount": topup_text,
            "address": invoice.address,
        }
        self.messages.append(
            msg.PAYMENT_PARTIAL.message(
                partial, key=f"c:inv:{invoice.id}:partial:{topup}", customer_id=invoice.customer_id
            )
        )


async def on_paid(
    conn: AsyncConnection,
    invoice: InvoiceFacts,
    now: int,
    *,
    received: str | None,
    exceptions: list[str],
    address_quarantine_ms: int,
    source: str = "payment",
    tell_admins: bool = True,
    pending: list[Message] | None = None,
) -> int | None:
    """What follows an invoice turning paid, in the same transaction: the subscription period
    (once per invoice), the address back to the pool, and the messages (added to ``pending``
    when given, for the caller to enqueue with the rest of its batch). Returns the new end."""
    credit = await credit_period(
        conn,
        customer_id=invoice.customer_id,
        plan_id=invoice.plan_id,
        days=invoice.days,
        now_ms=now,
        invoice_id=invoice.id,
        source=source,
    )
    await release_address(
        conn, invoice_id=invoice.id, now_ms=now, quarantine_ms=address_quarantine_ms
    )
    await emit.invoice_paid(
        conn, invoice, now, received=received, exceptions=exceptions, credit=credit
    )
    told = _paid_messages(invoice, now, received, exceptions, credit, tell_admins=tell_admins)
    if pending is None:
        await enqueue(conn, *told, now_ms=now)
    else:
        pending += told
    return credit.ends_at if credit is not None else None


def _paid_messages(
    invoice: InvoiceFacts,
    now: int,
    received: str | None,
    exceptions: list[str],
    credit: Credit | None,
    *,
    tell_admins: bool,
) -> list[Message]:
    """The customer's (and the admins') messages of an invoice turning paid."""
    ends_at = credit.ends_at if credit is not None else None
    payload: msg.Paid = {
        **invoice_fields(invoice),
        "received": received,
        "exceptions": exceptions,
        "ends_at": ends_at,
    }
    key = f"inv:{invoice.id}:paid"
    if credit is not None and credit.restored:
        key += f":{now}"  # paid again after a correction: the customer hears it again
    told = [msg.INVOICE_PAID.message(payload, key=f"c:{key}", customer_id=invoice.customer_id)]
    if tell_admins:
        told.append(msg.ADMIN_PAID.message(payload, key=f"a:{key}"))
    return told


_TRANSITIONS: dict[tuple[str, ...], Any] = {}


def _transition_statement(columns: tuple[str, ...]) -> Any:
    """The compare-and-set UPDATE of an invoice's ``columns``, built once per set of columns
    (a statement used again skips SQLAlchemy's construction and cache-key work)."""
    stmt = _TRANSITIONS.get(columns)
    if stmt is None:
        stmt = (
            update(invoices)
            .where(invoices.c.id == bindparam("b_id"), invoices.c.version == bindparam("b_version"))
            .values(
                updated_at=bindparam("b_updated_at"),
                version=bindparam("b_next"),
                **{c: bindparam(f"b_{c}") for c in columns},
            )
        )
        _TRANSITIONS[columns] = stmt
    return stmt


def _deposit_payload(deposit: DepositFacts) -> msg.DepositFields:
    return {
        "dep_id": deposit.dep_id,
        "currency": deposit.currency,
        "chain": deposit.chain,
        "deposit_amount": deposit.amount_text,
        "state": deposit.state,
        "tx_id": deposit.tx_id,
        "ts": deposit.ts,
    }


async def load_invoice_versioned(
    conn: AsyncConnection, invoice_id: str
) -> tuple[InvoiceFacts, int]:
    row = (
        (await conn.execute(select(invoices).where(invoices.c.id == invoice_id))).mappings().first()
    )
    if row is None:
        raise ConcurrentChange(f"invoice {invoice_id} vanished")
    return InvoiceFacts.from_row(row), int(row["version"])


async def load_invoice(conn: AsyncConnection, invoice_id: str) -> InvoiceFacts:
    return (await load_invoice_versioned(conn, invoice_id))[0]


async def attached_deposits(conn: AsyncConnection, invoice_id: str) -> list[DepositFacts]:
    rows = await conn.execute(
        select(deposits)
        .where(deposits.c.invoice_id == invoice_id, deposits.c.disposition == st.DEP_ATTACHED)
        .order_by(deposits.c.ts, deposits.c.dep_id)
    )
    return [DepositFacts.from_row(r) for r in rows.mappings()]
