"""Durable storage: the schema, the database handle and migrations."""

from payments.storage import schema
from payments.storage.db import Database, insert_ignore, normalize_url

__all__ = ["Database", "insert_ignore", "normalize_url", "schema"]
