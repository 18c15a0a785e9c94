from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from payments.storage import Database, schema


async def test_migrations_match_the_schema_and_rerun_harmlessly(db: Database) -> None:
    await db.migrate()  # second run: nothing to do

    async with db.read() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), schema.metadata)
        )
    assert diff == []


async def test_big_unit_amounts_round_trip_exactly(db: Database) -> None:
    # 92 billion units (920 BTC at 1e-8) is past 2^31: BigInteger, never a float.
    async with db.transaction() as conn:
        await conn.execute(
            schema.kv.insert().values(key="k", value="v", updated_at=9_223_372_036_854_775_000)
        )
    async with db.read() as conn:
        got = (await conn.execute(select(schema.kv.c.updated_at))).scalar_one()
    assert got == 9_223_372_036_854_775_000


async def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    try:
        async with db.transaction() as conn:
            await conn.execute(schema.kv.insert().values(key="a", value="1", updated_at=1))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with db.read() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM kv"))).scalar_one()
    assert count == 0


def test_no_column_stores_money_as_a_float() -> None:
    from sqlalchemy import Float, Numeric

    inexact = [
        f"{table.name}.{column.name}"
        for table in schema.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Float | Numeric)
    ]
    assert inexact == []
    amounts = [
        (t.name, c.name)
        for t in schema.metadata.sorted_tables
        for c in t.columns
        if "amount" in c.name
    ]
    assert ("reservations", "amount_units") in amounts and ("deposits", "amount") in amounts
