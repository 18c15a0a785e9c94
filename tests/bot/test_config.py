"""Settings (bot/config.py) and a merchant's configuration mistakes.

The environment loads into typed settings: every missing or bad value is named, secrets stay out
of repr and logs. ``python -m bot run`` with a broken plans file or a
database it cannot open stops with exit code 2 and ONE line on stderr that names the problem
(the plans file and entry, or DATABASE_URL), with no traceback and no secret in it.

Every case runs ``run`` in-process against the fake Bot API and the fake OKX (a fraction of a
second each); two run as real processes too (tests/e2e/test_main.py has more), to show exactly
what a merchant sees.

Coins and chains that OKX does not list are only known once OKX answers: ``bot check`` names
them (the bot itself keeps serving the rest of the catalogue)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.__main__ as bot_main
from bot.check import run_check
from bot.config import Settings, load_settings
from bot.logs import RedactSecrets, secrets_of
from bot.texts import Texts
from fakes.okx import FakeOkx
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from payments.catalog import default_plans_path
from payments.errors import ConfigError

DB_PASSWORD = "db-pass-hunter22"
# SQLite failing to open a file leaves aiosqlite's worker thread behind, and it raises "Event
# loop is closed" once the loop has gone: harmless in a process that exits, a stray thread
# exception in this one
IN_A_PROCESS_ONLY = ("sqlite_file_is_a_folder",)
Result = tuple[int | None, str, str]  # exit code, stdout, stderr
PARALLEL = 2  # processes at a time (each imports the bot: about a second of CPU)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeTelegram, FakeOkx]]:
    with FakeTelegram(token="654321:cfg-token-SECRET") as tg, FakeOkx() as okx:
        yield tg, okx


def bundled() -> str:
    return default_plans_path().read_text(encoding="utf-8")


def edited(old: str, new: str) -> str:
    text = bundled()
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


BTC_NETWORKS = 'networks = [{ code = "BTC", chain = "BTC-Bitcoin", label = "Bitcoin" }]'

# name -> (the plans file's text, what its one line says)
PLAN_CASES: dict[str, tuple[str, str]] = {
    "toml_syntax": ('[[plans]\nid = "pro"\n', "not valid TOML (Expected ']]'"),
    "negative_price": (
        edited('price_usd = "29"', 'price_usd = "-29"'),
        "plan 'pro': price_usd must be positive (got -29)",
    ),
    "zero_duration": (
        edited('days = 30\ndescription = "Everything', 'days = 0\ndescription = "Everything'),
        "plan 'pro': days must be a whole number from 1 to 3660",
    ),
    "price_not_a_number": (
        edited('price_usd = "99"', 'price_usd = "ninety-nine"'),
        "plan 'enterprise': 'price_usd' is not a number",
    ),
    "malformed_coin": (
        edited('symbol = "BTC"', 'symbol = "btc!"'),
        "coin 'btc!': symbol must be 2-10 capital letters or digits",
    ),
    "chain_of_another_coin": (
        edited('chain = "BTC-Bitcoin"', 'chain = "ETH-Bitcoin"'),
        "coin 'BTC' networks[0]: chain 'ETH-Bitcoin' must be OKX's chain name for BTC",
    ),
    "malformed_network_code": (
        edited('code = "TRC20"', 'code = "trc 20"'),
        "coin 'USDT' networks[0]: code must be 2-12 capital letters or digits",
    ),
    "no_coins": (bundled().split("[[coins]]")[0], "at least one [[coins]] entry is required"),
    "coin_without_networks": (
        edited(BTC_NETWORKS, "networks = []"),
        "coin 'BTC': at least one network is required",
    ),
    "no_plans": (
        "[[coins]]" + bundled().split("[[coins]]", 1)[1],
        "at least one [[plans]] entry is required",
    ),
}


def _env(tg: FakeTelegram, okx: FakeOkx, tmp_path: Path) -> dict[str, str]:
    return bot_env(tg, okx, f"sqlite:///{tmp_path / 'shop.sqlite3'}", home=tmp_path)


async def _run_all(runs: dict[str, dict[str, str]], cwd: Path) -> dict[str, Result]:
    """``python -m bot run`` once per environment; name -> (exit code, stdout, stderr)."""
    gate = asyncio.Semaphore(PARALLEL)

    async def one(env: dict[str, str]) -> Result:
        async with gate:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(process.communicate(), timeout=120)
            except TimeoutError:  # it started serving instead of stopping
                process.kill()
                out, err = await process.communicate()
            return process.returncode, out.decode(), err.decode()

    results = await asyncio.gather(*(one(env) for env in runs.values()))
    return dict(zip(runs, results, strict=True))


def _assert_one_line(result: Result, expected: str, secrets: list[str], name: str) -> str:
    code, out, err = result
    assert code == 2, (name, code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, (name, err)
    [line] = lines
    assert line.startswith("subsbot: ") and expected in line, (name, line)
    assert "Traceback" not in out + err, name
    for secret in secrets:
        assert secret not in out + err, (name, secret)
    return line


def _in_process(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Result:
    """``run`` as ``python -m bot run`` calls it after reading the settings (no process)."""
    code = bot_main.run(load_settings(env))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _plans_runs(base: dict[str, str], tmp_path: Path) -> dict[str, dict[str, str]]:
    runs: dict[str, dict[str, str]] = {}
    for name, (text, _) in PLAN_CASES.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        runs[name] = base | {"PLANS_FILE": str(path)}
    runs["missing_file"] = base | {"PLANS_FILE": str(tmp_path / "missing_file.toml")}
    return runs


def _database_cases(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (DATABASE_URL, what its one line says)."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder.sqlite3").mkdir()
    return {
        # nothing listens on port 1
        "postgres_unreachable": (
            f"postgresql://shop:{DB_PASSWORD}@127.0.0.1:1/shop",
            "DATABASE_URL: cannot open postgresql://shop:***@127.0.0.1:1/shop",
        ),
        # regression: a port that is not a number escaped as a ValueError traceback (exit 1)
        "port_not_a_number": (
            f"postgresql://shop:{DB_PASSWORD}@127.0.0.1:dbport/shop",
            "DATABASE_URL is not a valid database URL",
        ),
        # regression: a file where the SQLite folder should be was a FileExistsError traceback
        "sqlite_folder_is_a_file": (
            f"sqlite:///{tmp_path / 'a-file' / 'shop.sqlite3'}",
            f"DATABASE_URL: cannot create the folder {tmp_path / 'a-file'}",
        ),
        "sqlite_file_is_a_folder": (
            f"sqlite:///{tmp_path / 'a-folder.sqlite3'}",
            f"DATABASE_URL: {tmp_path / 'a-folder.sqlite3'} is a folder, not a database file",
        ),
        "unsupported_backend": (
            f"mysql://shop:{DB_PASSWORD}@127.0.0.1/shop",
            "DATABASE_URL: unsupported database 'mysql'",
        ),
    }


def test_a_broken_plans_file_or_database_stops_start_up_naming_it(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tg, okx = fakes
    base = _env(tg, okx, tmp_path)
    secrets = [tg.token, okx.secret, okx.passphrase, okx.api_key, DB_PASSWORD]
    for name, env in _plans_runs(base, tmp_path).items():
        expected = PLAN_CASES[name][1] if name in PLAN_CASES else "cannot read it"
        line = _assert_one_line(_in_process(env, capsys), expected, secrets, name)
        assert line.startswith(f"subsbot: PLANS_FILE {tmp_path / name}.toml: "), line
    for name, (url, expected) in _database_cases(tmp_path).items():
        if name in IN_A_PROCESS_ONLY:
            continue
        result = _in_process(base | {"DATABASE_URL": url}, capsys)
        line = _assert_one_line(result, expected, secrets, name)
        assert line.startswith("subsbot: DATABASE_URL"), line
    assert tg.bot_messages(900) == [] and tg.webhook is None  # the bot never started


async def test_the_process_prints_one_line_and_nothing_else(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path
) -> None:
    """The same as real processes (logging configured as in production): exit code 2, one
    line on stderr, nothing on stdout."""
    tg, okx = fakes
    base = _env(tg, okx, tmp_path)
    plans = _plans_runs(base, tmp_path)
    databases = _database_cases(tmp_path)
    picked = {"toml_syntax": (plans["toml_syntax"], PLAN_CASES["toml_syntax"][1])}
    for name in ("sqlite_folder_is_a_file", *IN_A_PROCESS_ONLY):
        url, expected = databases[name]
        picked[name] = (base | {"DATABASE_URL": url}, expected)
    results = await _run_all({name: env for name, (env, _) in picked.items()}, tmp_path)
    secrets = [tg.token, okx.secret, okx.passphrase, okx.api_key, DB_PASSWORD]
    for name, (_, expected) in picked.items():
        _assert_one_line(results[name], expected, secrets, name)
        assert results[name][1] == "", name


def _unlisted_plans(tg: FakeTelegram, okx: FakeOkx, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A plans file with a chain OKX does not list (USDT-Nowhere) and a coin it does not know."""
    plans = tmp_path / "plans.toml"
    text = edited('chain = "USDT-Solana"', 'chain = "USDT-Nowhere"')
    text += '\n[[coins]]\nsymbol = "DOGEZ"\nstep = "0.0001"\n'
    text += 'networks = [{ code = "DOGE", chain = "DOGEZ-Dogecoin" }]\n'
    plans.write_text(text, encoding="utf-8")
    return plans, _env(tg, okx, tmp_path) | {"PLANS_FILE": str(plans)}


async def test_coins_and_chains_okx_does_not_list_are_named_by_check(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tg, okx = fakes
    _, env = _unlisted_plans(tg, okx, tmp_path)
    code = await run_check(load_settings(env))
    output = capsys.readouterr().out
    assert code == 1, output
    assert "FAIL  USDT on Solana (USDT-Nowhere): OKX does not list this chain" in output
    assert "FAIL  DOGEZ on DOGEZ-Dogecoin: no deposit address" in output
    assert "FAIL  DOGEZ price" in output


def test_a_coin_or_chain_okx_does_not_list_stops_start_up_naming_it(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tg, okx = fakes
    plans, env = _unlisted_plans(tg, okx, tmp_path)
    secrets = [tg.token, okx.secret, okx.passphrase, okx.api_key]
    line = _assert_one_line(_in_process(env, capsys), "OKX does not list", secrets, "unlisted")
    assert line.startswith(f"subsbot: PLANS_FILE {plans}: "), line
    assert "USDT network" in line and "(USDT-Nowhere)" in line, line
    assert "DOGEZ network DOGE (DOGEZ-Dogecoin)" in line, line
    assert "TRC20" not in line  # the networks OKX does list are not named
    assert tg.bot_messages(900) == [] and tg.webhook is None  # the bot never started


SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123:tg-token-s3cr3t",
    "OKX_API_KEY": "okx-key-s3cr3t",
    "OKX_SECRET_KEY": "okx-secret-s3cr3t",
    "OKX_PASSPHRASE": "okx-pass-s3cr3t",
}
BASE_ENV = {**SECRETS, "ADMIN_IDS": "900"}


def _problem(**changes: str | None) -> str:
    env = {k: v for k, v in {**BASE_ENV, **changes}.items() if v is not None}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert "\n" not in message
    for secret in (*SECRETS.values(), "wh-s3cr3t-0123456789", "db-s3cr3t"):
        assert secret not in message
    return message


def test_a_complete_environment_loads() -> None:
    settings = load_settings({**BASE_ENV, "ADMIN_IDS": " 900, 901 ;902"})
    assert isinstance(settings, Settings)
    assert settings.admin_ids == (900, 901, 902)
    assert settings.telegram_bot_token.get_secret_value() == SECRETS["TELEGRAM_BOT_TOKEN"]
    assert settings.payment_poll_seconds == 60 and settings.invoice_ttl_minutes == 120


@pytest.mark.parametrize("name", ["TELEGRAM_BOT_TOKEN", "ADMIN_IDS"])
def test_a_missing_setting_is_named(name: str) -> None:
    assert _problem(**{name: None}) == f"{name} is not set"


ALL_OR_NONE = (
    "give all three OKX settings to take crypto, or none of them to sell for Telegram Stars only"
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("OKX_API_KEY",), "OKX_SECRET_KEY and OKX_PASSPHRASE are not set (OKX_API_KEY is)"),
        (("OKX_SECRET_KEY",), "OKX_API_KEY and OKX_PASSPHRASE are not set (OKX_SECRET_KEY is)"),
        (("OKX_PASSPHRASE",), "OKX_API_KEY and OKX_SECRET_KEY are not set (OKX_PASSPHRASE is)"),
        (
            ("OKX_API_KEY", "OKX_SECRET_KEY"),
            "OKX_PASSPHRASE is not set (OKX_API_KEY and OKX_SECRET_KEY are)",
        ),
        (
            ("OKX_API_KEY", "OKX_PASSPHRASE"),
            "OKX_SECRET_KEY is not set (OKX_API_KEY and OKX_PASSPHRASE are)",
        ),
    ],
)
def test_some_of_the_okx_settings_name_the_missing_ones_in_one_line(
    given: tuple[str, ...], expected: str
) -> None:
    """All three OKX settings take crypto, none sells for Stars only; some of them is a
    mistake, named without the values that were given."""
    dropped = {name: None for name in SECRETS if name.startswith("OKX_") and name not in given}
    assert _problem(**dropped) == f"{expected}: {ALL_OR_NONE}"


def test_without_okx_settings_the_shop_has_no_okx_keys() -> None:
    none = {name: None for name in SECRETS if name.startswith("OKX_")}
    env = {k: v for k, v in {**BASE_ENV, **none}.items() if v is not None}
    assert load_settings(env).okx_keys is None
    keys = load_settings(BASE_ENV).okx_keys
    assert keys == (SECRETS["OKX_API_KEY"], SECRETS["OKX_SECRET_KEY"], SECRETS["OKX_PASSPHRASE"])


def test_test_mode_needs_no_okx_keys_and_refuses_real_ones() -> None:
    """OKX_MODE=simulated is a rehearsal: no keys needed, and real keys beside it stop start-up
    (naming the keys, never their values): a shop with real keys must not take pretend ones."""
    none = {name: None for name in SECRETS if name.startswith("OKX_")}
    env = {k: v for k, v in {**BASE_ENV, **none}.items() if v is not None}
    settings = load_settings({**env, "OKX_MODE": "simulated"})
    assert settings.simulated and settings.okx_keys is None
    assert not load_settings(BASE_ENV).simulated  # live by default
    problem = _problem(OKX_MODE="simulated")
    assert problem.startswith(
        "OKX_MODE is simulated (test mode) but OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE"
        " are set"
    ), problem
    assert "OKX_MODE=live" in problem
    assert all(SECRETS[name] not in problem for name in SECRETS)
    assert _problem(OKX_MODE="pretend").startswith("OKX_MODE: ")


def test_empty_values_mean_unset() -> None:
    """As in a .env template ("PORT="): a required one is missing, an optional one default."""
    assert _problem(TELEGRAM_BOT_TOKEN="") == "TELEGRAM_BOT_TOKEN is not set"
    assert _problem(OKX_SECRET_KEY="  ").startswith("OKX_SECRET_KEY is not set (")
    settings = load_settings({**BASE_ENV, "PORT": "", "PLANS_FILE": "", "WEBHOOK_URL": ""})
    assert settings.port is None and settings.plans_file is None
    assert settings.webhook_url is None


@pytest.mark.parametrize("value", ["", "abc", "-5", "0", "900,abc", " , "])
def test_bad_admin_ids_are_named(value: str) -> None:
    assert _problem(ADMIN_IDS=value).startswith("ADMIN_IDS")


def test_a_webhook_needs_its_secret() -> None:
    assert "WEBHOOK_SECRET" in _problem(WEBHOOK_URL="https://shop.example/tg")
    settings = load_settings(
        {
            **BASE_ENV,
            "WEBHOOK_URL": "https://shop.example",
            "WEBHOOK_SECRET": "wh-s3cr3t-0123456789",
        }
    )
    assert settings.webhook_secret is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INVOICE_TTL_MINUTES", "1"),
        ("INVOICE_TTL_MINUTES", "abc"),
        ("PAYMENT_MONITOR_HOURS", "0"),
        ("SETTLE_ON_STATE", "3"),
        ("PAYMENT_POLL_SECONDS", "0"),
        ("PORT", "70000"),
        ("QR_PAYLOAD", "bip21"),
        ("TIMEZONE", "Mars/Olympus"),
        ("OKX_API_URL", "www.okx.com"),
        ("SUPPORT_CONTACT", "call us"),
        ("SUPPORT_CONTACT", "@abc"),  # Telegram's usernames have 5 characters or more
        ("SUPPORT_CONTACT", "https://evil.example/t.me/shop"),
        ("TERMS_URL", "http://shop.example/terms"),
        ("TERMS_URL", "https://shop.example/our terms"),
    ],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    assert name in _problem(**{name: value})


@pytest.mark.parametrize(
    ("contact", "shown"),
    [
        ("@shop_help", "@shop_help"),
        ("t.me/shop_help", "https://t.me/shop_help"),
        ("https://t.me/+AbCdEf123", "https://t.me/+AbCdEf123"),
        (" help@shop.example ", "help@shop.example"),
    ],
)
def test_a_support_contact_is_a_username_a_t_me_link_or_an_e_mail(contact: str, shown: str) -> None:
    assert load_settings({**BASE_ENV, "SUPPORT_CONTACT": contact}).support_contact == shown


def test_the_given_mapping_is_all_that_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit env must not be mixed with the process environment (a stray PORT or token)."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "from-the-process")
    monkeypatch.setenv("PORT", "not-a-number")
    assert _problem(TELEGRAM_BOT_TOKEN=None) == "TELEGRAM_BOT_TOKEN is not set"
    assert load_settings(BASE_ENV).port is None


def test_guessable_webhook_secrets_and_api_tokens_are_refused() -> None:
    hook = {"WEBHOOK_URL": "https://shop.example"}
    short = _problem(**hook, WEBHOOK_SECRET="wh-s3cr3t")
    assert short.startswith("WEBHOOK_SECRET: must be 16-256 characters"), short
    assert "wh-s3cr3t" not in short
    token = _problem(API_TOKEN="api-s3cr3t")
    assert token.startswith("API_TOKEN: must be at least 16 characters"), token
    assert "api-s3cr3t" not in token


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings(
        {
            **BASE_ENV,
            "WEBHOOK_URL": "https://shop.example",
            "WEBHOOK_SECRET": "wh-s3cr3t-0123456789",
            "API_TOKEN": "api-s3cr3t-0123456789",
            "DATABASE_URL": "postgresql://shop:db-s3cr3t@db.example/shop",
        }
    )
    shown = repr(settings) + str(settings)
    for secret in (*SECRETS.values(), "wh-s3cr3t-0123456789", "api-s3cr3t-0123456789", "db-s3cr3t"):
        assert secret not in shown
    assert "db.example" in shown and repr(settings).startswith("Settings(")
    assert settings.database_url == "postgresql://shop:db-s3cr3t@db.example/shop"


def test_the_database_password_is_redacted_from_logs_as_written_and_decoded() -> None:
    url = "postgresql://shop:pa%40ss-word-9@db.internal:5432/shop"
    secrets = secrets_of(load_settings({**BASE_ENV, "DATABASE_URL": url}))
    assert "pa%40ss-word-9" in secrets and "pa@ss-word-9" in secrets
    text = RedactSecrets(secrets).redact(f"{url} refused: password for shop:pa@ss-word-9")
    assert text == "postgresql://shop:***@db.internal:5432/shop refused: password for shop:***"
    sqlite = secrets_of(load_settings({**BASE_ENV, "DATABASE_URL": "sqlite:///data/shop.db"}))
    assert len(sqlite) == len(secrets) - 2  # no password, nothing extra to redact


JAN_15_NOON_UTC = 1768478700000  # 2026-01-15 12:05 UTC


def test_the_configured_zone_reaches_the_texts() -> None:
    settings = load_settings({**BASE_ENV, "TIMEZONE": "Europe/Berlin"})
    assert Texts(settings.zone).date(JAN_15_NOON_UTC).endswith(" CET")


def test_a_value_that_ends_in_a_comment_is_named_as_such() -> None:
    """``docker run --env-file`` keeps ``  # ...`` after a value: the setting is named with what
    went wrong, not a generic "must be numeric", and a secret's comment is not quoted."""
    assert _problem(ADMIN_IDS="11111111            # your Telegram user id") == (
        "ADMIN_IDS: the value ends in a comment (' # your Telegram user id'): put comments on"
        " their own line; docker --env-file keeps them"
    )
    token = _problem(TELEGRAM_BOT_TOKEN=f"{SECRETS['TELEGRAM_BOT_TOKEN']}  # from @BotFather")
    assert token == (
        "TELEGRAM_BOT_TOKEN: the value ends in a comment: put comments on their own line;"
        " docker --env-file keeps them"
    )
    # an unfilled line of .env.example under docker: only the comment is left
    assert _problem(PORT="   # HTTP port").startswith("PORT: the value ends in a comment")
    assert _problem(TERMS_TEXT="Our terms # see below").startswith("TERMS_TEXT: the value ends")
    # no comment: a URL fragment, an order number in free text
    terms = {"TERMS_TEXT": "Refunds for order #5 within 14 days", "TERMS_URL": "https://a.b/t#x"}
    assert load_settings({**BASE_ENV, **terms}).terms_url == "https://a.b/t#x"


def test_all_missing_settings_are_named_in_one_line() -> None:
    env = {k: v for k, v in BASE_ENV.items() if k not in ("TELEGRAM_BOT_TOKEN", "ADMIN_IDS")}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == "TELEGRAM_BOT_TOKEN and ADMIN_IDS are not set"


def test_a_bot_api_url_ending_in_bot_is_the_same_url() -> None:
    """The fake Bot API prints ``http://127.0.0.1:PORT/bot``: both forms work."""
    for url in ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/bot/", "http://127.0.0.1:8081"):
        settings = load_settings({**BASE_ENV, "TELEGRAM_API_URL": url})
        assert settings.bot_api_base_url == "http://127.0.0.1:8081/bot", url
        assert settings.bot_file_base_url == "http://127.0.0.1:8081/file/bot", url


def test_on_render_the_webhook_url_is_the_service_url() -> None:
    render = {"RENDER_EXTERNAL_URL": "https://shop.onrender.com"}
    secret = {"WEBHOOK_SECRET": "wh-s3cr3t-0123456789"}
    assert (
        load_settings({**BASE_ENV, **render, **secret}).webhook_url == render["RENDER_EXTERNAL_URL"]
    )
    own = {"WEBHOOK_URL": "https://pay.example.com"}
    assert load_settings({**BASE_ENV, **render, **secret, **own}).webhook_url == own["WEBHOOK_URL"]
    assert load_settings(BASE_ENV).webhook_url is None
    assert _problem(**render) == (
        "WEBHOOK_SECRET is required when WEBHOOK_URL is taken from RENDER_EXTERNAL_URL"
        " (Render sets it)"
    )
