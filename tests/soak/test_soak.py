"""The soak, small enough for CI: the real bot process, customers with every scenario, faults on
a tenth of the requests to OKX, Telegram and the merchant's backend, SIGKILL crashes (mid-poll,
mid-send, random) with restarts; then each customer's intended outcome and every invariant
(tests/soak/invariants.py). ``python -m tests.soak`` runs bigger ones and prints the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.soak.run import SoakConfig, SoakResult, run_soak

needs_pg = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
# A month after the purchases (Telegram renews the Stars subscriptions) every crypto Pro
# subscription has ended: the bot takes back access in both paid chats at Telegram's pace (a
# ban and an unban a customer, a chat's 20 requests a minute), which takes minutes.
SETTLE_S = 480.0


def _assert_clean(result: SoakResult, crashes: int, kinds: tuple[str, ...]) -> None:
    print(result.report())  # the figures, shown with -s
    assert result.violations == [], result.report()
    where = result.figures["crashes"]
    assert where.startswith(f"{crashes} ("), where
    assert all(f"{kind} 1" in where for kind in kinds), where  # not fallen back to random


async def test_soak_sqlite(tmp_path: Path) -> None:
    config = SoakConfig(customers=60, crashes=3, fault_rate=0.1, seed=11, workdir=tmp_path)
    config.settle_s = SETTLE_S
    _assert_clean(await run_soak(config), 3, ("mid-poll", "mid-send", "random"))


@needs_pg
async def test_soak_postgresql(tmp_path: Path) -> None:
    config = SoakConfig(customers=30, crashes=2, fault_rate=0.1, seed=12, workdir=tmp_path)
    config.settle_s = SETTLE_S
    config.database_url = PG_URL
    _assert_clean(await run_soak(config), 2, ("mid-poll", "mid-send"))


@needs_pg
async def test_soak_two_replicas_one_killed_for_good(tmp_path: Path) -> None:
    """Two webhook replicas behind the fake Telegram's load balancer; the one holding the jobs
    lease is killed mid-poll and never comes back: the other takes over, nothing is lost."""
    config = SoakConfig(customers=24, crashes=1, fault_rate=0.1, seed=13, workdir=tmp_path)
    config.settle_s = SETTLE_S
    config.database_url, config.replicas = PG_URL, 2
    _assert_clean(await run_soak(config), 1, ("mid-poll",))
