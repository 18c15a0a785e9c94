"""A shop that sells for Telegram Stars only: no OKX keys, a plans file with Stars prices and no
coins. The real bot against the fake Bot API; the fake OKX still listens at OKX_API_URL, and
receives not a single request. Also: the start-up refusals without OKX keys, and ``check``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

import bot.__main__ as bot_main
from bot.check import run_check
from bot.config import load_settings
from bot.jobs import DIRECTORY, POLL
from fakes.okx import FakeOkx
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from fakes.telegram_state import flat_buttons
from payments.catalog import default_plans_path
from tests.botkit import ADMIN, BotWorld
from tests.conftest import backends
from tests.e2e.test_stars import CLUB, PRO_STARS, offer_rows, paid, stars_plans

OKX_KEYS = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
API_TOKEN = "stars-only-api-token-0123456789"
STARS_ONLY_PLANS = f"""
[[plans]]
id = "pro"
name = "Pro"
price_usd = "29"
days = 30
stars = {PRO_STARS}
description = "Everything for 30 days"

[[plans]]
id = "quarter"
name = "Quarter"
price_usd = "79"
days = 90
stars = 4000
"""


def stars_only_plans(tmp_path: Path) -> Path:
    path = tmp_path / "stars-only.toml"
    path.write_text(STARS_ONLY_PLANS, encoding="utf-8")
    return path


def without_okx_keys(env: dict[str, str]) -> dict[str, str]:
    """The environment with none of the three OKX settings (OKX_API_URL still names the fake,
    so a request the bot should not make would reach it and be counted)."""
    return {k: v for k, v in env.items() if k not in OKX_KEYS}


@asynccontextmanager
async def stars_only_world(tmp_path: Path, backend: str = "sqlite") -> AsyncIterator[BotWorld]:
    env = {"PLANS_FILE": str(stars_only_plans(tmp_path)), "API_TOKEN": API_TOKEN}
    async with BotWorld.open(tmp_path, env=env, backend=backend) as world:
        world.env = without_okx_keys(world.env)
        yield world


@pytest.mark.parametrize("backend", backends())
async def test_a_stars_only_shop_sells_a_subscription_without_a_single_okx_request(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    async with stars_only_world(tmp_path, backend) as world, world.serving(webhook=False) as served:
        assert "payment rails: Telegram Stars only" in caplog.messages
        alice = world.customer(7101)
        menu = await alice.send("/start", expect="Welcome")
        assert "You pay with Telegram Stars" in menu.plain
        assert "OKX" not in menu.plain and "crypto" not in menu.plain
        assert [text for text, _ in flat_buttons(menu.reply_markup)] == [
            f"Pro · ⭐ {PRO_STARS} / 30 days",
            "Quarter · ⭐ 4000 / 90 days",
        ]

        under_plan = await alice.press("Pro", expect="You pay with Telegram Stars")
        assert f"Pro: ⭐ {PRO_STARS} for 30 days." in under_plan.plain
        assert "coin" not in under_plan.plain  # neither "Which coin" nor "No coin can be paid"
        assert [text for text, _ in flat_buttons(under_plan.reply_markup)] == [
            "⭐ Telegram Stars",
            "« Back",
        ]
        offer = await alice.press("Telegram Stars", expect="every 30 days")
        [link] = [b.url for row in offer_rows(offer) for b in row]
        assert link is not None
        payment = await paid(world, world.tg.pay(alice.id, link, now_s=world.clock.now_ms() / 1000))
        assert payment.outcome == "paid", payment.outcome
        received = await alice.wait_text(f"Payment received: {PRO_STARS} Stars")
        assert "Pro is active until" in received.plain

        help_text = await alice.send("/help", expect="How it works")
        assert "Telegram Stars" in help_text.plain and "transaction hash" not in help_text.plain

        # the crypto-only admin commands say why there is nothing for them
        admin = world.customer(ADMIN)
        pending = await admin.send("/pending", expect="Telegram Stars only")
        assert "no crypto invoices" in pending.plain
        confirm = await admin.send("/confirm ABC123", expect="Telegram Stars only")
        assert "no crypto invoices" in confirm.plain

        # /healthz: OKX is off, not failing; the shop is healthy, not degraded
        async with httpx.AsyncClient(base_url=served.base_url) as http:
            bearer = {"Authorization": f"Bearer {API_TOKEN}"}
            health = await http.get("/healthz", headers=bearer)
        body = health.json()
        assert (health.status_code, body["status"], body["okx"]) == (200, "ok", "off")
        assert set(body["jobs"]) == {"send-outbox", "replica-lease"}  # no deposit poll

        # no deposit poll and no hourly chains, addresses and capacity are even scheduled
        queue = served.application.job_queue
        assert queue is not None
        assert not [job.name for job in queue.jobs() if job.name in (POLL, DIRECTORY)]

        # several poll intervals (0.3 s) went by: the fake OKX heard nothing at all
        assert world.okx.count() == 0, world.okx.requests


# --- start-up refusals ----------------------------------------------------------------------


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeOkx]]:
    tg, okx = FakeTelegram().start(), FakeOkx().start()
    try:
        yield tg, okx
    finally:
        tg.stop()
        okx.stop()


def _env(tg: FakeTelegram, okx: FakeOkx, tmp_path: Path, *, plans: Path) -> dict[str, str]:
    database = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    return without_okx_keys(bot_env(tg, okx, database, PLANS_FILE=str(plans)))


@pytest.mark.parametrize("plans", ["bundled", "some_plans_in_stars"])
def test_a_plan_without_a_stars_price_and_no_okx_keys_stop_start_up_in_one_line(
    fakes: tuple[FakeTelegram, FakeOkx],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    plans: str,
) -> None:
    tg, okx = fakes
    path = default_plans_path() if plans == "bundled" else stars_plans(tmp_path)
    # the bundled plans are crypto only; with Stars prices on Pro and Quarter, Enterprise is not
    plan = "pro" if plans == "bundled" else "enterprise"
    code = bot_main.run(load_settings(_env(tg, okx, tmp_path, plans=path)))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [
        f"subsbot: PLANS_FILE {path}: plan '{plan}' has no stars price and no OKX keys are set:"
        " either set OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE or give every plan a stars"
        " price"
    ]
    assert tg.bot_messages(ADMIN) == [] and okx.count() == 0  # nothing started


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("OKX_API_KEY", "OKX_SECRET_KEY and OKX_PASSPHRASE are not set (OKX_API_KEY is)"),
        ("OKX_PASSPHRASE", "OKX_API_KEY and OKX_SECRET_KEY are not set (OKX_PASSPHRASE is)"),
    ],
)
def test_only_one_of_the_okx_settings_stops_start_up_naming_the_missing_ones(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, given: str, missing: str
) -> None:
    """As a merchant runs it: ``python -m bot run`` with a bare environment."""
    tg, okx = fakes
    full = bot_env(tg, okx, f"sqlite:///{tmp_path / 'shop.sqlite3'}", home=tmp_path)
    env = {**without_okx_keys(full), given: full[given]}
    env["PLANS_FILE"] = str(stars_only_plans(tmp_path))  # a shop that could run without OKX
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"subsbot: {missing}: give all three OKX settings to take crypto, or none of them to"
        " sell for Telegram Stars only"
    ]
    assert full[given] not in result.stdout + result.stderr
    assert tg.bot_messages(ADMIN) == [] and okx.count() == 0


# --- python -m bot check ----------------------------------------------------------------------


async def test_check_of_a_stars_only_shop_says_so_and_never_calls_okx(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tg, okx = fakes
    env = _env(tg, okx, tmp_path, plans=stars_only_plans(tmp_path))
    code = await run_check(load_settings(env))
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert "  ok    plans file: 2 plans, 0 coins" in lines
    assert "  ok    payment rails: Telegram Stars only" in lines
    assert any(
        line.startswith("  ok    database: sqlite, migrated to revision ")
        and line.endswith("(from a new database)")
        for line in lines
    ), lines
    assert "  skip  OKX: not used (the shop sells for Telegram Stars only)" in lines
    assert not [line for line in lines if "FAIL" in line]
    assert lines[-1] == "ready"
    assert okx.count() == 0, okx.requests
    assert any("@" in line and "token belongs to" in line for line in lines)  # Telegram was

    # a crypto-only plan without OKX keys: a FAIL line naming it, and still no OKX request
    bundled = _env(tg, okx, tmp_path, plans=default_plans_path())
    code = await run_check(load_settings(bundled))
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    [fail] = [line for line in lines if line.startswith("  FAIL")]
    assert "plan 'pro' has no stars price and no OKX keys are set" in fail
    assert lines[-1] == "1 problem(s)"
    assert okx.count() == 0, okx.requests


async def test_check_with_okx_keys_names_both_rails(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tg, okx = fakes
    tg.add_chat(CLUB, title="Pro Club")  # the paid chat of Pro in these plans
    database = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    env = bot_env(tg, okx, database, PLANS_FILE=str(stars_plans(tmp_path)))
    code = await run_check(load_settings(env))
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert "  ok    payment rails: crypto (OKX), Telegram Stars (2 of 3 plans)" in lines
    assert okx.count() > 0  # and OKX is checked as before


def test_the_bot_check_process_of_a_stars_only_shop_is_ready(
    fakes: tuple[FakeTelegram, FakeOkx], tmp_path: Path
) -> None:
    tg, okx = fakes
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    env |= _env(tg, okx, tmp_path, plans=stars_only_plans(tmp_path))
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
    assert "  ok    payment rails: Telegram Stars only" in result.stdout
    assert result.stdout.strip().endswith("ready")
    assert okx.count() == 0
