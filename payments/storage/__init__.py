"""Durable storage: the schema, the database handle and migrations."""

from payments.storage import schema
from payments.storage.copy import CopyRefused, CopyReport, TableCopy, copy_database
from payments.storage.db import Database, insert_ignore, normalize_url

__all__ = [
    "CopyRefused",
    "CopyReport",
    "Database",
    "TableCopy",
    "copy_database",
    "insert_ignore",
    "normalize_url",
    "schema",
]
