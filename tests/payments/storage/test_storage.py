from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    from payments.storage.migrate import code_head, head_revision

    assert code_head() == head_revision()


async def test_a_database_behind_the_head_is_migrated_to_it(db: Database) -> None:
    from alembic import command

    from payments.storage.migrate import alembic_config, head_revision

    async with db.transaction() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "-1"))
    migration = await db.migrate()

    assert migration.after == head_revision()
    assert migration.before is not None and migration.before != migration.after
    assert (
        migration.line()
        == f"migrated to revision {head_revision()} (from revision {migration.before})"
    )
    async with db.read() as conn:
        assert (await conn.execute(select(schema.simulated_deposits))).all() == []


def test_reopening_a_migrated_database_leaves_alembic_unimported(tmp_path: Path) -> None:
    """Alembic is 35 MB and 0.3 s of imports that a database at head does not need."""
    url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    probe = (
        "import asyncio, sys\n"
        "from payments.storage import Database\n"
        "async def main():\n"
        "    db = Database.from_url(sys.argv[1])\n"
        "    print((await db.migrate()).line(), 'alembic' in sys.modules)\n"
        "    await db.close()\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[3]

    def start() -> str:
        run = subprocess.run(
            [sys.executable, "-c", probe, url], cwd=root, capture_output=True, text=True, check=True
        )
        return run.stdout.strip()

    first, second = start(), start()

    assert first.startswith("migrated to revision ") and first.endswith(
        "(from a new database) True"
    )
    head = first.split()[3]
    assert second == f"up to date (revision {head}) False"
