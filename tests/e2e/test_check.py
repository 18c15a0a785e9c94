"""``python -m payments check`` and ``python -m bot check`` as a merchant runs them: against the
fake OKX (and the fake Bot API), as real processes and in-process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.check import check_settings, run_check
from bot.config import load_settings
from fakes.okx import FakeOkx
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from payments.catalog import default_plans_path
from payments.errors import ConfigError
from payments.ops.setup_check import Report
from tests.paths import REPO

ROOT = REPO


@pytest.fixture
def okx() -> Iterator[FakeOkx]:
    fake = FakeOkx(secret="s3cr3t-value-xyz", passphrase="pass-phrase-abc").start()
    try:
        yield fake
    finally:
        fake.stop()


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
    return subprocess.run(
        [sys.executable, "-m", "payments", "check"],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env(okx: FakeOkx, tmp_path: Path) -> dict[str, str]:
    return {
        "OKX_API_KEY": okx.api_key,
        "OKX_SECRET_KEY": okx.secret,
        "OKX_PASSPHRASE": okx.passphrase,
        "OKX_API_URL": okx.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}",
    }


def test_a_ready_account_passes(okx: FakeOkx, tmp_path: Path) -> None:
    result = _check(_env(okx, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "USDT on USDT-TRC20: 1 deposit address(es) in the pool" in result.stdout
    assert result.stdout.strip().endswith("ready")
    assert okx.secret not in result.stdout + result.stderr
    assert okx.passphrase not in result.stdout + result.stderr


def test_a_key_that_can_withdraw_fails_and_says_so(okx: FakeOkx, tmp_path: Path) -> None:
    okx.set_permissions("read_only,withdraw")
    result = _check(_env(okx, tmp_path))
    assert result.returncode == 1
    assert "withdraw" in result.stdout and "ALLOW_UNSAFE_API_KEY" in result.stdout


def test_suspended_deposits_are_reported(okx: FakeOkx, tmp_path: Path) -> None:
    okx.set_chain("USDT-BSC", can_dep=False)
    result = _check(_env(okx, tmp_path))
    assert "USDT on BNB Smart Chain (BEP20) (USDT-BSC): deposits are suspended" in result.stdout


WHERE_FROM = (
    "settings are read from the environment and from .env in the working directory"
    " (.env.example lists every setting)"
)


def test_missing_variables_are_named_in_one_line(tmp_path: Path) -> None:
    result = _check({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    assert result.returncode == 2
    assert result.stdout.strip().splitlines() == [
        "OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE are not set (a read-only OKX API key is"
        f" required): {WHERE_FROM}"
    ]


def test_payments_check_reads_dot_env_in_the_working_directory(
    okx: FakeOkx, tmp_path: Path
) -> None:
    env = _env(okx, tmp_path)
    (tmp_path / ".env").write_text(
        "# OKX, from .env\n" + "".join(f"{k}={v}\n" for k, v in env.items() if k != "DATABASE_URL")
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
    result = subprocess.run(
        [sys.executable, "-m", "payments", "check"],
        env={**base, "PYTHONPATH": str(ROOT), "DATABASE_URL": env["DATABASE_URL"]},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "API key: read-only" in result.stdout


def test_wrong_secret_is_an_authentication_failure(okx: FakeOkx, tmp_path: Path) -> None:
    env = {**_env(okx, tmp_path), "OKX_SECRET_KEY": "wrong-secret-123"}
    result = _check(env)
    assert result.returncode == 1
    assert "wrong-secret-123" not in result.stdout + result.stderr


# --- python -m bot check ----------------------------------------------------------------------


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    fake = FakeTelegram(token="654321:bot-token-SECRET-value").start()
    try:
        yield fake
    finally:
        fake.stop()


def _bot_env(tg: FakeTelegram, okx: FakeOkx, tmp_path: Path) -> dict[str, str]:
    return bot_env(tg, okx, f"sqlite:///{tmp_path / 'check.sqlite3'}", admins="900,901")


def _secrets(tg: FakeTelegram, okx: FakeOkx) -> list[str]:
    return [tg.token, okx.api_key, okx.secret, okx.passphrase]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _bot_check(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = await run_check(load_settings(env))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_bot_check_as_a_process_names_the_bot_and_is_ready(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **_bot_env(tg, okx, tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.rstrip().splitlines()
    assert lines[-1] == "ready"
    assert all(line.startswith(("  ok  ", "  warn")) for line in lines[:-1]), result.stdout
    assert "@subsbot_test_bot" in result.stdout
    assert "ADMIN_IDS: 2 admins" in result.stdout
    assert "mode: long polling" in result.stdout
    assert "USDT on USDT-TRC20: 1 deposit address(es) in the pool" in result.stdout
    assert "API key: read-only" in result.stdout
    for secret in _secrets(tg, okx):
        assert secret not in result.stdout + result.stderr


async def test_webhook_mode_is_ready_and_no_secret_is_printed(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = {"WEBHOOK_URL": "https://shop.example.com", "WEBHOOK_SECRET": "hook_secret-0123456789"}
    hook["API_TOKEN"] = "api-token-0123456789"
    code, out = await _bot_check({**_bot_env(tg, okx, tmp_path), **hook}, capsys)
    assert code == 0, out
    assert "mode: webhook at https://shop.example.com/telegram/webhook" in out
    for secret in [*_secrets(tg, okx), hook["WEBHOOK_SECRET"], hook["API_TOKEN"]]:
        assert secret not in out


async def test_a_refused_token_is_a_fail_line(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**_bot_env(tg, okx, tmp_path), "TELEGRAM_BOT_TOKEN": "654321:NOT-the-right-token"}
    code, out = await _bot_check(env, capsys)
    assert code == 1
    assert "  FAIL  TELEGRAM_BOT_TOKEN was refused by Telegram" in out
    assert out.strip().endswith("1 problem(s)")
    assert "NOT-the-right-token" not in out
    assert "USDT on USDT-TRC20: 1 deposit address(es) in the pool" in out  # the rest still ran


async def test_an_unreachable_bot_api_names_telegram_api_url(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    code, out = await _bot_check({**_bot_env(tg, okx, tmp_path), "TELEGRAM_API_URL": dead}, capsys)
    assert code == 1
    assert f"  FAIL  TELEGRAM_API_URL: cannot reach the Bot API at {dead}" in out
    assert tg.token not in out


async def test_a_key_that_can_withdraw_fails(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    okx.set_permissions("read_only,withdraw", ip="203.0.113.7")
    code, out = await _bot_check(_bot_env(tg, okx, tmp_path), capsys)
    assert code == 1
    [fail] = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert '"withdraw" permission' in fail and "ALLOW_UNSAFE_API_KEY" in fail
    assert "@subsbot_test_bot" in out


async def test_an_unsafe_key_is_only_a_warning_when_allowed(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    okx.set_permissions("read_only,trade", ip="203.0.113.7")
    env = {**_bot_env(tg, okx, tmp_path), "ALLOW_UNSAFE_API_KEY": "true"}
    code, out = await _bot_check(env, capsys)
    assert code == 0, out
    assert "  warn  ALLOW_UNSAFE_API_KEY is set" in out
    assert '  warn  The OKX API key has the "trade" permission' in out


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://shop:hunter22-pw@127.0.0.1:{port}/shop",  # nothing listens
        "postgresql://shop:hunter22-pw@127.0.0.1:notaport/shop",  # the driver cannot parse it
        "sqlite:///{file}/shop.sqlite3",  # under a file, not a directory
    ],
)
async def test_a_database_that_cannot_be_opened_fails_without_its_password(
    tg: FakeTelegram,
    okx: FakeOkx,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    url = url.format(port=_closed_port(), file=tmp_path / "a-file")
    env = {**_bot_env(tg, okx, tmp_path), "DATABASE_URL": url}
    code, out = await _bot_check(env, capsys)
    assert code == 1
    [fail] = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert fail.startswith("  FAIL  DATABASE_URL"), fail  # cannot open / not valid / no folder
    assert "hunter22" not in out
    assert "API key: read-only" in out  # the key is still checked without a database
    assert "  skip  networks, prices and deposit addresses" in out


async def test_an_unreachable_okx_names_okx_api_url(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    code, out = await _bot_check({**_bot_env(tg, okx, tmp_path), "OKX_API_URL": dead}, capsys)
    assert code == 1
    assert f"  FAIL  OKX at {dead} (OKX_API_URL): " in out
    assert "@subsbot_test_bot" in out


def _settings_report(**env: str) -> Report:
    base = {"TELEGRAM_BOT_TOKEN": "1:x", "ADMIN_IDS": "7", "OKX_API_KEY": "k"}
    settings = load_settings({**base, "OKX_SECRET_KEY": "s", "OKX_PASSPHRASE": "p", **env})
    report = Report()
    check_settings(settings, report)
    return report


def test_webhook_settings() -> None:
    local = _settings_report(
        WEBHOOK_URL="http://localhost:8080", WEBHOOK_SECRET="abc_0123456789abcdef"
    )
    assert "  ok    mode: webhook at http://localhost:8080/telegram/webhook" in local.lines
    assert local.problems == 0

    plain = _settings_report(
        WEBHOOK_URL="http://shop.example.com", WEBHOOK_SECRET="abc_0123456789abcdef"
    )
    assert any(line.startswith("  warn  WEBHOOK_URL:") and "https" in line for line in plain.lines)
    assert plain.problems == 0

    odd_port = _settings_report(
        WEBHOOK_URL="https://shop.example.com:8080", WEBHOOK_SECRET="abc_0123456789abcdef"
    )
    assert any("ports 443, 80, 88 and 8443, not 8080" in line for line in odd_port.lines)
    render = _settings_report(
        WEBHOOK_URL="https://shop.onrender.com", WEBHOOK_SECRET="abc_0123456789abcdef"
    )
    assert "  ok    mode: webhook at https://shop.onrender.com/telegram/webhook" in render.lines

    report = _settings_report()
    assert report.lines[0] == "  ok    ADMIN_IDS: 1 admin"
    assert "  ok    mode: long polling (WEBHOOK_URL is not set)" in report.lines

    # a secret Telegram would refuse stops the command before any check, in one line
    with pytest.raises(ConfigError) as refused:
        load_settings(
            {"TELEGRAM_BOT_TOKEN": "1:x", "ADMIN_IDS": "7", "OKX_API_KEY": "k"}
            | {"OKX_SECRET_KEY": "s", "OKX_PASSPHRASE": "p", "WEBHOOK_URL": "https://a.example"}
            | {"WEBHOOK_SECRET": "has spaces and !"}
        )
    assert str(refused.value).startswith("WEBHOOK_SECRET: must be 16-256 characters")
    assert "has spaces" not in str(refused.value)


def test_check_without_a_token_stops_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"subsbot: TELEGRAM_BOT_TOKEN and ADMIN_IDS are not set: {WHERE_FROM}"
    ]
    assert result.stdout == ""


def test_a_token_that_ends_in_a_comment_is_not_refused_by_telegram(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path
) -> None:
    """As ``docker run --env-file`` passes ``TELEGRAM_BOT_TOKEN=<token>  # from @BotFather``."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **_bot_env(tg, okx, tmp_path)}
    env["TELEGRAM_BOT_TOKEN"] = f"{tg.token}   # from @BotFather"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "subsbot: TELEGRAM_BOT_TOKEN: the value ends in a comment: put comments on their own"
        " line; docker --env-file keeps them"
    ]
    assert "refused" not in result.stdout + result.stderr
    assert tg.token not in result.stdout + result.stderr


async def test_the_bundled_plans_are_a_loud_warning(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await _bot_check(_bot_env(tg, okx, tmp_path), capsys)
    assert code == 0, out
    [warning] = [line for line in out.splitlines() if "PLANS_FILE" in line]
    assert warning.startswith("  warn  PLANS_FILE is not set: the bundled EXAMPLE plans")
    assert "PLANS_FILE=/app/plans.toml" in warning  # Docker: mount it
    assert "PLANS_FILE=/etc/secrets/plans.toml" in warning  # Render: a Secret File
    (tmp_path / "plans.toml").write_text(default_plans_path().read_text(encoding="utf-8"))
    env = {**_bot_env(tg, okx, tmp_path), "PLANS_FILE": str(tmp_path / "plans.toml")}
    code, out = await _bot_check(env, capsys)
    assert code == 0, out
    assert "PLANS_FILE" not in out


async def test_a_bot_api_url_as_the_fake_prints_it_works(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tg.base_url.endswith("/bot")
    env = {**_bot_env(tg, okx, tmp_path), "TELEGRAM_API_URL": tg.base_url}
    code, out = await _bot_check(env, capsys)
    assert code == 0, out
    assert "@subsbot_test_bot" in out


async def test_a_misspelt_chain_lists_the_chains_okx_has_for_the_coin(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plans = default_plans_path().read_text(encoding="utf-8")
    assert 'chain = "USDT-TRC20"' in plans
    (tmp_path / "plans.toml").write_text(
        plans.replace('chain = "USDT-TRC20"', 'chain = "USDT-TRX"')
    )
    env = {**_bot_env(tg, okx, tmp_path), "PLANS_FILE": str(tmp_path / "plans.toml")}
    code, out = await _bot_check(env, capsys)
    assert code == 1, out
    [fail] = [line for line in out.splitlines() if "USDT-TRX)" in line]
    assert fail.startswith("  FAIL") and "OKX does not list this chain" in fail, fail
    listed = fail.split("OKX's chains for USDT: ", 1)[1].split(", ")
    assert "USDT-TRC20" in listed and "USDT-ERC20" in listed, fail


@pytest.mark.parametrize("kind", ["region", "region_page"])
async def test_a_refused_region_is_named_in_one_line(
    tg: FakeTelegram,
    okx: FakeOkx,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    okx.fail_next(50, kind)
    code, out = await _bot_check(_bot_env(tg, okx, tmp_path), capsys)
    assert code == 1, out
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert fails, out
    for fail in fails:
        assert "OKX refuses requests from this server's region" in fail, fail
        assert "run the bot in a region OKX serves (e.g. Singapore or Frankfurt)" in fail
    assert "@subsbot_test_bot" in out  # Telegram still checked


async def test_paid_chats_name_the_missing_right_and_fail(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plans = default_plans_path().read_text(encoding="utf-8")
    plans = plans.replace('id = "pro"\n', 'id = "pro"\nchats = [-1001, -1002, -1003]\n', 1)
    (tmp_path / "plans.toml").write_text(plans, encoding="utf-8")
    tg.add_chat(-1001, title="Ready Club")
    tg.add_chat(-1002, title="No Bans", bot_rights={"can_restrict_members": False})
    env = {**_bot_env(tg, okx, tmp_path), "PLANS_FILE": str(tmp_path / "plans.toml")}
    code, out = await _bot_check(env, capsys)
    assert code == 1, out
    lines = out.splitlines()
    ready = "  ok    paid chat -1001 (Ready Club): ok, the bot can invite and remove members"
    assert ready in lines
    [no_bans] = [line for line in lines if "-1002" in line]
    assert no_bans.startswith("  FAIL") and "lacks the right to ban members" in no_bans
    [missing] = [line for line in lines if "-1003" in line]
    assert missing.startswith("  FAIL") and "Chat not found" in missing
    assert "add the bot to it as an administrator" in missing
    assert lines[-1] == "2 problem(s)"


def test_mini_app_settings() -> None:
    none = _settings_report()
    assert (
        "  ok    Mini App: none (WEBAPP_URL, PUBLIC_URL and WEBHOOK_URL are not set)" in none.lines
    )
    public = _settings_report(PUBLIC_URL="https://shop.example.com/")
    assert (
        "  ok    Mini App: https://shop.example.com/app (the menu button and /start open it)"
        in (public.lines)
    )
    own = _settings_report(
        PUBLIC_URL="https://shop.example.com", WEBAPP_URL="http://pages.example.com/checkout"
    )
    assert any(
        line.startswith("  warn  Mini App: http://pages.example.com/checkout is not https")
        for line in own.lines
    )


async def test_a_port_in_use_is_a_fail_line_and_not_ready(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {**_bot_env(tg, okx, tmp_path), "HOST": "127.0.0.1", "PORT": str(port)}
        code, out = await _bot_check(env, capsys)
    assert code == 1, out
    lines = out.rstrip().splitlines()
    taken_lines = [line for line in lines if f"127.0.0.1:{port}" in line]
    assert len(taken_lines) == 1, out
    assert taken_lines[0].startswith(f"  FAIL  PORT: cannot listen on 127.0.0.1:{port}")
    assert "ready" not in lines


async def test_a_free_port_is_an_ok_line(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    env = {**_bot_env(tg, okx, tmp_path), "HOST": "127.0.0.1", "PORT": str(port)}
    code, out = await _bot_check(env, capsys)
    assert code == 0, out
    assert f"  ok    PORT: 127.0.0.1:{port} is free" in out.splitlines()


async def test_check_says_it_migrated_the_database_then_that_it_is_up_to_date(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _bot_env(tg, okx, tmp_path)
    code, first = await _bot_check(env, capsys)
    assert code == 0, first
    migrated = [line for line in first.splitlines() if "database: sqlite" in line]
    assert len(migrated) == 1, first
    assert migrated[0].startswith("  ok    database: sqlite, migrated to revision 00")
    assert migrated[0].endswith("(from a new database)")
    head = migrated[0].split("migrated to revision ")[1].split()[0]
    code, second = await _bot_check(env, capsys)
    assert code == 0, second
    assert f"  ok    database: sqlite, up to date (revision {head})" in second.splitlines()


async def test_test_mode_is_ready_without_okx_keys_and_says_test_mode(
    tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {"OKX_API_KEY": "", "OKX_SECRET_KEY": "", "OKX_PASSPHRASE": ""}
    env = {**_bot_env(tg, okx, tmp_path), **keys, "OKX_MODE": "simulated"}
    env = {k: v for k, v in env.items() if v}
    code, out = await _bot_check(env, capsys)
    assert code == 0, out
    assert "payment rails: test mode (simulated exchange)" in out
    assert "OKX: not used: test mode (simulated exchange) (OKX_MODE=simulated)" in out
    assert okx.count() == 0  # OKX is never called
