"""The layers: the bot holds no SQL and money code holds no Telegram types."""

from __future__ import annotations

import re

from tests.paths import REPO

ROOT = REPO
SQL = re.compile(r"^\s*(from|import)\s+(sqlalchemy|payments\.storage)(\.|\s|$)", re.MULTILINE)


def test_the_bot_holds_no_sql() -> None:
    files = list((ROOT / "bot").rglob("*.py"))
    offenders = [str(p.relative_to(ROOT)) for p in files if SQL.search(p.read_text("utf-8"))]
    assert offenders == []
    assert len(files) > 15  # the scan really looked at the package


def test_the_scan_catches_an_sql_import() -> None:
    assert SQL.search("from sqlalchemy import select\n")
    assert SQL.search("import payments.storage.schema as s\n")
    assert not SQL.search("from payments import Payments\n")
