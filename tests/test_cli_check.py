"""``python -m payments check`` as a merchant runs it: a subprocess against the fake OKX."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.okx import FakeOkx

ROOT = Path(__file__).resolve().parent.parent


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


def test_a_missing_variable_is_named_in_one_line(tmp_path: Path) -> None:
    result = _check({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    assert result.returncode == 2
    assert result.stdout.strip().splitlines() == [
        "OKX_API_KEY is not set (a read-only OKX API key is required)"
    ]


def test_wrong_secret_is_an_authentication_failure(okx: FakeOkx, tmp_path: Path) -> None:
    env = {**_env(okx, tmp_path), "OKX_SECRET_KEY": "wrong-secret-123"}
    result = _check(env)
    assert result.returncode == 1
    assert "wrong-secret-123" not in result.stdout + result.stderr
