"""The database handle: an async SQLAlchemy engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

``Database.transaction()`` is the only way the core writes: one transaction per decision, committed
when the block ends, rolled back on any exception. Repositories never commit on their own.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import stat
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from payments.errors import ConfigError

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def normalize_url(url: str) -> str:
    """``sqlite:///x`` -> ``sqlite+aiosqlite:///x``; ``postgres(ql)://`` -> ``postgresql+asyncpg://``.

    Raises ConfigError naming DATABASE_URL (without echoing a password) when it is not usable.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a port that is not a number
        raise ConfigError("DATABASE_URL is not a valid database URL") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError(f"DATABASE_URL: unsupported database {backend!r} (use sqlite or postgresql)")


@dataclass(frozen=True)
class Migration:
    """What :meth:`Database.migrate` did: the revision before (None: a new database) and after."""

    before: str | None
    after: str | None

    def line(self) -> str:
        """``migrated to revision 0011`` (from ..., or a new database), or ``up to date``."""
        if self.before == self.after:
            return f"up to date (revision {self.after})"
        source = "a new database" if self.before is None else f"revision {self.before}"
        return f"migrated to revision {self.after} (from {source})"


class Database:
    """One engine plus the rules of writing to it."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        schema: str | None = None,
        probe_engine: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        # a connection opened afresh for each health probe (SQLite: the pool keeps its files
        # open, so only a new connection notices a database that went away)
        self._probe_engine = probe_engine
        self.dialect = engine.dialect.name  # "sqlite" | "postgresql"
        # SQLite has one writer at a time: serialise our own write transactions in-process
        # instead of spinning on SQLITE_BUSY (one replica only with SQLite).
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self.migration: Migration | None = None  # set by migrate()

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None, echo: bool = False) -> Database:
        """Open a database by URL. ``schema`` (PostgreSQL only) sets the search_path (tests)."""
        full = normalize_url(url)
        parsed = make_url(full)
        connect_args: dict[str, Any] = {}
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and Path(database).expanduser().is_dir():  # before aiosqlite's thread
                raise ConfigError(f"DATABASE_URL: {database} is a folder, not a database file")
            if database and database != ":memory:":
                _private_sqlite_file(Path(database).expanduser())
            connect_args["timeout"] = 30
            if database in ("", ":memory:"):
                raise ConfigError("DATABASE_URL: an in-memory SQLite database is not supported")
            # pooled (SQLAlchemy's default for a file): a new aiosqlite connection costs a
            # thread and four PRAGMAs, about 1.5 ms of CPU per transaction (bench/conversation)
            kwargs["pool_size"] = 8
        else:
            if schema is not None:
                if not _SCHEMA_NAME.match(schema):
                    raise ConfigError(f"invalid schema name {schema!r}")
                connect_args["server_settings"] = {"search_path": schema}
            kwargs["pool_pre_ping"] = True
        engine = create_async_engine(full, echo=echo, connect_args=connect_args, **kwargs)
        probe = None
        if engine.dialect.name == "sqlite":
            _install_sqlite_hooks(engine)
            probe = create_async_engine(full, connect_args=connect_args, poolclass=NullPool)
            _install_sqlite_hooks(probe)
        return cls(engine, schema=schema, probe_engine=probe)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: commits at the end of the block, rolls back on an exception."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self, *, fresh: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (SQLite: a deferred transaction that does not block writers).
        ``fresh``: on a connection opened for it (health probes), not one from the pool."""
        engine = self._probe_engine if fresh and self._probe_engine is not None else self.engine
        async with engine.connect() as conn:
            conn = await conn.execution_options(subsbot_read=True)
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> Migration:
        """Apply the Alembic migrations up to head (idempotent); kept as :attr:`migration`."""
        from payments.storage.migrate import upgrade_to_head

        async with self.transaction() as conn:
            if self.dialect == "postgresql":
                # Two replicas starting together must not migrate at the same time.
                await conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
            before, after = await conn.run_sync(upgrade_to_head)
        self.migration = Migration(before, after)
        return self.migration

    async def close(self) -> None:
        await self.engine.dispose()
        if self._probe_engine is not None:
            await self._probe_engine.dispose()


def _private_sqlite_file(path: Path) -> None:
    """The database file created 0600 in folders created 0700 (SQLite gives its -wal and -shm
    files the database file's mode): customer ids, invoices and tx hashes are nobody else's.
    A folder or file that already exists is left as it is (the operator's, e.g. a volume), with
    a warning when other users can read it."""
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        for folder in reversed(missing):
            folder.mkdir(mode=0o700, exist_ok=True)
        if not path.parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
    except OSError as exc:  # a file in the way, no permission, read-only disk
        folder_name = exc.filename or path.parent
        raise ConfigError(
            f"DATABASE_URL: cannot create the folder {folder_name} ({exc.strerror})"
        ) from exc
    created = False
    try:
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            created = True
    except FileExistsError:  # created meanwhile (another replica): as if it had been there
        pass
    except OSError as exc:
        raise ConfigError(f"DATABASE_URL: cannot create {path} ({exc.strerror})") from exc
    mode = stat.S_IMODE(path.stat().st_mode)
    if not created and mode & 0o077:
        log.warning(
            "the database %s can be read by other users (mode %o): chmod 600 it (SQLite gives"
            " its -wal and -shm files the same mode)",
            path,
            mode,
        )
    mode = stat.S_IMODE(path.parent.stat().st_mode)
    if path.parent not in missing and mode & 0o077:
        log.warning(
            "the database's folder %s is open to other users (mode %o; left as it is): chmod 700"
            " it to keep even the files' names private",
            path.parent,
            mode,
        )


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Take control of SQLite transactions (pysqlite's implicit BEGIN is unreliable)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("subsbot_read"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


async def insert_ignore(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    index_elements: Sequence[str],
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on either database; returns the number of rows inserted."""
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    if isinstance(values, Mapping):
        result = await conn.execute(stmt.values(**values))
    else:
        if not values:
            return 0
        result = await conn.execute(stmt, list(values))
    return int(result.rowcount or 0)
