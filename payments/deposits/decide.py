"""Apply the pure decisions of ``matching`` and ``settlement`` to the database.

One call of :meth:`DepositProcessor.process` decides every deposit marked ``needs_decision`` and
commits everything those decisions change (deposit rows, invoice transitions, subscription
periods, top-up reservations, outbox messages) in ONE transaction. Every write is a
compare-and-set; if another writer got there first the whole decision is rolled back and taken
again from fresh data. Re-running over the same deposits changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from payments import states as st
from payments.catalog import Catalog
from payments.clock import Clock
from payments.config import PaymentSettings
from payments.deposits.matching import (
    DECISION_ERROR,
    Attach,
    Freeze,
    MatchRules,
    Unmatched,
    match_deposits,
)
from payments.deposits.record import Applier, ConcurrentChange
from payments.deposits.snapshot import clear_flags, load_pending, load_snapshot, pending_currencies
from payments.errors import QuoteUnavailable
from payments.facts import DepositFacts
from payments.pricing.quotes import QuoteService
from payments.storage import Database
from payments.storage.schema import deposits

log = logging.getLogger(__name__)

# A late payment settles by itself only at a known current rate; without one it goes to an
# admin. One failed ticker request must not decide that, so a failed quote is asked again.
QUOTE_TRIES = 3
QUOTE_PAUSE_S = 0.5  # before the second try; doubled before the third


def match_rules(settings: PaymentSettings, catalog: Catalog) -> MatchRules:
    """The one set of matching rules of a shop: the poller and claims both use it."""
    allowances = {n.chain: n.allowance for c in catalog.coins for n in c.networks if n.allowance}
    return MatchRules(
        tolerance_percent=settings.tolerance_percent,
        pre_invoice_slack_ms=settings.pre_invoice_slack_ms,
        late_grace_ms=settings.late_grace_ms,
        states=settings.states,
        allowances=allowances,
        sold=frozenset((c.symbol, n.chain) for c in catalog.coins for n in c.networks),
        scales={coin.symbol: coin.scale for coin in catalog.coins},
    )


@dataclass
class ProcessReport:
    decided: int = 0
    attached: int = 0
    unmatched: int = 0
    frozen: int = 0
    paid: list[str] = field(default_factory=list)

    def merge(self, other: ProcessReport) -> None:
        self.decided += other.decided
        self.attached += other.attached
        self.unmatched += other.unmatched
        self.frozen += other.frozen
        self.paid.extend(other.paid)


class DepositProcessor:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        settings: PaymentSettings,
        clock: Clock,
        quotes: QuoteService | None = None,
        *,
        batch_size: int = 2000,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.quotes = quotes
        self.rules = match_rules(settings, catalog)
        self.batch_size = batch_size

    async def process(self) -> ProcessReport:
        """Decide every deposit that needs it; returns what happened.

        A database or concurrency error propagates (nothing was written; the next poll tries
        again), and so does nothing else that does not depend on one deposit: prices are asked
        before any decision and a missing price is a decision input, never an error. Any other
        error is a deposit this code cannot decide: it is found by deciding one deposit at a
        time and handed to an admin (a new one unmatched, an attached one by freezing its
        invoice), and the rest go on being decided, so one odd record never stops every
        payment behind it.
        """
        total = ProcessReport()
        size = self.batch_size
        for _ in range(10_000):
            try:
                report = await self._process_batch_with_retry(size)
            except (ConcurrentChange, SQLAlchemyError, OSError):
                raise
            except Exception:
                if size > 1:
                    log.exception("a decision failed; deciding one deposit at a time")
                    size = 1
                    continue
                await self._quarantine_first()
                size = self.batch_size
                continue
            if report is None:
                break
            total.merge(report)
        return total

    async def _quarantine_first(self) -> None:
        """The next pending deposit, decided alone, made the decision fail: an admin decides.
        That is a decision too (the only way a needs-decision flag is cleared): a new deposit
        is unmatched, an attached one freezes its invoice."""
        now = self.clock.now_ms()
        async with self.db.transaction() as conn:
            rows = await conn.execute(
                select(deposits)
                .where(deposits.c.needs_decision.is_(True))
                .order_by(deposits.c.ts, deposits.c.dep_id)
                .limit(1)
            )
            row = rows.mappings().first()
            if row is None:
                return
            deposit = DepositFacts.from_row(row)
            log.error("deposit %s cannot be decided; sent to the admin queue", deposit.dep_id)
            applier = Applier(conn, now, self.rules, {}, settings=self.settings)
            if deposit.disposition == st.DEP_NEW:
                await applier.apply(Unmatched(deposit.dep_id, DECISION_ERROR), deposit)
            elif deposit.disposition == st.DEP_ATTACHED and deposit.invoice_id is not None:
                await applier.apply(
                    Freeze(deposit.dep_id, deposit.invoice_id, DECISION_ERROR), deposit
                )
            await applier.finish(settle=False)
            await clear_flags(conn, [deposit])

    async def _process_batch_with_retry(self, size: int) -> ProcessReport | None:
        for attempt in range(5):
            try:
                return await self._process_batch(size)
            except ConcurrentChange as exc:
                log.info("decision conflicted (%s); retrying (attempt %d)", exc, attempt + 1)
        raise ConcurrentChange("deposits kept changing under the decision; will retry next poll")

    async def _rates(self, currencies: Iterable[str]) -> dict[str, Decimal | None]:
        """Today's rate of each catalogue currency, or None (late payments then wait for an
        admin). Never raises: a price is an input of some decisions, not a reason to stop them,
        and a currency the catalogue does not sell is never priced at all."""
        wanted = set(currencies) & set(self.catalog.currencies)
        rates: dict[str, Decimal | None] = {}
        if self.quotes is None:
            return dict.fromkeys(wanted)
        pause = QUOTE_PAUSE_S
        for attempt in range(QUOTE_TRIES):
            for currency in sorted(wanted - rates.keys()):
                try:
                    rates[currency] = (await self.quotes.quote(currency)).rate
                except QuoteUnavailable:
                    pass
                except Exception:  # a bug or an odd answer: the same as no price
                    log.exception("price of %s unavailable", currency)
            missing = sorted(wanted - rates.keys())
            if not missing:
                break
            if attempt + 1 < QUOTE_TRIES:
                log.info("prices unavailable for %s; asking again", ", ".join(missing))
                await asyncio.sleep(pause)
                pause *= 2
        return {currency: rates.get(currency) for currency in wanted}

    async def _process_batch(self, size: int) -> ProcessReport | None:
        async with self.db.read() as conn:
            peek = await pending_currencies(conn)
        if not peek:
            return None
        rates = await self._rates(peek)  # network I/O outside the transaction
        now = self.clock.now_ms()
        report = ProcessReport()
        async with self.db.transaction() as conn:
            batch = await load_pending(conn, size)
            if not batch:
                return None
            snapshot = await load_snapshot(conn, batch, self.rules)
            decisions = match_deposits(batch, snapshot, self.rules)
            applier = Applier(
                conn,
                now,
                self.rules,
                rates,
                settings=self.settings,
                seen={i.id: i.version for i in snapshot.invoices.values()},
            )
            by_id = {d.dep_id: d for d in batch}
            for decision in decisions:
                await applier.apply(decision, by_id[decision.dep_id])
            await applier.finish()
            await clear_flags(conn, batch)
            report.decided = len(batch)
            report.attached = sum(isinstance(d, Attach) for d in decisions)
            report.unmatched = sum(isinstance(d, Unmatched) for d in decisions)
            report.frozen = sum(isinstance(d, Freeze) for d in decisions)
            report.paid = applier.paid
        return report
