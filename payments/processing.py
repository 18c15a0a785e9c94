"""Apply the pure decisions of ``matching`` and ``settlement`` to the database.

One call of :meth:`DepositProcessor.process` decides every deposit marked ``needs_decision`` and
commits everything those decisions change (deposit rows, invoice transitions, subscription
periods, top-up reservations, outbox messages) in ONE transaction. Every write is a
compare-and-set; if another writer got there first the whole decision is rolled back and taken
again from fresh data. Re-running over the same deposits changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from payments.applying import Applier, ConcurrentChange
from payments.catalog import Catalog
from payments.clock import Clock
from payments.config import PaymentSettings
from payments.errors import QuoteUnavailable
from payments.matching import (
    Attach,
    Freeze,
    MatchRules,
    Unmatched,
    match_deposits,
)
from payments.quotes import QuoteService
from payments.snapshot import clear_flags, load_pending, load_snapshot, pending_currencies
from payments.storage import Database

log = logging.getLogger(__name__)


def match_rules(settings: PaymentSettings, catalog: Catalog) -> MatchRules:
    allowances = {n.chain: n.allowance for c in catalog.coins for n in c.networks if n.allowance}
    return MatchRules(
        tolerance_percent=settings.tolerance_percent,
        pre_invoice_slack_ms=settings.pre_invoice_slack_ms,
        late_grace_ms=settings.late_grace_ms,
        states=settings.states,
        allowances=allowances,
    )


@dataclass
class ProcessReport:
    decided: int = 0
    attached: int = 0
    unmatched: int = 0
    frozen: int = 0
    paid: list[str] = field(default_factory=list)


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
        self.scales = {coin.symbol: coin.scale for coin in catalog.coins}
        self.batch_size = batch_size

    async def process(self) -> ProcessReport:
        """Decide every deposit that needs it; returns what happened."""
        total = ProcessReport()
        for _ in range(100):  # batches; a batch that conflicts is retried
            report = await self._process_batch_with_retry()
            if report is None:
                break
            total.decided += report.decided
            total.attached += report.attached
            total.unmatched += report.unmatched
            total.frozen += report.frozen
            total.paid.extend(report.paid)
        return total

    async def _process_batch_with_retry(self) -> ProcessReport | None:
        for attempt in range(5):
            try:
                return await self._process_batch()
            except ConcurrentChange as exc:
                log.info("decision conflicted (%s); retrying (attempt %d)", exc, attempt + 1)
        raise ConcurrentChange("deposits kept changing under the decision; will retry next poll")

    async def _rates(self, currencies: Iterable[str]) -> dict[str, Decimal | None]:
        rates: dict[str, Decimal | None] = {}
        for currency in set(currencies):
            if self.quotes is None:
                rates[currency] = None
                continue
            try:
                rates[currency] = (await self.quotes.quote(currency)).rate
            except QuoteUnavailable:
                rates[currency] = None  # late payments then wait for an admin
        return rates

    async def _process_batch(self) -> ProcessReport | None:
        async with self.db.read() as conn:
            peek = await pending_currencies(conn)
        if not peek:
            return None
        rates = await self._rates(peek)  # network I/O outside the transaction
        now = self.clock.now_ms()
        report = ProcessReport()
        async with self.db.transaction() as conn:
            batch = await load_pending(conn, self.batch_size)
            if not batch:
                return None
            snapshot = await load_snapshot(conn, batch, self.rules, self.scales)
            decisions = match_deposits(batch, snapshot, self.rules)
            applier = Applier(
                conn,
                now,
                self.rules,
                rates,
                quarantine_ms=self.settings.amount_quarantine_ms,
                offset_cap_percent=self.settings.offset_cap_percent,
            )
            by_id = {d.dep_id: d for d in batch}
            for decision in decisions:
                await applier.apply(decision, by_id[decision.dep_id])
            await applier.settle_touched()
            await clear_flags(conn, batch)
            report.decided = len(batch)
            report.attached = sum(isinstance(d, Attach) for d in decisions)
            report.unmatched = sum(isinstance(d, Unmatched) for d in decisions)
            report.frozen = sum(isinstance(d, Freeze) for d in decisions)
            report.paid = applier.paid
        return report
