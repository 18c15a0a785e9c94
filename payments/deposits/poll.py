"""Reading OKX's deposit history: one paged request sequence per poll, whatever the number of
open invoices, then deciding what the new and changed deposits mean.

* Newest first; each next page asks for records earlier than the oldest ``ts`` seen + 1, and rows
  are de-duplicated by ``depId``, so rows sharing a millisecond never fall between pages.
* Each poll reads back to the newest ``ts`` seen minus an overlap; an hourly sweep re-reads the
  whole monitoring window. Unfinished deposits older than that (a BTC deposit created at 09:00
  that turns successful at 10:30) are re-read by ``depId``, a few per poll, oldest first.
* An unfinished deposit that a complete read of its range, or a re-read by ``depId``, no longer
  returns (a reorg, a reversed credit) is marked missing; still missing ``VANISH_CONFIRM_MS``
  later it has vanished, and an invoice it was counted for is frozen for an admin, never left
  waiting for confirmations that cannot come. Returned again, it is not missing any more.
* Nothing is written until every request of the poll has succeeded: a rate limit, a 5xx or a
  time-out leaves every row as it was, and the next poll recovers.
* Every comparison with ``ts`` uses OKX's clock (measured at each poll).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.catalog import Catalog
from payments.clock import ExchangeClock
from payments.config import PaymentSettings
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.deposits.decide import DepositProcessor, ProcessReport
from payments.exchange.base import DepositRecord, Exchange
from payments.money import DEFAULT_SCALE, to_units
from payments.storage import Database, insert_ignore
from payments.storage.kv import get_int, set_value
from payments.storage.schema import deposits, invoices

log = logging.getLogger(__name__)

PAGE = 100
MAX_PAGES = 1000
CURSOR_KEY = "poll.newest_ts"
SWEEP_KEY = "poll.last_sweep"
POLLED_UNTIL_KEY = "poll.completed_until"  # OKX time up to which every deposit has been read
VANISH_CONFIRM_MS = 10 * 60_000  # missing from every read for this long: it has vanished


@dataclass
class PollReport:
    requests: int = 0
    fetched: int = 0
    new: int = 0
    changed: int = 0
    swept: bool = False
    clock_offset_ms: int = 0
    processed: ProcessReport = field(default_factory=ProcessReport)


class DepositPoller:
    def __init__(
        self,
        db: Database,
        exchange: Exchange,
        catalog: Catalog,
        settings: PaymentSettings,
        okx_clock: ExchangeClock,
        processor: DepositProcessor,
    ) -> None:
        self.db = db
        self.exchange = exchange
        self.catalog = catalog
        self.settings = settings
        self.okx_clock = okx_clock
        self.processor = processor
        self._lock = asyncio.Lock()

    async def poll(self) -> PollReport:
        """One poll; raises ``ExchangeError`` (having written nothing) when OKX fails."""
        async with self._lock:
            return await self._poll()

    async def _poll(self) -> PollReport:
        report = PollReport()
        report.clock_offset_ms = await self.okx_clock.sync(self.exchange.server_time_ms)
        report.requests += 1
        started = self.okx_clock.now_ms()
        window_start = started - self.settings.ttl_ms - self.settings.monitor_ms
        async with self.db.read() as conn:
            cursor = await get_int(conn, CURSOR_KEY)
            last_sweep = await get_int(conn, SWEEP_KEY)
        report.swept = (
            cursor is None
            or last_sweep is None
            or started - last_sweep >= self.settings.sweep_interval_ms
        )
        since = window_start
        if not report.swept and cursor is not None:
            since = max(window_start, cursor - self.settings.poll_overlap_ms)

        records, complete = await self._read_history(since, report)
        async with self.db.read() as conn:
            stale = await _unfinished_before(conn, since, window_start, self.settings.refresh_batch)
            expected = list(stale)
            if complete:
                expected += await _unfinished_since(conn, since)
        for dep_id in stale:
            for record in await self.exchange.fetch_deposit_history(dep_id=dep_id, limit=PAGE):
                records.setdefault(record.dep_id, record)
            report.requests += 1
        missing = sorted({dep_id for dep_id in expected if dep_id not in records})
        report.fetched = len(records)

        async with self.db.transaction() as conn:
            report.new, report.changed = await self._store(conn, records.values(), started)
            if stale:  # re-read: to the back of the line, so stuck deposits never starve others
                await conn.execute(
                    update(deposits).where(deposits.c.dep_id.in_(stale)).values(updated_at=started)
                )
            if missing:
                await _mark_missing(conn, missing, started)
            newest = max((r.ts for r in records.values()), default=cursor or since)
            await set_value(conn, CURSOR_KEY, max(newest, cursor or 0), started)
            if report.swept:
                await set_value(conn, SWEEP_KEY, started, started)
            await set_value(conn, POLLED_UNTIL_KEY, started, started)
            if abs(report.clock_offset_ms) > self.settings.clock_alert_ms:
                hour = started // 3_600_000
                alert = msg.ADMIN_CLOCK.message(
                    {"offset_ms": report.clock_offset_ms}, key=f"a:clock:{hour}"
                )
                await enqueue(conn, alert, now_ms=started)
        report.processed = await self.processor.process()
        return report

    async def _read_history(
        self, since: int, report: PollReport
    ) -> tuple[dict[str, DepositRecord], bool]:
        """Every record back to ``since``; and whether the read was complete (it ended on OKX's
        last page or below ``since``, not on the page limit)."""
        records: dict[str, DepositRecord] = {}
        after: int | None = None
        for _ in range(MAX_PAGES):
            page = await self.exchange.fetch_deposit_history(after=after, limit=PAGE)
            report.requests += 1
            for record in page:
                records.setdefault(record.dep_id, record)
            if len(page) < PAGE:
                return records, True
            oldest = min(r.ts for r in page)
            if oldest < since:
                return records, True
            next_after = oldest + 1  # rows sharing the oldest millisecond are asked again
            if after is not None and next_after >= after:
                log.warning("more than %d deposits share ts %d; paging past it", PAGE, oldest)
                next_after = oldest
            after = next_after
        return records, False

    async def _store(
        self, conn: AsyncConnection, records: Iterable[DepositRecord], now: int
    ) -> tuple[int, int]:
        """Upsert by depId; a new deposit, or a changed state or amount, needs a decision."""
        batch = list(records)
        existing: dict[str, tuple[str, str]] = {}
        returned: list[str] = []  # marked vanished once, but OKX returns them again
        ids = [r.dep_id for r in batch]
        for start in range(0, len(ids), 500):
            rows = await conn.execute(
                select(
                    deposits.c.dep_id, deposits.c.state, deposits.c.amount, deposits.c.vanished_at
                ).where(deposits.c.dep_id.in_(ids[start : start + 500]))
            )
            for r in rows:
                existing[r.dep_id] = (r.state, r.amount)
                if r.vanished_at is not None:
                    returned.append(r.dep_id)
        if returned:  # its invoice stays frozen for the admin, who decides with this known
            await conn.execute(
                update(deposits).where(deposits.c.dep_id.in_(returned)).values(vanished_at=None)
            )
        fresh = [self._row(r, now) for r in batch if r.dep_id not in existing]
        new = await insert_ignore(conn, deposits, fresh, ["dep_id"]) if fresh else 0
        changed = 0
        for record in batch:
            old = existing.get(record.dep_id)
            if old is None or old == (record.state, record.amount_text):
                continue
            changed += 1
            await conn.execute(
                update(deposits)
                .where(deposits.c.dep_id == record.dep_id)
                .values(
                    state=record.state,
                    amount=record.amount_text,
                    amount_units=self._units(record),
                    tx_id=record.tx_id,
                    raw=json.dumps(dict(record.raw), sort_keys=True),
                    updated_at=now,
                    needs_decision=True,
                )
            )
        return new, changed

    def _units(self, record: DepositRecord) -> int | None:
        coin = self.catalog.coin(record.currency)
        return to_units(record.amount, coin.scale if coin else DEFAULT_SCALE)

    def _row(self, record: DepositRecord, now: int) -> dict[str, object]:
        return {
            "dep_id": record.dep_id,
            "currency": record.currency,
            "chain": record.chain,
            "amount": record.amount_text,
            "amount_units": self._units(record),
            "to_address": record.to_address,
            "tx_id": record.tx_id,
            "from_wd_id": record.from_wd_id,
            "type": record.type,
            "state": record.state,
            "ts": record.ts,
            "raw": json.dumps(dict(record.raw), sort_keys=True),
            "first_seen_at": now,
            "updated_at": now,
            "needs_decision": True,
            "disposition": st.DEP_NEW,
            "note": "",
        }


async def _unfinished_since(conn: AsyncConnection, since: int) -> list[str]:
    """Attached deposits that a complete read back to ``since`` must have returned."""
    rows = await conn.execute(
        select(deposits.c.dep_id).where(
            deposits.c.ts >= since,
            deposits.c.state.not_in(st.FINAL_DEPOSIT_STATES),
            deposits.c.disposition == st.DEP_ATTACHED,
        )
    )
    return [r[0] for r in rows]


async def _mark_missing(conn: AsyncConnection, missing: Sequence[str], now: int) -> None:
    """Missing from this poll's reads: noted the first time; still missing after
    ``VANISH_CONFIRM_MS``, it is decided again (its invoice, unless already frozen, is frozen
    for an admin by the matcher)."""
    for start in range(0, len(missing), 500):
        chunk = list(missing[start : start + 500])
        await conn.execute(
            update(deposits)
            .where(deposits.c.dep_id.in_(chunk), deposits.c.vanished_at.is_(None))
            .values(vanished_at=now)
        )
        not_frozen = select(invoices.c.id).where(invoices.c.frozen.is_(False))
        await conn.execute(
            update(deposits)
            .where(
                deposits.c.dep_id.in_(chunk),
                deposits.c.disposition == st.DEP_ATTACHED,
                deposits.c.vanished_at <= now - VANISH_CONFIRM_MS,
                deposits.c.needs_decision.is_(False),
                deposits.c.invoice_id.in_(not_frozen),
            )
            .values(needs_decision=True)
        )


async def _unfinished_before(
    conn: AsyncConnection, since: int, window_start: int, limit: int
) -> Sequence[str]:
    """Deposits older than this poll's reach that may still change state (not yet final)."""
    rows = await conn.execute(
        select(deposits.c.dep_id)
        .where(
            deposits.c.ts < since,
            deposits.c.ts >= window_start,
            deposits.c.state.not_in(st.FINAL_DEPOSIT_STATES),
            deposits.c.disposition.in_((st.DEP_ATTACHED, st.DEP_UNMATCHED)),
        )
        .order_by(deposits.c.updated_at, deposits.c.dep_id)
        .limit(limit)
    )
    return [r[0] for r in rows]
