"""Run the Alembic migrations bundled in ``payments/migrations`` on an open connection.

Alembic (and Mako under it) costs about 35 MB and 0.3 s to import, and a database that is
already at the code's head needs none of it: :func:`stored_revision` reads the revision with
one query and :func:`code_head` reads it from the migration files' ``revision`` lines, so
Alembic is imported only when there is a migration to run."""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"  # Alembic's default, which the migrations use
_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|None)\s*$", re.M)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("payments").joinpath("migrations")))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated), as Alembic reads it."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def stored_revision(connection: Connection) -> str | None:
    """The revision in the version table with one query, without Alembic (None: no table, or
    not exactly one row, which only Alembic itself should interpret)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return str(rows[0]) if len(rows) == 1 else None


@functools.cache
def code_head() -> str | None:
    """The head of the migration files, from their ``revision``/``down_revision`` lines (None
    when they do not form one line of revisions: then ask Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    versions = resources.files("payments").joinpath("migrations", "versions")
    for entry in versions.iterdir():
        if not entry.name.endswith(".py"):
            continue
        found = {m[0]: m[1] or m[2] for m in _REVISION.findall(entry.read_text(encoding="utf-8"))}
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def upgrade_to_head(connection: Connection) -> tuple[str | None, str | None]:
    """Upgrade to head; the revisions before and after (equal: it was up to date). Alembic is
    imported only when the database is not at the code's head."""
    stored = stored_revision(connection)
    if stored is not None and stored == code_head():
        return stored, stored
    from alembic import command

    before = current_revision(connection)
    command.upgrade(alembic_config(connection), "head")
    return before, current_revision(connection)


def head_revision() -> str | None:
    """The revision the code's migrations end at."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
