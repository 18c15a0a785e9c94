"""``python -m bot`` as a merchant runs it: a real process against the fakes, logs free of secrets,
and a bad setting stopping start-up with one line that names the variable."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from bot.logs import REDACTED, RedactSecrets
from fakes.okx import FakeOkx
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from tests.paths import REPO

ROOT = REPO


async def _bot_process(
    cwd: Path, env: dict[str, str], *args: str, merge_stderr: bool = True
) -> asyncio.subprocess.Process:
    """``python -m bot [args]`` as a merchant starts it, its output piped to the test."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tg: FakeTelegram, okx: FakeOkx, tmp_path: Path) -> dict[str, str]:
    database_url = f"sqlite:///{tmp_path / 'main.sqlite3'}"
    return bot_env(
        tg, okx, database_url, home=tmp_path, PAYMENT_POLL_SECONDS="1", LOG_LEVEL="DEBUG"
    )


async def test_the_bot_process_answers_and_never_logs_a_secret(tmp_path: Path) -> None:
    with FakeTelegram() as tg, FakeOkx() as okx:
        env = _env(tg, okx, tmp_path)
        process = await _bot_process(tmp_path, env)
        try:
            tg.send_text(101, "/start")
            reply = await tg.wait_for(
                lambda: tg.bot_messages(101), timeout=30, what="the process to answer /start"
            )
            assert "Welcome" in reply[0].plain
            await tg.wait_for(lambda: okx.count("/api/v5/asset/deposit-history"), timeout=10)
        finally:
            process.send_signal(signal.SIGINT)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        logs = output.decode()
        assert process.returncode == 0, logs
        assert "Application started" in logs
        running = (
            f"subsbot {version('subsbot')} is running as @subsbot_test_bot (long polling),"
            f" database {env['DATABASE_URL']}"
        )
        assert running in logs
        for secret in (tg.token, okx.secret, okx.passphrase, okx.api_key):
            assert secret not in logs


@pytest.mark.parametrize("command", [["bot"], ["bot", "run"]])
def test_a_missing_setting_stops_start_up_naming_it(tmp_path: Path, command: list[str]) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "ADMIN_IDS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines == [
        "subsbot: TELEGRAM_BOT_TOKEN is not set: settings are read from the environment and from"
        " .env in the working directory (.env.example lists every setting)"
    ]


def test_the_redaction_filter_removes_secrets_from_messages_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactSecrets(["123456:SECRET-TOKEN", "passphrase-xyz"]))
    log = logging.getLogger("tests.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("calling https://api/bot%s/getMe", "123456:SECRET-TOKEN")
        try:
            raise RuntimeError("header OK-ACCESS-PASSPHRASE: passphrase-xyz")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = "\n".join(records)
    assert "SECRET-TOKEN" not in text and "passphrase-xyz" not in text
    assert text.count(REDACTED) >= 2


async def test_a_refused_token_or_a_dead_database_stops_start_up_in_one_line(
    tmp_path: Path,
) -> None:
    with FakeTelegram() as tg, FakeOkx() as okx:
        cases = [
            ({"TELEGRAM_BOT_TOKEN": "123456:NOT-THE-TOKEN"}, "TELEGRAM_BOT_TOKEN was refused"),
            (
                {"DATABASE_URL": "postgresql://shop:hunter22@127.0.0.1:1/shop"},
                "DATABASE_URL: cannot open postgresql://shop:***@127.0.0.1:1/shop",
            ),
        ]
        for change, expected in cases:
            env = {**_env(tg, okx, tmp_path), **change}
            process = await _bot_process(tmp_path, env, merge_stderr=False)
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
            assert process.returncode == 2
            last = err.decode().strip().splitlines()[-1]
            assert last.startswith("subsbot: ") and expected in last
            everything = out.decode() + err.decode()
            assert "NOT-THE-TOKEN" not in everything and "hunter22" not in everything


async def test_the_webhook_service_process_answers_reports_health_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    with FakeTelegram() as tg, FakeOkx() as okx:
        port = free_port()
        secret = "process-webhook-secret"
        env = _env(tg, okx, tmp_path) | {
            "WEBHOOK_URL": f"http://127.0.0.1:{port}",
            "WEBHOOK_SECRET": secret,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "API_TOKEN": "process-api-token-123",
        }
        process = await _bot_process(tmp_path, env, "run")
        try:
            await tg.wait_for(lambda: tg.webhook, timeout=30, what="setWebhook")
            assert tg.webhook is not None
            assert tg.webhook["url"] == f"http://127.0.0.1:{port}/telegram/webhook"
            tg.send_text(101, "/start")  # delivered by POST to the process
            reply = await tg.wait_for(lambda: tg.bot_messages(101), 30, "a webhook answer")
            assert "Welcome" in reply[0].plain
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                details = {"Authorization": "Bearer process-api-token-123"}
                health = await http.get("/healthz", headers=details)
            assert (health.status_code, health.json()["mode"]) == (200, "webhook")
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        logs = output.decode()
        assert process.returncode == 0, logs
        assert "HTTP server on 127.0.0.1" in logs and "stopping" in logs
        for value in (tg.token, okx.secret, okx.passphrase, secret, "process-api-token-123"):
            assert value not in logs


def test_a_port_in_use_stops_start_up_in_one_line(tmp_path: Path) -> None:
    with FakeTelegram() as tg, FakeOkx() as okx, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        env = _env(tg, okx, tmp_path) | {"HOST": "127.0.0.1", "PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.decode().strip().splitlines() == [
        f"subsbot: PORT: cannot listen on 127.0.0.1:{port} (Address already in use)"
    ]
    assert tg.bot_messages(101) == [] and tg.webhook is None  # nothing started


async def test_a_key_okx_refuses_on_the_first_start_stops_it_a_later_refusal_does_not(
    tmp_path: Path,
) -> None:
    """Never accepted: a setting to fix, one line. Accepted once (this database remembers it):
    an outage, so the bot serves (Stars, the menus) while the admins are told."""
    with FakeTelegram() as tg, FakeOkx() as okx:
        wrong = {**_env(tg, okx, tmp_path), "OKX_SECRET_KEY": "not-the-okx-secret-42"}
        process = await _bot_process(tmp_path, wrong, merge_stderr=False)
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 2, err.decode()
        last = err.decode().strip().splitlines()[-1]
        assert last.startswith("subsbot: OKX_API_KEY: OKX refused the key"), last
        assert "not-the-okx-secret-42" not in out.decode() + err.decode()
        assert tg.bot_messages(101) == []

        for env in (_env(tg, okx, tmp_path), wrong):  # accepted once, then refused
            process = await _bot_process(tmp_path, env)
            try:
                before = len(tg.bot_messages(101))
                tg.send_text(101, "/start")
                await tg.wait_for(
                    lambda before=before: len(tg.bot_messages(101)) > before,  # type: ignore[misc]
                    timeout=30,
                    what="the process to answer /start",
                )
            finally:
                process.send_signal(signal.SIGINT)
                output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
            assert process.returncode == 0, output.decode()
        assert "OKX refused the API key" in output.decode()
