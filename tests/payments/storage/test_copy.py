"""Copying a whole shop between databases: every table, both directions, and each refusal.

The source shop holds a real purchase (paid through the fake OKX) and one still open; every
table the purchase leaves empty gets rows made from its columns (ids past 2^31, both booleans,
NULLs, non-ASCII text), so every table and every value kind is copied and compared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, Boolean, Integer, String, Table, Text, select, text, update

from payments.errors import CopyRefused
from payments.storage import Database, copy_database, schema
from payments.storage.copy import normal
from payments.storage.migrate import head_revision
from tests.botkit import _create_pg_database, _drop_pg_database
from tests.conftest import PG_URL
from tests.shop import open_shop

NOW_MS = 1_790_000_000_000
needs_pg = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")

# Tables a purchase leaves empty, filled from their columns' types. A table added later that
# neither the purchase nor this list fills fails test_the_source_shop_fills_every_table: give
# it rows here (or through the purchase) so the copy of it is tested.
FILLED_BY_COLUMNS = {
    "access_expulsions",
    "access_links",
    "claim_waits",
    "claims",
    "deposit_candidates",
    "invoice_messages",
    "leases",
    "memberships",
    "merchant_events",
    "signals",
    "simulated_deposits",
    "star_invoices",
    "star_payments",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
}


async def fill_shop(db: Database) -> None:
    """A realistic shop: one invoice paid through the fake OKX, one open; then column-made
    rows for the tables the purchase leaves empty."""
    async with open_shop(db) as shop:
        paid = await shop.buy(5_000_000_001)
        shop.pay(paid)
        await shop.buy(5_000_000_002, currency="USDT", network="TRC20")
        await shop.poll()
    async with db.transaction() as conn:
        for table in schema.metadata.sorted_tables:
            if table.name not in FILLED_BY_COLUMNS:
                continue
            if (await conn.execute(select(table).limit(1))).first() is not None:
                continue
            for i in range(3):
                await conn.execute(table.insert().values(**await _made_row(conn, table, i)))
        # an expired lease, as a stopped bot leaves it
        await conn.execute(update(schema.leases).values(expires_at=NOW_MS - 1))


async def _made_row(conn: Any, table: Table, i: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in table.columns:
        foreign = next(iter(column.foreign_keys), None)
        if foreign is not None:
            parent = foreign.column
            row[column.name] = (
                await conn.execute(select(parent).order_by(parent).offset(i % 2).limit(1))
            ).scalar()
            if row[column.name] is None:
                row[column.name] = (await conn.execute(select(parent).limit(1))).scalar_one()
        elif column.nullable and i == 2:
            row[column.name] = None
        elif isinstance(column.type, Boolean):
            row[column.name] = i % 2 == 0
        elif isinstance(column.type, BigInteger):
            row[column.name] = 5_000_000_000 + i
        elif isinstance(column.type, Integer):
            row[column.name] = 1000 + i
        elif isinstance(column.type, (String, Text)):
            length = getattr(column.type, "length", None) or 200
            row[column.name] = f"{i}-{column.name}-ünï"[:length]
        else:  # pragma: no cover - a new column type: teach this filler and normal() about it
            raise AssertionError(f"{table.name}.{column.name}: {column.type!r}")
    return row


async def contents(db: Database) -> dict[str, list[tuple[str, ...]]]:
    """Every table's rows, values normalised, in one order both databases agree on."""
    found = {}
    async with db.read() as conn:
        for table in schema.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            found[table.name] = sorted(tuple(normal(value) for value in row) for row in rows)
    return found


@pytest.fixture
async def sqlite_shop(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    db = Database.from_url(url)
    try:
        await db.migrate()
        await fill_shop(db)
    finally:
        await db.close()
    yield url


@pytest.fixture
async def pg_empty() -> AsyncIterator[str]:
    name, url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(name)


async def read(url: str) -> dict[str, list[tuple[str, ...]]]:
    db = Database.from_url(url)
    try:
        return await contents(db)
    finally:
        await db.close()


async def test_the_source_shop_fills_every_table(sqlite_shop: str) -> None:
    shop = await read(sqlite_shop)
    empty = [name for name, rows in shop.items() if not rows]
    assert empty == []


async def test_sqlite_to_sqlite_copies_every_row(sqlite_shop: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'copy' / 'shop.sqlite3'}"
    seen: list[str] = []
    report = await copy_database(
        sqlite_shop, target, now_ms=NOW_MS, batch_rows=2, progress=seen.append
    )
    source = await read(sqlite_shop)
    assert await read(target) == source
    assert seen == [f"{name}: {len(rows)} rows copied, verified" for name, rows in source.items()]
    assert report.rows == sum(len(rows) for rows in source.values())
    assert report.lines()[-1].startswith(f"total: {report.rows} rows in {len(source)} tables")


@needs_pg
async def test_sqlite_to_postgresql_and_back(
    sqlite_shop: str, pg_empty: str, tmp_path: Path
) -> None:
    await copy_database(sqlite_shop, pg_empty, now_ms=NOW_MS, batch_rows=2)
    source = await read(sqlite_shop)
    assert await read(pg_empty) == source

    # every id sequence continues after the copied ids
    target = Database.from_url(pg_empty)
    try:
        async with target.read() as conn:
            for table in schema.metadata.sorted_tables:
                column = table.autoincrement_column
                if column is None:
                    continue
                largest = (await conn.execute(select(column).order_by(column.desc()))).scalar()
                seq = (
                    await conn.execute(
                        text(f"SELECT pg_get_serial_sequence('{table.name}', '{column.name}')")
                    )
                ).scalar_one()
                last = (await conn.execute(text(f"SELECT last_value FROM {seq}"))).scalar_one()
                assert last == largest, table.name
        # the copied shop works: a new customer buys and pays on it
        async with open_shop(target) as shop:
            invoice = await shop.buy(5_000_000_003)
            shop.pay(invoice, dep_id="990000001")  # the new fake OKX counts its ids afresh
            await shop.poll()
            assert (await shop.invoice(invoice.id)).status == "paid"
    finally:
        await target.close()

    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    await copy_database(pg_empty, back, now_ms=NOW_MS)
    assert await read(back) == await read(pg_empty)


async def test_a_target_with_shop_data_is_refused_and_left_alone(
    sqlite_shop: str, tmp_path: Path
) -> None:
    target_url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    other = Database.from_url(target_url)
    try:
        await other.migrate()
        async with other.transaction() as conn:
            await conn.execute(schema.kv.insert().values(key="mine", value="1", updated_at=1))
    finally:
        await other.close()
    before = await read(target_url)

    with pytest.raises(CopyRefused, match="already holds shop data \\(table kv\\)"):
        await copy_database(sqlite_shop, target_url, now_ms=NOW_MS)
    assert await read(target_url) == before


async def test_the_same_database_is_refused(sqlite_shop: str, tmp_path: Path) -> None:
    before = await read(sqlite_shop)
    same = f"sqlite:///{tmp_path / '.' / 'shop.sqlite3'}"
    with pytest.raises(CopyRefused, match="is the source database itself"):
        await copy_database(sqlite_shop, same, now_ms=NOW_MS)
    assert await read(sqlite_shop) == before


@needs_pg
async def test_the_same_postgresql_database_is_refused(pg_empty: str) -> None:
    spelled_otherwise = pg_empty.replace("127.0.0.1", "localhost")
    with pytest.raises(CopyRefused, match="is the source database itself"):
        await copy_database(pg_empty, spelled_otherwise, now_ms=NOW_MS)


async def test_a_source_at_another_schema_version_is_refused(
    sqlite_shop: str, tmp_path: Path
) -> None:
    db = Database.from_url(sqlite_shop)
    try:
        async with db.transaction() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0010'"))
    finally:
        await db.close()
    target = tmp_path / "new.sqlite3"
    head = head_revision()
    with pytest.raises(CopyRefused, match=f"schema revision 0010 and this code at {head}"):
        await copy_database(sqlite_shop, f"sqlite:///{target}", now_ms=NOW_MS)
    assert not target.exists()


async def test_a_live_lease_is_refused_unless_forced(sqlite_shop: str, tmp_path: Path) -> None:
    db = Database.from_url(sqlite_shop)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                update(schema.leases)
                .where(schema.leases.c.name == "0-name-ünï")
                .values(holder="host-1234", expires_at=NOW_MS + 30_000)
            )
    finally:
        await db.close()
    target = tmp_path / "new.sqlite3"
    with pytest.raises(CopyRefused, match="host-1234 holds the '0-name-ünï' lease for 30 s"):
        await copy_database(sqlite_shop, f"sqlite:///{target}", now_ms=NOW_MS)
    assert not target.exists()

    await copy_database(sqlite_shop, f"sqlite:///{target}", now_ms=NOW_MS, force=True)
    assert await read(f"sqlite:///{target}") == await read(sqlite_shop)


def test_values_compare_across_drivers() -> None:
    from decimal import Decimal

    assert normal(Decimal("1.50")) == normal(Decimal("1.5"))
    assert normal(True) != normal(1)
    assert normal("1") != normal(1)
    assert normal(None) != normal("")
    assert normal(b"\x01") == normal(memoryview(b"\x01"))
    assert len({normal(v) for v in (0, False, "", None, b"")}) == 5
