"""Shared fixtures: a migrated database on SQLite and (when TEST_DATABASE_URL is set) PostgreSQL.

Markers by folder: everything under ``tests/e2e`` is ``e2e`` (the whole bot over the loopback
fakes) and everything under ``tests/soak`` is ``soak``, so ``pytest -m "not e2e and not soak"``
is the fast part."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from payments.clock import ManualClock
from payments.storage import Database

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
TESTS = Path(__file__).resolve().parent
MARKED_FOLDERS = {"e2e": pytest.mark.e2e, "soak": pytest.mark.soak}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        if folder in MARKED_FOLDERS:
            item.add_marker(MARKED_FOLDERS[folder])


def backends() -> list[object]:
    """pytest params: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""
    return [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set"),
            ],
        ),
    ]


async def open_database(backend: str, tmp_path: Path) -> tuple[Database, str | None]:
    """A fresh, migrated database; on PostgreSQL a schema of its own (dropped afterwards)."""
    if backend == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp_path / 'subsbot.sqlite3'}")
        await db.migrate()
        return db, None
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    raw = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await raw.execute(f"CREATE SCHEMA {schema}")
    finally:
        await raw.close()
    db = Database.from_url(PG_URL, schema=schema)
    await db.migrate()
    return db, schema


async def drop_schema(schema: str) -> None:
    import asyncpg

    raw = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await raw.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await raw.close()


@pytest.fixture(params=backends())
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database, once per backend (SQLite always, PostgreSQL with TEST_DATABASE_URL)."""
    database, schema = await open_database(str(request.param), tmp_path)
    try:
        yield database
    finally:
        await database.close()
        if schema is not None:
            await drop_schema(schema)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
