"""The layers, each rule with a test showing its scan catches a planted offender:

(a) payments/ never imports telegram or bot (it is a Telegram-free library);
(b) bot/ holds no SQL (no sqlalchemy, no payments.storage);
(c) bot/ imports only the public faces of payments: ``payments``, a subpackage's ``__init__``
    (only the names in its ``__all__``) or one of the single-module faces, never a module
    inside a subpackage;
(d) bot/ never touches the database handle of payments (``.db``): Payments hands it services.

Every scan reads the code with :mod:`ast`, so a docstring or comment naming a module is no offence.
"""

from __future__ import annotations

import ast
import importlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tests.paths import REPO

ROOT = REPO

# the subpackages of payments whose __init__ is a public face (migrations is data, not code)
SUBPACKAGES = (
    "access",
    "botstate",
    "delivery",
    "deposits",
    "exchange",
    "invoicing",
    "ops",
    "pricing",
    "stars",
    "storage",
    "subscriptions",
)
# top-level modules that are a face of their own: any name they define is public
SINGLE_MODULE_FACES = ("catalog", "clock", "config", "errors", "facts", "money", "states")
PACKAGE_FACES = ("payments", *(f"payments.{name}" for name in SUBPACKAGES))
FACES = (*PACKAGE_FACES, *(f"payments.{name}" for name in SINGLE_MODULE_FACES))


def _files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert len(files) > 15  # the scan really looked at the package
    return files


def _imports(source: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names imported from it: empty for ``import module``) for each import."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def _top(module: str) -> str:
    return module.split(".")[0]


def telegram_imports(source: str) -> list[int]:
    """Rule (a): lines importing telegram or bot (``payments.botstate`` is neither)."""
    return [line for line, module, _ in _imports(source) if _top(module) in ("telegram", "bot")]


def sql_imports(source: str) -> list[int]:
    """Rule (b): lines importing sqlalchemy or payments.storage."""
    return [
        line
        for line, module, names in _imports(source)
        if _top(module) == "sqlalchemy"
        or module == "payments.storage"
        or module.startswith("payments.storage.")
        or (module == "payments" and "storage" in names)
    ]


def _public_names(face: str) -> set[str]:
    return set(importlib.import_module(face).__all__)


def private_imports(source: str) -> list[str]:
    """Rule (c): each import from payments that is not through a public face, as
    "line: module" or "line: module.name" (a name neither in the face's ``__all__`` nor a
    face itself)."""
    found: list[str] = []
    for line, module, names in _imports(source):
        if _top(module) != "payments":
            continue
        if module not in FACES:
            found.append(f"{line}: {module}")
        elif module in PACKAGE_FACES:
            public = _public_names(module)
            found += [
                f"{line}: {module}.{name}"
                for name in names
                if name not in public and f"{module}.{name}" not in FACES  # e.g. payments.access
            ]
    return found


def db_uses(source: str) -> list[str]:
    """Rule (d): every ``<something>.db`` the code reads, as written."""
    return [
        ast.unparse(node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "db"
    ]


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# (a) payments/ never imports telegram or bot


def test_payments_never_imports_the_telegram_layer() -> None:
    found = {_relative(p): telegram_imports(p.read_text("utf-8")) for p in _files("payments")}
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_the_telegram_scan_catches_a_planted_import() -> None:
    assert telegram_imports("from telegram import Bot\n") == [1]
    assert telegram_imports("x = 1\nimport telegram.ext\n") == [2]
    assert telegram_imports("def f():\n    from bot.texts import Texts\n") == [2]
    assert telegram_imports("import bot\n") == [1]
    assert telegram_imports("from payments.botstate import Lease\n") == []
    assert telegram_imports('"""from telegram import Bot"""\n') == []  # a docstring is fine


# (b) bot/ holds no SQL


def test_the_bot_holds_no_sql() -> None:
    found = {_relative(p): sql_imports(p.read_text("utf-8")) for p in _files("bot")}
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_the_sql_scan_catches_a_planted_import() -> None:
    assert sql_imports("from sqlalchemy import select\n") == [1]
    assert sql_imports("import sqlalchemy.ext.asyncio\n") == [1]
    assert sql_imports("import payments.storage.schema as s\n") == [1]
    assert sql_imports("from payments.storage import Database\n") == [1]
    assert sql_imports("from payments import storage\n") == [1]
    assert sql_imports("from payments import Payments\n") == []


# (c) bot/ imports only the public faces of payments


def test_every_subpackage_of_payments_has_a_public_face() -> None:
    on_disk = {
        p.parent.name
        for p in (ROOT / "payments").glob("*/__init__.py")
        if p.parent.name != "migrations"
    }
    assert on_disk == set(SUBPACKAGES)
    for face in PACKAGE_FACES:
        module = importlib.import_module(face)
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert module.__all__ and missing == [], face
    for name in SINGLE_MODULE_FACES:
        assert (ROOT / "payments" / f"{name}.py").is_file(), name


def test_the_bot_imports_only_public_faces() -> None:
    found = {_relative(p): private_imports(p.read_text("utf-8")) for p in _files("bot")}
    assert {path: hits for path, hits in found.items() if hits} == {}


def test_the_face_scan_catches_a_planted_import() -> None:
    assert private_imports("from payments.invoicing.storefront import Storefront\n") == [
        "1: payments.invoicing.storefront"
    ]
    assert private_imports("import payments.deposits.claims\n") == ["1: payments.deposits.claims"]
    assert private_imports("from payments.ops import prune, _no_such_name\n") == [
        "1: payments.ops._no_such_name"
    ]
    assert private_imports("from payments import wiring\n") == ["1: payments.wiring"]
    assert private_imports("from payments.wiring import Payments\n") == ["1: payments.wiring"]
    fine = (
        "from payments import Payments, access, errors\n"
        "from payments.invoicing import Storefront\n"
        "from payments.errors import ConfigError\n"
        "import payments\n"
        "from telegram import Bot\n"
    )
    assert private_imports(fine) == []


# (d) bot/ never touches the database handle of payments


def test_the_bot_never_touches_the_database_handle() -> None:
    found = {_relative(p): Counter(db_uses(p.read_text("utf-8"))) for p in _files("bot")}
    unexpected = {path: sorted(uses) for path, uses in found.items() if uses}
    assert unexpected == {}


def test_the_database_handle_scan_catches_a_planted_use() -> None:
    assert db_uses("health = await check_health(services.payments.db)\n") == [
        "services.payments.db"
    ]
    assert db_uses("if payments.db.dialect == 'postgresql': pass\n") == ["payments.db"]
    assert db_uses("store = LeaseStore(self.payments.db, 'jobs')\n") == ["self.payments.db"]
    assert db_uses("db = payments.lease('jobs')\nx = payments.dbs\n") == []
