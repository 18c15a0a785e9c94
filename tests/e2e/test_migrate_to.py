"""``python -m bot migrate-to URL`` as a merchant runs it: a process reading DATABASE_URL, one
line per table, then ``python -m bot check`` against the copy; refusals in one line, no password."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.check import run_check
from bot.config import load_settings
from fakes.okx import FakeOkx
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from payments.storage import Database, schema
from tests.botkit import _create_pg_database, _drop_pg_database
from tests.conftest import PG_URL
from tests.payments.storage.test_copy import contents, fill_shop


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeOkx]]:
    tg = FakeTelegram().start()
    okx = FakeOkx().start()
    try:
        yield tg, okx
    finally:
        tg.stop()
        okx.stop()


async def _shop(url: str) -> dict[str, list[tuple[str, ...]]]:
    db = Database.from_url(url)
    try:
        await db.migrate()
        await fill_shop(db)
        return await contents(db)
    finally:
        await db.close()


def _migrate_to(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "migrate-to", *args],
        env=env,
        cwd=env["HOME"],  # no .env of a developer's
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _copy_and_check(
    fakes: tuple[FakeTelegram, FakeOkx],
    tmp_path: Path,
    target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tg, okx = fakes
    source = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    rows = await _shop(source)
    env = bot_env(tg, okx, source, admins="1", home=tmp_path)

    result = _migrate_to(env, target)

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "subsbot: the bot must be stopped (every replica) while its database is copied"
    ]
    lines = result.stdout.splitlines()
    tables = [f"{name}: {len(found)} rows copied, verified" for name, found in rows.items()]
    assert lines[: len(tables)] == tables
    total = sum(len(found) for found in rows.values())
    assert lines[len(tables) + 1].startswith(f"total: {total} rows in {len(tables)} tables")
    copy = Database.from_url(target)
    try:
        assert await contents(copy) == rows
    finally:
        await copy.close()

    # the bot starts on the copy: `python -m bot check` passes against it
    assert await run_check(load_settings({**env, "DATABASE_URL": target})) == 0
    assert "database" in capsys.readouterr().out.lower()


async def test_migrate_to_sqlite_copies_the_shop_and_the_bot_checks_out(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _copy_and_check(fakes, tmp_path, f"sqlite:///{tmp_path / 'copy.sqlite3'}", capsys)


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
async def test_migrate_to_postgresql_copies_the_shop_and_the_bot_checks_out(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, url = await _create_pg_database()
    try:
        await _copy_and_check(fakes, tmp_path, url, capsys)
    finally:
        await _drop_pg_database(name)


async def test_a_refusal_is_one_line_and_a_failure_never_shows_the_password(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path
) -> None:
    tg, okx = fakes
    source = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    rows = await _shop(source)
    env = bot_env(tg, okx, source, admins="1", home=tmp_path)

    same = _migrate_to(env, source)
    assert same.returncode == 2
    assert same.stderr.splitlines()[-1] == (
        f"subsbot: migrate-to: the target {source} is the source database itself"
    )

    password = "Sup3r-secret-pw"
    unreachable = _migrate_to(env, f"postgresql://shop:{password}@127.0.0.1:1/shop")
    assert unreachable.returncode == 1
    last = unreachable.stderr.splitlines()[-1]
    assert last.startswith("subsbot: migrate-to failed, nothing committed: ")
    assert password not in unreachable.stdout + unreachable.stderr

    db = Database.from_url(source)
    try:
        assert await contents(db) == rows
        async with db.read() as conn:
            assert (await conn.execute(schema.kv.select())).first() is not None
    finally:
        await db.close()
