"""Every payment of a date range, for the admins' /export and the API's CSV.

Two rails, one ordered stream:

- crypto: invoices that received money and turned paid within the range (read through the
  ``(status, paid_at)`` index: paid, and paid then marked invalid by an admin), each with the
  deposits counted for it (attached, of a counted kind), looked up by invoice id;
- Telegram Stars: every charge Telegram made within the range (the ``paid_at`` index of
  ``star_payments``), refunded or not.

Each rail is read in chunks of ``chunk`` rows, keyset-paged on (paid time, id), one short read
transaction a chunk, and the two are merged by paid time: a year of payments never sits in
memory, and no connection is held while the caller writes what it got. Amounts stay exact
(Decimal from the stored text and units; Stars are integers) and are written as plain decimal
strings by :func:`to_csv`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import states as st
from payments.delivery.webhooks.events import iso_utc
from payments.money import from_units
from payments.stars.model import CURRENCY as STARS
from payments.storage import Database
from payments.storage.schema import deposits, invoices, star_payments

CHUNK = 500  # rows a statement reads
DEFAULT_DAYS = 30  # no dates given: the last 30 days, today included
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only
EXPORTED_STATUSES = (st.PAID, st.INVALID)  # invoices that were paid (invalid: paid, then undone)

Rail = Literal["crypto", "stars"]

COLUMNS = (
    "rail",
    "payment_id",
    "order_id",
    "customer_id",
    "plan",
    "currency",
    "chain",
    "amount_asked",
    "amount_received",
    "tx_hashes",
    "deposit_ids",
    "charge_id",
    "status",
    "renewal",
    "refunded_at",
    "created_at",
    "paid_at",
)


@dataclass(frozen=True)
class ExportRow:
    """One payment. Crypto: ``payment_id`` is the invoice id, amounts in the coin, the counted
    deposits' tx hashes and OKX deposit ids. Stars: ``payment_id`` is the charge's id,
    ``order_id`` its Stars order, amounts in Stars (``currency`` XTR), ``charge_id`` Telegram's,
    ``status`` paid or refunded; no creation time of its own (``created_at`` None)."""

    rail: Rail
    payment_id: str
    order_id: str
    customer_id: int
    plan: str
    currency: str
    chain: str
    amount_asked: Decimal
    amount_received: Decimal
    tx_hashes: tuple[str, ...]
    deposit_ids: tuple[str, ...]
    charge_id: str
    status: str
    renewal: bool | None  # Stars only
    refunded_at: int | None  # Stars only, ms
    created_at: int | None  # ms
    paid_at: int  # ms


class BadRange(ValueError):
    """Dates that are not YYYY-MM-DD, or a range that ends before it starts."""


@dataclass(frozen=True)
class ExportRange:
    """Whole UTC days, ``first`` to ``last`` inclusive; in ms, [``from_ms``, ``to_ms``)."""

    first: date
    last: date

    @property
    def from_ms(self) -> int:
        return _day_ms(self.first)

    @property
    def to_ms(self) -> int:
        return _day_ms(self.last + timedelta(days=1))

    @property
    def file_name(self) -> str:
        return f"payments-{self.first.isoformat()}-{self.last.isoformat()}.csv"


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def _day(text: str) -> date:
    if not _DAY.fullmatch(text):
        raise BadRange(f"not a YYYY-MM-DD date: {text[:20]!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRange(f"no such date: {text}") from None


def export_range(first: str | None, last: str | None, *, now_ms: int) -> ExportRange:
    """The days from ``first`` to ``last`` (YYYY-MM-DD, UTC, both included). Without ``last``:
    up to today; without either: the last :data:`DEFAULT_DAYS` days, today included.
    :class:`BadRange` for anything else."""
    today = datetime.fromtimestamp(now_ms // 1000, tz=UTC).date()
    end = _day(last) if last else today
    start = _day(first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise BadRange("the range ends before it starts")
    return ExportRange(start, end)


class ExportService:
    def __init__(self, db: Database, *, chunk: int = CHUNK) -> None:
        self.db = db
        self.chunk = chunk

    async def rows(self, from_ms: int, to_ms: int) -> AsyncIterator[ExportRow]:
        """Every payment paid in [``from_ms``, ``to_ms``), both rails, ordered by paid time
        (crypto before Stars at the same millisecond, then by id)."""
        crypto = self._crypto(from_ms, to_ms)
        stars = self._stars(from_ms, to_ms)
        a = await anext(crypto, None)
        b = await anext(stars, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a.paid_at <= b.paid_at):
                assert a is not None
                yield a
                a = await anext(crypto, None)
            else:
                yield b
                b = await anext(stars, None)

    async def chunks(self, from_ms: int, to_ms: int) -> AsyncIterator[list[ExportRow]]:
        """:meth:`rows` in lists of at most ``chunk`` rows."""
        batch: list[ExportRow] = []
        async for row in self.rows(from_ms, to_ms):
            batch.append(row)
            if len(batch) >= self.chunk:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _crypto(self, from_ms: int, to_ms: int) -> AsyncIterator[ExportRow]:
        after: tuple[int, str] | None = None
        while True:
            key = (invoices.c.paid_at, invoices.c.id)
            where = [
                invoices.c.status.in_(EXPORTED_STATUSES),
                invoices.c.paid_at >= from_ms,
                invoices.c.paid_at < to_ms,
            ]
            if after is not None:
                where.append(or_(key[0] > after[0], and_(key[0] == after[0], key[1] > after[1])))
            async with self.db.read() as conn:
                found = list(
                    (
                        await conn.execute(
                            select(invoices).where(*where).order_by(*key).limit(self.chunk)
                        )
                    ).mappings()
                )
                counted = await _counted_deposits(conn, [r["id"] for r in found])
            for r in found:
                got = counted.get(r["id"], [])
                yield ExportRow(
                    rail="crypto",
                    payment_id=r["id"],
                    order_id="",
                    customer_id=int(r["customer_id"]),
                    plan=r["plan_id"],
                    currency=r["currency"],
                    chain=r["chain"],
                    amount_asked=from_units(int(r["amount_units"]), int(r["scale"])),
                    amount_received=sum((Decimal(d[2]) for d in got), Decimal(0)),
                    tx_hashes=tuple(d[1] for d in got if d[1]),
                    deposit_ids=tuple(d[0] for d in got),
                    charge_id="",
                    status=r["status"],
                    renewal=None,
                    refunded_at=None,
                    created_at=int(r["created_at"]),
                    paid_at=int(r["paid_at"]),
                )
            if len(found) < self.chunk:
                return
            after = (int(found[-1]["paid_at"]), found[-1]["id"])

    async def _stars(self, from_ms: int, to_ms: int) -> AsyncIterator[ExportRow]:
        after: tuple[int, str] | None = None
        key = (star_payments.c.paid_at, star_payments.c.id)
        while True:
            where = [star_payments.c.paid_at >= from_ms, star_payments.c.paid_at < to_ms]
            if after is not None:
                where.append(or_(key[0] > after[0], and_(key[0] == after[0], key[1] > after[1])))
            async with self.db.read() as conn:
                found = list(
                    (
                        await conn.execute(
                            select(star_payments).where(*where).order_by(*key).limit(self.chunk)
                        )
                    ).mappings()
                )
            for r in found:
                stars = Decimal(int(r["stars"]))
                refunded = r["refunded_at"]
                yield ExportRow(
                    rail="stars",
                    payment_id=r["id"],
                    order_id=r["invoice_id"],
                    customer_id=int(r["customer_id"]),
                    plan=r["plan_id"],
                    currency=STARS,
                    chain="",
                    amount_asked=stars,
                    amount_received=stars,
                    tx_hashes=(),
                    deposit_ids=(),
                    charge_id=r["charge_id"],
                    status="paid" if refunded is None else "refunded",
                    renewal=bool(r["renewal"]),
                    refunded_at=None if refunded is None else int(refunded),
                    created_at=None,
                    paid_at=int(r["paid_at"]),
                )
            if len(found) < self.chunk:
                return
            after = (int(found[-1]["paid_at"]), found[-1]["id"])


async def _counted_deposits(
    conn: AsyncConnection, ids: list[str]
) -> dict[str, list[tuple[str, str, str]]]:
    """invoice id -> (deposit id, tx hash, amount) of the deposits counted for it, by time."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(
            deposits.c.invoice_id,
            deposits.c.dep_id,
            deposits.c.tx_id,
            deposits.c.amount,
            deposits.c.disposition,
            deposits.c.match_kind,
        )
        .where(deposits.c.invoice_id.in_(ids))
        .order_by(deposits.c.ts, deposits.c.dep_id)
    )
    found: dict[str, list[tuple[str, str, str]]] = {}
    for row in rows:
        if row.disposition == st.DEP_ATTACHED and row.match_kind in st.COUNTED_KINDS:
            found.setdefault(row.invoice_id, []).append((row.dep_id, row.tx_id, row.amount))
    return found


def _amount(value: Decimal) -> str:
    """An exact plain decimal string: no exponent, no trailing zeros ("1.5", "10")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def csv_line(row: ExportRow) -> list[str]:
    return [
        row.rail,
        row.payment_id,
        row.order_id,
        str(row.customer_id),
        row.plan,
        row.currency,
        row.chain,
        _amount(row.amount_asked),
        _amount(row.amount_received),
        " ".join(row.tx_hashes),
        " ".join(row.deposit_ids),
        row.charge_id,
        row.status,
        _flag(row.renewal),
        iso_utc(row.refunded_at) or "",
        iso_utc(row.created_at) or "",
        iso_utc(row.paid_at) or "",
    ]


def to_csv(rows: Iterable[ExportRow], *, header: bool = True) -> str:
    """The rows as CSV (the csv module's quoting, ``\\r\\n`` line ends), with a header row of
    :data:`COLUMNS` first unless ``header`` is False (a later chunk of a streamed export)."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(csv_line(row) for row in rows)
    return out.getvalue()
