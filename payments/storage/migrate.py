"""Run the Alembic migrations bundled in ``payments/migrations`` on an open connection."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("payments").joinpath("migrations")))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(connection: Connection) -> tuple[str | None, str | None]:
    """Upgrade to head; the revisions before and after (equal: it was up to date)."""
    before = current_revision(connection)
    command.upgrade(alembic_config(connection), "head")
    return before, current_revision(connection)


def head_revision() -> str | None:
    """The revision the code's migrations end at."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
