"""Copy a whole shop from one database to another (SQLite or PostgreSQL, either way round).

``copy_database(source_url, target_url)`` is what ``python -m bot migrate-to`` runs when a
merchant moves from SQLite to PostgreSQL (or back). It refuses, before writing anything, when:

- the source and the target are the same database;
- the source is not at the code's schema version (start the bot once on it, or update the code);
- the source's lease is held by a live replica (the bot is running; ``force`` overrides);
- the target already holds any row of the shop.

Then it migrates the target to the code's schema, copies every table in foreign-key order in
batches (a stream from one read snapshot of the source, never the whole table in memory) inside
one transaction on the target, moves PostgreSQL's id sequences past the copied ids, and checks
every table before committing: the same number of rows and the same content (an
order-independent digest of the rows, values normalised across the drivers). A mismatch rolls
the whole copy back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Row, Table, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import ConfigError, CopyRefused, PaymentsError
from payments.storage.db import Database, normalize_url
from payments.storage.schema import leases, metadata

BATCH_ROWS = 500
_DIGEST_MOD = 1 << 256


@dataclass(frozen=True)
class TableCopy:
    """One table's outcome: rows copied, and whether the target's rows match the source's."""

    name: str
    rows: int

    def line(self) -> str:
        return f"{self.name}: {self.rows} rows copied, verified"


@dataclass(frozen=True)
class CopyReport:
    source: str  # URLs as shown to a person: the password hidden
    target: str
    migration: str  # what migrating the target did
    tables: tuple[TableCopy, ...]

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    def lines(self) -> list[str]:
        return [
            *(table.line() for table in self.tables),
            f"total: {self.rows} rows in {len(self.tables)} tables copied from {self.source}"
            f" to {self.target} and verified",
        ]


def shown(url: str) -> str:
    """A database URL as printed: its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show nothing of it
        return "<invalid URL>"


def tables() -> list[Table]:
    """Every table of the shop, parents before the tables that point at them."""
    return list(metadata.sorted_tables)


async def copy_database(
    source_url: str,
    target_url: str,
    *,
    now_ms: int,
    force: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[str], None] | None = None,
) -> CopyReport:
    """Copy every row of ``source_url``'s shop into ``target_url`` (see the module's text).

    Raises :class:`CopyRefused` (nothing written) for the refusals above, ``ConfigError`` for
    a URL that cannot be used. ``progress`` hears one line per table once verified.
    """
    from payments.storage.migrate import current_revision, head_revision

    source_full, target_full = normalize_url(source_url), normalize_url(target_url)
    if _same_database(source_full, target_full):
        raise CopyRefused(f"the target {shown(target_url)} is the source database itself")
    source_file = _sqlite_file(source_full)
    if source_file is not None and not source_file.is_file():
        raise CopyRefused(f"the source database {shown(source_url)} does not exist")
    source = Database.from_url(source_full)
    try:
        async with source.read() as conn:
            revision = await conn.run_sync(current_revision)
            head = head_revision()
            if revision != head:
                raise CopyRefused(
                    f"the source database is at schema revision {revision} and this code at"
                    f" {head}: run this version of the bot on it once (or update the code) first"
                )
            if not force:
                await _refuse_live_lease(conn, now_ms)
        target = Database.from_url(target_full)
        try:
            await _refuse_shop_data(target, target_url)
            migration = await target.migrate()
            copied = await _copy(source, target, batch_rows, progress)
        finally:
            await target.close()
    finally:
        await source.close()
    return CopyReport(shown(source_url), shown(target_url), migration.line(), copied)


async def _refuse_live_lease(conn: AsyncConnection, now_ms: int) -> None:
    live = (
        await conn.execute(
            select(leases.c.name, leases.c.holder, leases.c.expires_at)
            .where(leases.c.expires_at > now_ms)
            .order_by(leases.c.name)
        )
    ).first()
    if live is not None:
        seconds = max(1, (int(live.expires_at) - now_ms + 999) // 1000)
        raise CopyRefused(
            f"the bot looks alive: {live.holder} holds the {live.name!r} lease for {seconds} s"
            " more; stop every replica first (or pass --force if it has stopped)"
        )


async def _refuse_shop_data(target: Database, target_url: str) -> None:
    """Any row of the shop's tables in the target refuses the copy (before migrating it)."""
    async with target.read() as conn:
        present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        for table in tables():
            if table.name not in present:
                continue
            if (await conn.execute(select(table).limit(1))).first() is not None:
                raise CopyRefused(
                    f"the target {shown(target_url)} already holds shop data (table"
                    f" {table.name}): copy only into an empty database"
                )


async def _copy(
    source: Database,
    target: Database,
    batch_rows: int,
    progress: Callable[[str], None] | None,
) -> tuple[TableCopy, ...]:
    copied: list[TableCopy] = []
    # one snapshot of the source for the copy and its check; one transaction on the target
    async with source.read() as src, target.transaction() as dst:
        for table in tables():
            if (await dst.execute(select(table).limit(1))).first() is not None:
                raise CopyRefused(f"the target's table {table.name} is not empty")
            rows = 0
            stream = await src.stream(select(table).execution_options(yield_per=batch_rows))
            async for batch in stream.partitions(batch_rows):
                await dst.execute(table.insert(), [dict(row._mapping) for row in batch])
                rows += len(batch)
            if dst.dialect.name == "postgresql":
                await _reset_sequence(dst, table)
            source_count, source_sum = await _fingerprint(src, table, batch_rows)
            target_count, target_sum = await _fingerprint(dst, table, batch_rows)
            if (source_count, source_sum) != (rows, target_sum) or target_count != rows:
                raise PaymentsError(
                    f"{table.name}: the copy does not match the source ({source_count} rows in"
                    f" the source, {target_count} in the target); nothing was committed"
                )
            done = TableCopy(table.name, rows)
            copied.append(done)
            if progress is not None:
                progress(done.line())
    return tuple(copied)


async def _reset_sequence(conn: AsyncConnection, table: Table) -> None:
    """Move the table's id sequence (serial or identity) to its largest copied id."""
    column = table.autoincrement_column
    if column is None:
        return
    sequence = (
        await conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": column.name},
        )
    ).scalar()
    if sequence is None:
        return
    largest = (await conn.execute(select(func.max(column)))).scalar()
    await conn.execute(
        text("SELECT setval(CAST(:sequence AS regclass), :value, :called)"),
        {"sequence": sequence, "value": largest or 1, "called": largest is not None},
    )


async def _fingerprint(conn: AsyncConnection, table: Table, batch_rows: int) -> tuple[int, int]:
    """The table's row count and an order-independent digest of its rows (the sum of each
    row's SHA-256, values normalised so both drivers give the same digest for the same row;
    the databases' string orders differ, so no ORDER BY is trusted)."""
    count = 0
    digest = 0
    stream = await conn.stream(select(table).execution_options(yield_per=batch_rows))
    async for batch in stream.partitions(batch_rows):
        for row in batch:
            count += 1
            digest = (digest + row_digest(table, row)) % _DIGEST_MOD
    return count, digest


def row_digest(table: Table, row: Row[Any]) -> int:
    """One row's SHA-256 as an integer, over its columns' names and normalised values."""
    h = hashlib.sha256()
    for column in table.columns:
        h.update(column.name.encode())
        h.update(b"=")
        h.update(normal(row._mapping[column.name]).encode())
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "big")


def normal(value: Any) -> str:
    """A value as text the same on both drivers: ints, Decimals (or numeric strings stay
    strings), booleans, bytes and None each with their own tag."""
    if value is None:
        return "n"
    if isinstance(value, bool):
        return f"b{int(value)}"
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, Decimal):
        return f"d{value.normalize():f}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"x{bytes(value).hex()}"
    if isinstance(value, str):
        return f"s{value}"
    raise ConfigError(f"cannot compare a {type(value).__name__} value across databases")


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(parsed.database or "").expanduser()


def _same_database(a: str, b: str) -> bool:
    """Both URLs name one database: the same SQLite file, or the same PostgreSQL server and
    database (by host, port and name as written: a different host name for the same server
    is not caught)."""
    file_a, file_b = _sqlite_file(a), _sqlite_file(b)
    if file_a is not None or file_b is not None:
        if file_a is None or file_b is None:
            return False
        if file_a.exists() and file_b.exists():
            return os.path.samefile(file_a, file_b)
        return file_a.resolve() == file_b.resolve()
    url_a, url_b = make_url(a), make_url(b)
    return _server(url_a.host, url_a.port, url_a.database) == _server(
        url_b.host, url_b.port, url_b.database
    )


def _server(host: str | None, port: int | None, database: str | None) -> tuple[str, int, str]:
    local = {None, "", "localhost", "127.0.0.1", "::1"}
    return ("localhost" if host in local else str(host), port or 5432, database or "")


__all__ = ["CopyRefused", "CopyReport", "TableCopy", "copy_database", "shown"]
